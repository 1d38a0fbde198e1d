/**
 * A supervised stdio upstream: one child process per link, spawned with the SDK's StdioClientTransport.
 *
 * When the process exits without `close()`, the link reports `lost`, restarts it with exponential backoff
 * (`restart.initialDelayMs` doubling up to `restart.maxDelayMs`, at most `restart.maxRestarts` in a row; a
 * process that stayed up `stableAfterMs` starts a new run), replays the session's handshake into the new
 * process and reports `restarted`. See parent-death.ts and reaper.ts for how processes are kept from
 * outliving the gateway.
 */
import { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { Logger } from 'pino';
import type { StdioUpstreamConfig } from '#schemas';
import { Handshake } from './handshake.ts';
import type { UpstreamLink, UpstreamLinkEvent, UpstreamLinkOptions, UpstreamLinkState } from './link.ts';
import { dieWithGateway, setprivPath } from './parent-death.ts';
import { reapOnExit } from './reaper.ts';
import { killOnGatewayDeath } from './watchdog.ts';
import { SingleFlight } from './single-flight.ts';
import { UpstreamError, formatStderrTail } from './upstream-error.ts';
import type { UpstreamErrorFacts } from './upstream-error.ts';

const STDERR_TAIL_LINES = 20;
const STDERR_LINE_MAX_CHARS = 1_000;
/** After an exit, how long the last stderr lines get to arrive before the loss is reported. */
const STDERR_DRAIN_MS = 250;
/** After SIGKILL, how long to wait before declaring the process stuck (uninterruptible sleep). */
const SIGKILL_WAIT_MS = 5_000;
const DEFAULT_STABLE_AFTER_MS = 30_000;
const DEFAULT_TERMINATE_GRACE_MS = 2_000;

interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Child {
  readonly transport: StdioClientTransport;
  readonly process: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  readonly exited: Promise<ExitStatus>;
  /** Rejects once the process has exited; raced against writes that would otherwise wait for 'drain' forever. */
  readonly gone: Promise<never>;
  /** Aborted once the process has exited. */
  readonly goneSignal: AbortSignal;
  readonly stderrDrained: Promise<void>;
  readonly stderrTail: string[];
  exit: ExitStatus | undefined;
  /** Set when the link kills the process itself because it misbehaved, for the report. */
  killedBecause: string | undefined;
  terminating: Promise<void> | undefined;
}

export function createStdioLink(name: string, config: StdioUpstreamConfig, options: UpstreamLinkOptions): UpstreamLink {
  return new StdioLink(name, config, options);
}

class StdioLink implements UpstreamLink {
  readonly name: string;
  readonly transport = 'stdio' as const;
  onmessage?: (message: JSONRPCMessage) => void;
  onevent?: (event: UpstreamLinkEvent) => void;

  readonly #config: StdioUpstreamConfig;
  readonly #log: Logger;
  readonly #stableAfterMs: number;
  readonly #graceMs: number;
  readonly #handshake = new Handshake();
  readonly #closed = new AbortController();
  readonly #children = new Set<Child>();
  #state: UpstreamLinkState = 'idle';
  #current: Child | undefined;
  readonly #starting = new SingleFlight();
  #restarting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartsInRow = 0;
  #lastFailure: UpstreamError | undefined;

  constructor(name: string, config: StdioUpstreamConfig, options: UpstreamLinkOptions) {
    this.name = name;
    this.#config = config;
    this.#log = options.logger.child({ upstream: name, transport: 'stdio' });
    this.#stableAfterMs = options.stableAfterMs ?? DEFAULT_STABLE_AFTER_MS;
    this.#graceMs = options.terminateGraceMs ?? DEFAULT_TERMINATE_GRACE_MS;
  }

  get state(): UpstreamLinkState {
    return this.#state;
  }

  /** Concurrent calls share one attempt; after a failure the next call tries again. */
  start(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(this.#unavailable());
    return this.#starting.run(() => this.#startOnce(signal));
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const child = this.#current;
    if (this.#state !== 'ready' || child === undefined) throw this.#unavailable();
    this.#handshake.noteSent(message);
    await this.#write(child, message);
  }

  setProtocolVersion(_version: string): void {
    // stdio carries no protocol version header.
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeNow();
    return this.#closing;
  }

  async #startOnce(signal: AbortSignal | undefined): Promise<void> {
    this.#state = 'connecting';
    try {
      signal?.throwIfAborted();
      const child = await this.#spawn();
      if (this.#isClosed()) throw this.#unavailable();
      if (signal?.aborted === true) {
        await this.#terminate(child);
        signal.throwIfAborted();
      }
      this.#current = child;
      this.#state = 'ready';
      this.#emit({ type: 'connected', pid: child.pid });
    } catch (error) {
      if (this.#state === 'connecting') this.#state = 'idle';
      throw error;
    }
  }

  async #spawn(): Promise<Child> {
    const { command, args, env, cwd } = this.#config;
    // env: the SDK puts config.env on top of a minimal inherited environment (HOME, PATH, USER, …), so the
    // gateway's own secrets do not leak into upstream processes.
    const spawned = dieWithGateway(command, args, env, cwd);
    if (setprivPath() === undefined) noteWatchdog(this.#log);
    const transport = new StdioClientTransport({ command: spawned.command, args: [...spawned.args], env, cwd, stderr: 'pipe' });
    try {
      await transport.start();
    } catch (error) {
      const code = errorCode(error);
      const hint = code === 'ENOENT' ? ` (is "${command}" installed and on PATH${cwd === undefined ? '' : `, and does cwd "${cwd}" exist`}?)` : '';
      throw new UpstreamError(
        'ATTEST_UPSTREAM_UNAVAILABLE',
        `upstream "${this.name}" (stdio) could not start "${command}": ${errorText(error)}${hint}`,
        this.#facts({ cause: code }),
        { cause: error },
      );
    }
    // The SDK exposes the pid but not the process, and supervision needs the exit status and the signals.
    // Guarded so that an SDK change fails here, loudly, instead of leaving processes unsupervised.
    const child: unknown = Reflect.get(transport, '_process');
    if (!(child instanceof ChildProcess) || child.pid === undefined) {
      await transport.close();
      throw new UpstreamError(
        'ATTEST_UPSTREAM_UNAVAILABLE',
        `upstream "${this.name}" (stdio): this version of @modelcontextprotocol/client does not let the gateway supervise the process it spawned`,
        this.#facts({}),
      );
    }
    // Without the kernel's parent-death signal, the watchdog kills the process should the gateway die first.
    if (!spawned.diesWithGateway) killOnGatewayDeath(child);
    const tracked = this.#track(transport, child, child.pid);
    this.#log.info({ pid: tracked.pid, command, diesWithGateway: spawned.diesWithGateway }, 'upstream process started');
    return tracked;
  }

  #track(transport: StdioClientTransport, spawned: ChildProcess, pid: number): Child {
    reapOnExit(spawned);
    const exited = new Promise<ExitStatus>((resolve) => {
      if (spawned.exitCode !== null || spawned.signalCode !== null) resolve({ code: spawned.exitCode, signal: spawned.signalCode });
      else spawned.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const goneController = new AbortController();
    const gone = exited.then((status) => {
      throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, pid ${pid}) exited before the message was written`, this.#facts({ pid, exitCode: status.code, signal: status.signal, reached: false }));
    });
    gone.catch(() => undefined);
    const stderrTail: string[] = [];
    let stderrDrained = Promise.resolve();
    const stderr = transport.stderr;
    if (stderr instanceof Readable) {
      const lines = createInterface({ input: stderr, crlfDelay: Infinity });
      stderrDrained = new Promise((resolve) => lines.once('close', resolve));
      lines.on('line', (line) => this.#onStderr(child, line));
    }
    const child: Child = {
      transport,
      process: spawned,
      pid,
      startedAt: Date.now(),
      exited,
      gone,
      goneSignal: goneController.signal,
      stderrDrained,
      stderrTail,
      exit: undefined,
      killedBecause: undefined,
      terminating: undefined,
    };
    this.#children.add(child);
    transport.onmessage = (message) => {
      if (child !== this.#current || this.#handshake.noteReceived(message)) return;
      this.onmessage?.(message);
    };
    transport.onerror = (error) => {
      // Writes to a process that just died fail with EPIPE; the exit is what gets reported.
      if (child.exit === undefined) this.#log.warn({ pid, err: error }, 'upstream stdio error');
    };
    exited
      .then(async (status) => {
        child.exit = status;
        goneController.abort();
        await this.#onExit(child, status);
      })
      .catch((error: unknown) => this.#log.error({ err: error, pid }, 'handling the exit of an upstream process failed'));
    return child;
  }

  #onStderr(child: Child, raw: string): void {
    const line = raw.length > STDERR_LINE_MAX_CHARS ? `${raw.slice(0, STDERR_LINE_MAX_CHARS)}…` : raw;
    child.stderrTail.push(line);
    if (child.stderrTail.length > STDERR_TAIL_LINES) child.stderrTail.shift();
    this.#log.debug({ pid: child.pid, line }, 'upstream stderr');
    this.#emit({ type: 'stderr', line, pid: child.pid });
  }

  async #onExit(child: Child, status: ExitStatus): Promise<void> {
    this.#children.delete(child);
    if (child !== this.#current || this.#state === 'closed') return;
    this.#current = undefined;
    this.#state = 'restarting';
    await Promise.race([child.stderrDrained, sleep(STDERR_DRAIN_MS)]);
    if (this.#isClosed()) return;
    const how = status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`;
    const what = child.killedBecause === undefined ? `${how} unexpectedly` : `${how} after ${child.killedBecause}`;
    this.#failed(`(stdio, pid ${child.pid}) ${what}`, { pid: child.pid, exitCode: status.code, signal: status.signal, stderrTail: [...child.stderrTail] }, Date.now() - child.startedAt);
  }

  /** One failure of the current process (or of an attempt to start one): report it, then restart or give up. */
  #failed(what: string, facts: Partial<UpstreamErrorFacts>, uptimeMs: number): void {
    if (uptimeMs >= this.#stableAfterMs) this.#restartsInRow = 0;
    const { initialDelayMs, maxDelayMs, maxRestarts } = this.#config.restart;
    const willRestart = this.#restartsInRow < maxRestarts;
    let outlook: string;
    let delayMs = 0;
    if (willRestart) {
      delayMs = Math.min(initialDelayMs * 2 ** this.#restartsInRow, maxDelayMs);
      this.#restartsInRow += 1;
      outlook = `restart ${this.#restartsInRow} of ${maxRestarts} in ${delayMs} ms`;
    } else {
      outlook = maxRestarts === 0 ? 'restarts are disabled (restart.maxRestarts: 0)' : `gave up after ${maxRestarts} restarts in a row (restart.maxRestarts: ${maxRestarts})`;
    }
    const reason = `upstream "${this.name}" ${what}; ${outlook}`;
    const error = new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `${reason}${formatStderrTail(facts.stderrTail ?? [])}`, this.#facts(facts));
    this.#lastFailure = error;
    this.#state = willRestart ? 'restarting' : 'closed';
    if (willRestart) this.#log.warn({ pid: facts.pid, exitCode: facts.exitCode, signal: facts.signal, delayMs }, reason);
    else this.#log.error({ pid: facts.pid, exitCode: facts.exitCode, signal: facts.signal, stderrTail: facts.stderrTail }, reason);
    this.#emit({ type: 'lost', reason, willRestart, exitCode: facts.exitCode, signal: facts.signal, error });
    if (!willRestart) return;
    const attempt = this.#restartsInRow;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#restarting = this.#restart(attempt).catch((error: unknown) => this.#log.error({ err: error }, 'upstream restart failed unexpectedly'));
    }, delayMs);
  }

  async #restart(attempt: number): Promise<void> {
    let child: Child;
    try {
      child = await this.#spawn();
    } catch (error) {
      if (!this.#isClosed()) this.#failed(`could not be restarted: ${errorText(error)}`, { cause: errorCode(error) }, 0);
      return;
    }
    if (this.#isClosed()) return; // close() terminates every child it finds
    this.#current = child;
    try {
      const timeout = AbortSignal.timeout(this.#config.connectTimeoutMs);
      const replayedInitialize = await this.#handshake.replay((message) => this.#write(child, message), AbortSignal.any([child.goneSignal, this.#closed.signal, timeout]));
      if (this.#isClosed() || child !== this.#current) return;
      this.#state = 'ready';
      this.#lastFailure = undefined;
      this.#log.info({ pid: child.pid, attempt, replayedInitialize }, 'upstream process restarted');
      this.#emit({ type: 'restarted', attempt, replayedInitialize, pid: child.pid });
    } catch (error) {
      if (this.#isClosed() || child.exit !== undefined) return; // the exit is reported by #onExit
      const why = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${this.#config.connectTimeoutMs} ms (connectTimeoutMs)` : errorText(error);
      child.killedBecause = `its replayed initialize failed: ${why}`;
      await this.#terminate(child);
    }
  }

  async #write(child: Child, message: JSONRPCMessage): Promise<void> {
    try {
      await Promise.race([child.transport.send(message), child.gone]);
    } catch (error) {
      if (error instanceof UpstreamError) throw error;
      throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, pid ${child.pid}) could not be written to: ${errorText(error)}`, this.#facts({ pid: child.pid, cause: errorCode(error), reached: false }), {
        cause: error,
      });
    }
  }

  /** MCP stdio shutdown: close stdin, then SIGTERM, then SIGKILL, each after a grace period; waits for the exit. */
  #terminate(child: Child): Promise<void> {
    child.terminating ??= this.#terminateNow(child);
    return child.terminating;
  }

  async #terminateNow(child: Child): Promise<void> {
    const { process: spawned, pid } = child;
    if (child.exit === undefined) {
      spawned.stdin?.end();
      if (!(await exitsWithin(child, this.#graceMs))) {
        spawned.kill('SIGTERM');
        if (!(await exitsWithin(child, this.#graceMs))) {
          this.#log.warn({ pid, graceMs: this.#graceMs }, 'upstream process ignored stdin EOF and SIGTERM; sending SIGKILL');
          spawned.kill('SIGKILL');
          if (!(await exitsWithin(child, SIGKILL_WAIT_MS))) this.#log.error({ pid }, 'upstream process did not exit after SIGKILL');
        }
      }
    }
    // A grandchild may still hold the pipes open; the gateway's ends are released regardless.
    spawned.stdin?.destroy();
    spawned.stdout?.destroy();
    spawned.stderr?.destroy();
  }

  async #closeNow(): Promise<void> {
    this.#state = 'closed';
    this.#closed.abort();
    clearTimeout(this.#restartTimer);
    await Promise.allSettled([this.#starting.current, this.#restarting]);
    this.#current = undefined;
    await Promise.all([...this.#children].map((child) => this.#terminate(child)));
    this.#log.debug('upstream link closed');
  }

  #unavailable(): UpstreamError {
    const prefix = `upstream "${this.name}" (stdio)`;
    switch (this.#state) {
      case 'closed':
        if (this.#closing === undefined && this.#lastFailure !== undefined) return new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', this.#lastFailure.message, { ...this.#lastFailure.facts, reached: false });
        return new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `${prefix}: the link is closed; nothing was sent`, this.#facts({ reached: false }));
      case 'restarting':
        return new UpstreamError(
          'ATTEST_UPSTREAM_UNAVAILABLE',
          `${prefix} is restarting; nothing was sent${this.#lastFailure === undefined ? '' : `. ${this.#lastFailure.message}`}`,
          { ...(this.#lastFailure?.facts ?? this.#facts({})), reached: false },
        );
      default:
        return new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `${prefix} is not started (state: ${this.#state}); nothing was sent`, this.#facts({ reached: false }));
    }
  }

  /** A method, not a comparison, because the state changes across awaits and TypeScript narrows comparisons. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #facts(facts: Partial<UpstreamErrorFacts>): UpstreamErrorFacts {
    return { ...facts, upstream: this.name, transport: 'stdio' };
  }

  #emit(event: UpstreamLinkEvent): void {
    try {
      this.onevent?.(event);
    } catch (error) {
      this.#log.error({ err: error, event: event.type }, 'upstream link event listener threw');
    }
  }
}

let notedWatchdog = false;

/** Once per gateway: which guard keeps stdio upstreams from outliving it. */
function noteWatchdog(log: Logger): void {
  if (notedWatchdog) return;
  notedWatchdog = true;
  log.info('setpriv (util-linux) not found or not used: a watchdog process kills stdio upstreams if the gateway dies (gateway/upstreams/watchdog.ts)');
}

async function exitsWithin(child: Child, ms: number): Promise<boolean> {
  if (child.exit !== undefined) return true;
  const timer = new AbortController();
  try {
    return await Promise.race([child.exited.then(() => true), sleep(ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
