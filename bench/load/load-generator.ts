/**
 * Closed-loop load over MCP Streamable HTTP: `sessions` sessions (each with its own initialize),
 * `concurrency` calls in flight in total, spread round-robin over the sessions; each of those
 * `concurrency` loops sends its next `tools/call` as soon as the previous one is answered. A warm-up
 * phase (not recorded) precedes the measured phase; both are bounded in calls and in time, and so is
 * every single call.
 *
 * Closed loop means a slow answer delays the next request of its loop, so latencies are service
 * times at the offered concurrency (no coordinated-omission correction); throughput is what the
 * system under test sustains at that concurrency.
 *
 * With `ratePerSecond` the loops are paced instead (open loop, at most `concurrency` in flight):
 * loop i sends at its own fixed schedule, together `ratePerSecond` calls per second, so latency is
 * measured below saturation. Latency is still taken from the actual send; how late sends were
 * against the schedule is reported apart (a growing lag means the target cannot keep the rate).
 */
import { performance } from 'node:perf_hooks';
import type { OutgoingHttpHeaders } from 'node:http';
import { LatencyHistogram } from './histogram.ts';
import type { HistogramSummary } from './histogram.ts';
import { assertLoopback, closeSession, exchange, loopbackAgent, messagesOf, openSession } from './mcp-http.ts';
import type { JsonObject, McpSession } from './mcp-http.ts';

export interface PhaseLimits {
  readonly maxCalls: number;
  readonly maxMs: number;
}

export interface LoadSpec {
  /** The Streamable HTTP endpoint (loopback only). */
  readonly url: string;
  /** Extra headers on every request (Authorization for the gateway). */
  readonly headers?: OutgoingHttpHeaders;
  /** Tool name as the endpoint exposes it (`echo` direct, `fast__echo` through the aggregate endpoint). */
  readonly tool: string;
  readonly payloadBytes: number;
  readonly sessions: number;
  readonly concurrency: number;
  readonly warmup: PhaseLimits;
  readonly measure: PhaseLimits;
  readonly callTimeoutMs: number;
  /** Open loop: total calls per second, spread evenly over the loops. Closed loop when absent. */
  readonly ratePerSecond?: number;
}

export interface LoadHooks {
  /** Runs after the warm-up, with nothing in flight, right before the measured phase starts. */
  readonly beforeMeasure?: () => Promise<void>;
  /** Runs once every measured call has settled, before sessions are closed. */
  readonly afterMeasure?: () => Promise<void>;
}

export interface LoadResult {
  readonly sessions: number;
  readonly warmupCalls: number;
  readonly calls: number;
  readonly errors: number;
  /** Distinct error messages, at most a few. */
  readonly errorSamples: readonly string[];
  readonly elapsedMs: number;
  readonly callsPerSecond: number;
  readonly latency: HistogramSummary;
  /** CPU time of this process (the load generator) during the measured phase. */
  readonly clientCpuMs: number;
  /** The same as a share of one core, in percent. */
  readonly clientCpuPercent: number;
  /** Open loop only: how late sends were against their schedule. */
  readonly sendLag?: HistogramSummary;
}

/** Payload text of exactly `bytes` bytes: ASCII letters and digits, so JSON needs no escapes. */
export function makePayload(bytes: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let seed = 0x2545f491;
  let out = '';
  const block: string[] = [];
  for (let i = 0; i < Math.min(bytes, 4096); i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    block.push(alphabet[(seed >>> 16) % alphabet.length] as string);
  }
  const unit = block.join('');
  while (out.length + unit.length <= bytes) out += unit;
  return out + unit.slice(0, bytes - out.length);
}

interface PhaseOutcome {
  calls: number;
  errors: number;
  elapsedMs: number;
}

const MAX_ERROR_SAMPLES = 5;
/** A phase gives up after this many failures without a single success (the target is down). */
const GIVE_UP_AFTER_ERRORS = 200;
const SESSION_OPEN_PARALLELISM = 8;

export async function runLoad(spec: LoadSpec, hooks: LoadHooks = {}): Promise<LoadResult> {
  const url = new URL(spec.url);
  assertLoopback(url);
  if (spec.concurrency < 1 || spec.sessions < 1) throw new Error('concurrency and sessions must be at least 1');
  const agent = loopbackAgent(spec.concurrency + SESSION_OPEN_PARALLELISM);
  const sessionCount = Math.min(spec.sessions, spec.concurrency);
  const sessions: McpSession[] = [];
  const errorSamples = new Set<string>();
  const noteError = (error: unknown): void => {
    if (errorSamples.size < MAX_ERROR_SAMPLES) errorSamples.add(error instanceof Error ? error.message.slice(0, 300) : String(error));
  };

  try {
    for (let i = 0; i < sessionCount; i += SESSION_OPEN_PARALLELISM) {
      const batch = Math.min(SESSION_OPEN_PARALLELISM, sessionCount - i);
      sessions.push(...(await Promise.all(Array.from({ length: batch }, () => openSession(agent, url, spec.headers ?? {}, spec.callTimeoutMs)))));
    }

    // The body is serialised once: only the id (last, in its own chunk) changes per call.
    const head = Buffer.from(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":${JSON.stringify(spec.tool)},"arguments":{"payload":${JSON.stringify(makePayload(spec.payloadBytes))}}},"id":`, 'utf8');
    const nextId = sessions.map(() => 1);

    const callOnce = async (sessionIndex: number): Promise<number> => {
      const session = sessions[sessionIndex] as McpSession;
      const id = nextId[sessionIndex] as number;
      nextId[sessionIndex] = id + 1;
      const started = performance.now();
      const reply = await exchange(agent, url, 'POST', session.headers, [head, `${id}}`], spec.callTimeoutMs);
      if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
      const response = messagesOf(reply).find((m) => m['id'] === id);
      const took = performance.now() - started;
      checkEcho(response, spec.payloadBytes);
      return took;
    };

    const phase = async (limits: PhaseLimits, histogram: LatencyHistogram | null, lag: LatencyHistogram | null): Promise<PhaseOutcome> => {
      const outcome: PhaseOutcome = { calls: 0, errors: 0, elapsedMs: 0 };
      let issued = 0;
      const started = performance.now();
      const deadline = started + limits.maxMs;
      const intervalMs = spec.ratePerSecond === undefined ? 0 : (spec.concurrency * 1000) / spec.ratePerSecond;
      const loop = async (worker: number): Promise<void> => {
        const sessionIndex = worker % sessions.length;
        let next = started + (intervalMs * worker) / spec.concurrency;
        while (issued < limits.maxCalls && performance.now() < deadline) {
          if (outcome.errors >= GIVE_UP_AFTER_ERRORS && outcome.calls === 0) return;
          if (intervalMs > 0) {
            const wait = next - performance.now();
            if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
            if (performance.now() >= deadline) return;
            lag?.record((performance.now() - next) * 1e6);
            next += intervalMs;
          }
          issued++;
          try {
            const ms = await callOnce(sessionIndex);
            outcome.calls++;
            histogram?.record(ms * 1e6);
          } catch (error) {
            outcome.errors++;
            noteError(error);
          }
        }
      };
      await Promise.all(Array.from({ length: spec.concurrency }, (_, worker) => loop(worker)));
      outcome.elapsedMs = performance.now() - started;
      return outcome;
    };

    const warm = await phase(spec.warmup, null, null);
    await hooks.beforeMeasure?.();
    const histogram = new LatencyHistogram();
    const lag = spec.ratePerSecond === undefined ? null : new LatencyHistogram();
    const cpuBefore = process.cpuUsage();
    const measured = await phase(spec.measure, histogram, lag);
    const cpu = process.cpuUsage(cpuBefore);
    await hooks.afterMeasure?.();
    const clientCpuMs = (cpu.user + cpu.system) / 1000;
    return {
      sessions: sessions.length,
      warmupCalls: warm.calls,
      calls: measured.calls,
      errors: measured.errors,
      errorSamples: [...errorSamples],
      elapsedMs: measured.elapsedMs,
      callsPerSecond: measured.elapsedMs > 0 ? (measured.calls * 1000) / measured.elapsedMs : 0,
      latency: histogram.summary(),
      clientCpuMs,
      clientCpuPercent: measured.elapsedMs > 0 ? (clientCpuMs / measured.elapsedMs) * 100 : 0,
      ...(lag !== null && { sendLag: lag.summary() }),
    };
  } finally {
    await Promise.allSettled(sessions.map((session) => closeSession(agent, url, session, 5_000)));
    agent.destroy();
  }
}

/** The answer must be the echo of the payload: a wrong answer is an error, not a fast call. */
function checkEcho(response: JsonObject | undefined, payloadBytes: number): void {
  if (response === undefined) throw new Error('no response with the request id');
  const error = response['error'] as JsonObject | undefined;
  if (error !== undefined) throw new Error(`JSON-RPC error ${String(error['code'])}: ${String(error['message'])}`);
  const result = response['result'] as JsonObject | undefined;
  const content = result?.['content'];
  const first = Array.isArray(content) ? (content[0] as JsonObject | undefined) : undefined;
  const text = first?.['text'];
  if (result?.['isError'] === true || typeof text !== 'string' || text.length !== payloadBytes) {
    throw new Error(`unexpected tools/call result: ${JSON.stringify(result).slice(0, 200)}`);
  }
}
