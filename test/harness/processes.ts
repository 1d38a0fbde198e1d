/**
 * Child processes for tests: spawn a Node script, wait for the line that says it is ready, stop
 * it and await its exit. Every child is tracked until it exits, so an `after()` hook can call
 * `stopAllProcesses()` and no test leaves a process behind — not even one that failed midway.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { childLogEnv, ECHO_CHILD_STDERR } from './log.ts';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnNodeOptions {
  /** Arguments after the script path. */
  args?: readonly string[];
  /** Arguments for Node itself, before the script path (e.g. `--conditions=attest-source`). */
  nodeArgs?: readonly string[];
  /** Added to (or, with `undefined`, removed from) the parent's environment. */
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
}

export interface StopOptions {
  /** First signal sent. Default SIGTERM. */
  signal?: NodeJS.Signals;
  /** Time allowed to exit after the first signal before SIGKILL. Default 5000 ms. */
  graceMs?: number;
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** The exit status once exited, `undefined` while running. */
  exitStatus(): ExitStatus | undefined;
  /** Resolves with the first stdout line matching `pattern` (already written lines count). */
  waitForStdoutLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  stop(options?: StopOptions): Promise<ExitStatus>;
}

export interface ListeningProcess extends NodeProcess {
  /** The URL from the process's `LISTENING <url>` line. */
  readonly url: string;
}

const LISTENING_LINE = /^LISTENING (\S+)$/;
const running = new Set<NodeProcess>();

/** Spawns `node [nodeArgs] script [args]` with piped stdio, tracked until it exits. */
export function spawnNode(script: string, options: SpawnNodeOptions = {}): NodeProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...childLogEnv() };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...(options.args ?? [])], {
    cwd: options.cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${script}`);
  const pid = child.pid;

  let out = '';
  let err = '';
  let status: ExitStatus | undefined;
  const lineWaiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const wake of lineWaiters) wake();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    if (ECHO_CHILD_STDERR) process.stderr.write(chunk);
  });
  // A child that exits early must not crash the test run through an EPIPE on its stdin.
  child.stdin.on('error', () => undefined);

  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      running.delete(handle);
      for (const wake of lineWaiters) wake();
      resolve(status);
    });
  });

  const handle: NodeProcess = {
    child,
    pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    exitStatus: () => status,
    waitForStdoutLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const line of out.split('\n')) {
            const match = pattern.exec(line.trimEnd());
            if (match !== null) return finish(() => resolve(match));
          }
          const exit = status;
          if (exit !== undefined) {
            finish(() => reject(new Error(`${script} exited (${describeExit(exit)}) before printing a line matching ${pattern}\nstderr:\n${err}`)));
          }
        };
        const timer = setTimeout(() => {
          finish(() => reject(new Error(`${script} printed no line matching ${pattern} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`)));
        }, timeoutMs);
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          lineWaiters.delete(check);
          settle();
        };
        lineWaiters.add(check);
        check();
      });
    },
    stop: (stopOptions) => stopProcess(handle, stopOptions),
  };
  running.add(handle);
  return handle;
}

/** Spawns a server script and waits for its `LISTENING <url>` line. */
export async function startNodeServer(script: string, options: SpawnNodeOptions & { readyTimeoutMs?: number } = {}): Promise<ListeningProcess> {
  const proc = spawnNode(script, options);
  try {
    const match = await proc.waitForStdoutLine(LISTENING_LINE, options.readyTimeoutMs ?? 15_000);
    return Object.assign(proc, { url: match[1] ?? '' });
  } catch (error) {
    await proc.stop({ signal: 'SIGKILL' });
    throw error;
  }
}

/** Signals the process (SIGTERM by default), escalates to SIGKILL after the grace period, awaits exit. */
export async function stopProcess(proc: NodeProcess, options: StopOptions = {}): Promise<ExitStatus> {
  const done = proc.exitStatus();
  if (done !== undefined) return done;
  proc.child.kill(options.signal ?? 'SIGTERM');
  const grace = setTimeout(() => proc.child.kill('SIGKILL'), options.graceMs ?? 5_000);
  try {
    return await proc.exited;
  } finally {
    clearTimeout(grace);
  }
}

/** Stops every process this module spawned that is still running. For `after()` hooks. */
export async function stopAllProcesses(options?: StopOptions): Promise<void> {
  await Promise.all([...running].map((proc) => stopProcess(proc, options)));
}

export function runningProcessCount(): number {
  return running.size;
}

export function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `signal ${status.signal}` : `code ${status.code}`;
}

// Last line of defence when a test file dies without its after() hooks: never orphan a child.
process.once('exit', () => {
  for (const proc of running) proc.child.kill('SIGKILL');
});
