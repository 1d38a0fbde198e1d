/**
 * The start-up probe of stdio upstreams: each (unless `probeAtStart: false`) is spawned once, sent
 * `initialize`, and closed, so that a wrong command or path — `Cannot find module …` — is said when
 * the gateway starts, not found by the first agent as fewer tools: a warn log with the process's
 * stderr tail, an `UpstreamLost` on the gateway's system stream, and /healthz (health.ts). A probe
 * that passes is logged at info and shown on /healthz; nothing is recorded for it. Runs in the
 * background, one upstream after another (the machine is starting anyway); `stop()` ends what
 * still runs.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import type { StdioUpstreamConfig, UpstreamConfig } from '#schemas';
import type { Logger } from '../logger.ts';
import { draft } from '../recorder.ts';
import type { Recorder, StreamContext } from '../recorder.ts';
import { LATEST_PROTOCOL_VERSION } from '../session/protocol.ts';
import type { UpstreamHealth } from './health.ts';
import type { UpstreamLink } from './link.ts';
import { UpstreamError, formatStderrTail, startFailureForOperator } from './upstream-error.ts';

const PROBE_ID = 'attest-probe';

export interface ProbeDeps {
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>;
  readonly createLink: (name: string, config: UpstreamConfig) => UpstreamLink;
  readonly health: UpstreamHealth;
  readonly recorder: Recorder;
  readonly systemContext: StreamContext;
  readonly logger: Logger;
  readonly version: string;
}

export interface StartupProbe {
  /** Settles when every probe has ended (never rejects). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export function probeStdioUpstreams(deps: ProbeDeps): StartupProbe {
  const stopping = new AbortController();
  const probed = Object.entries(deps.upstreams).filter((entry): entry is [string, StdioUpstreamConfig] => entry[1].transport === 'stdio' && entry[1].probeAtStart);
  const done = (async () => {
    for (const [name, config] of probed) {
      if (stopping.signal.aborted) return;
      await probeOne(deps, name, config, stopping.signal).catch((error: unknown) => deps.logger.error({ err: error, upstream: name }, 'the start-up probe of an upstream failed unexpectedly'));
    }
  })();
  return {
    done,
    async stop() {
      stopping.abort();
      await done;
    },
  };
}

async function probeOne(deps: ProbeDeps, name: string, config: StdioUpstreamConfig, stopping: AbortSignal): Promise<void> {
  const link = deps.createLink(name, config);
  const answered = Promise.withResolvers<JSONRPCMessage>();
  answered.promise.catch(() => undefined);
  link.onmessage = (message) => {
    if ('id' in message && message.id === PROBE_ID && !('method' in message)) answered.resolve(message);
  };
  link.onevent = (event) => {
    if (event.type === 'lost') answered.reject(event.error);
  };
  const deadline = AbortSignal.any([stopping, AbortSignal.timeout(config.connectTimeoutMs)]);
  try {
    await link.start(deadline);
    await link.send({ jsonrpc: '2.0', id: PROBE_ID, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'attest-startup-probe', version: deps.version } } });
    const answer = await until(answered.promise, deadline);
    if ('error' in answer) throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${name}" (stdio) refused initialize: ${answer.error.message}`, { upstream: name, transport: 'stdio' });
    deps.health.ok(name, 'probe');
    deps.logger.info({ upstream: name }, 'upstream answered its start-up probe');
  } catch (error) {
    if (stopping.aborted) return; // the gateway is closing: nothing learnt
    const failure =
      error instanceof UpstreamError
        ? error
        : error instanceof Error && error.name === 'TimeoutError'
          ? new UpstreamError('ATTEST_UPSTREAM_TIMEOUT', `upstream "${name}" (stdio) did not start and answer initialize within ${config.connectTimeoutMs} ms (connectTimeoutMs)`, { upstream: name, transport: 'stdio' })
          : new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${name}" (stdio) failed its start-up probe: ${error instanceof Error ? error.message : String(error)}`, { upstream: name, transport: 'stdio' }, { cause: error });
    deps.health.failed(name, failure, 'probe');
    const { exitCode, stderrTail } = failure.facts;
    const reason = startFailureForOperator(failure);
    deps.logger.warn({ upstream: name, exitCode, stderrTail }, `upstream "${name}" failed its start-up probe; agents will find it unavailable until it starts: ${reason}${formatStderrTail(stderrTail ?? [])}`);
    await deps.recorder
      .record([draft(deps.systemContext, 'UpstreamLost', { upstream: name, reason: `start-up probe: ${reason}`, willRestart: false, ...(typeof exitCode === 'number' && { exitCode }) })])
      .catch((recordError: unknown) => deps.logger.error({ err: recordError, upstream: name }, 'the failed start-up probe could not be recorded'));
  } finally {
    await link.close();
  }
}

/** `work`, or the signal's reason once it aborts first. */
function until<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
