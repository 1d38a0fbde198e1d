/**
 * Child processes of a benchmark: spawned with the project's Node and source condition, stdout read
 * line by line (a process says it is ready with a line), stopped with SIGTERM and, past a grace
 * period, SIGKILL. Every child is tracked so a benchmark that fails midway still stops them all.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';

export const SOURCE_CONDITION = '--conditions=attest-source';

export interface Child {
  readonly pid: number;
  readonly process: ChildProcessWithoutNullStreams;
  /** performance.now() right before spawn. */
  readonly spawnedAt: number;
  /** Resolves with the first stdout line matching `pattern` (lines already seen count) and when it was seen. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<{ match: RegExpMatchArray; at: number }>;
  /** Writes a line to stdin and resolves with the next stdout line matching `reply`. */
  ask(line: string, reply: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Stdout lines so far (the first 10,000) and the stderr tail. */
  stdout(): string;
  stderrTail(): string;
  readonly exited: Promise<number | null>;
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<Child>();
const MAX_KEPT_CHARS = 64 * 1024;
const MAX_KEPT_LINES = 10_000;

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Everything the child writes to stderr also goes to this file. */
  readonly stderrFile?: string;
}

/** `node <nodeArgs> <script> <args>` with piped stdio. */
export function spawnNode(nodeArgs: readonly string[], script: string, args: readonly string[], options: SpawnOptions = {}): Child {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${script}`);
  const pid = child.pid;
  const lines: { text: string; at: number }[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  const stderrFile = options.stderrFile === undefined ? undefined : createWriteStream(options.stderrFile);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const at = performance.now();
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    // Bench children print a handful of lines (readiness, stats); a chatty one is cut off, not buffered without bound.
    for (const text of parts) if (lines.length < MAX_KEPT_LINES) lines.push({ text, at });
    for (const wake of waiters) wake();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrFile?.write(chunk);
    stderr = (stderr + chunk).slice(-MAX_KEPT_CHARS);
  });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(handle);
      for (const wake of waiters) wake();
      stderrFile?.end();
      resolve(code);
    });
  });

  const waitFrom = (from: number, pattern: RegExp, timeoutMs: number): Promise<{ match: RegExpMatchArray; at: number }> =>
    new Promise((resolve, reject) => {
      let seen = from;
      const check = (): void => {
        for (; seen < lines.length; seen++) {
          const line = lines[seen] as { text: string; at: number };
          const match = pattern.exec(line.text);
          if (match !== null) {
            finish();
            resolve({ match, at: line.at });
            return;
          }
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}\nstderr:\n${stderr.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${script} printed no line matching ${pattern} within ${timeoutMs} ms\nstderr:\n${stderr.slice(-4000)}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const handle: Child = {
    pid,
    process: child,
    spawnedAt,
    waitForLine: (pattern, timeoutMs) => waitFrom(0, pattern, timeoutMs),
    async ask(line, reply, timeoutMs) {
      const from = lines.length;
      child.stdin.write(`${line}\n`);
      return (await waitFrom(from, reply, timeoutMs)).match;
    },
    stdout: () => lines.map((l) => l.text).join('\n'),
    stderrTail: () => stderr,
    exited,
    async stop(graceMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  running.add(handle);
  return handle;
}

/** Stops every child still running (for `finally` blocks and signal handlers). */
export async function stopAllChildren(): Promise<void> {
  await Promise.allSettled([...running].map((child) => child.stop(5_000)));
}

/** Spawns a script that prints `LISTENING <url>` when ready and returns the child with its url. */
export async function spawnListening(nodeArgs: readonly string[], script: string, args: readonly string[], options: SpawnOptions = {}, timeoutMs = 30_000): Promise<{ child: Child; url: string }> {
  const child = spawnNode(nodeArgs, script, args, options);
  try {
    const { match } = await child.waitForLine(/^LISTENING (\S+)$/, timeoutMs);
    return { child, url: match[1] as string };
  } catch (error) {
    await child.stop(2_000);
    throw error;
  }
}
