/**
 * Wires one gateway process: config → log → reconciler → HTTP front door (or stdio).
 * `startGateway` is what `attest gateway` / `attest start` run and what tests start in-process.
 */
import { parseConfig, SYSTEM_PRINCIPAL } from '#schemas';
import type { AttestConfig, AttestConfigInput } from '#schemas';
import { openEventLog } from '#eventlog';
import type { EventLog } from '#eventlog';
import { ApiKeyStore } from './auth/api-keys.ts';
import { buildHttpServer, SessionRegistry } from './http/server.ts';
import { createLogger, redactSecretValues, secretValuesOf } from './logger.ts';
import type { Logger } from './logger.ts';
import { reconcileOutcomes } from './reconciler.ts';
import { draft, Recorder } from './recorder.ts';
import type { SessionDeps } from './session/session.ts';
import { createUpstreamLink } from './upstreams/link.ts';
import { Governance } from './governance.ts';
import { GATEWAY_VERSION } from './version.ts';
import { GatewayMetrics } from './observability/metrics.ts';
import { createOtelTracing } from './observability/tracing.ts';
import type { CallTracing } from './observability/tracing.ts';
import type { SpanExporter } from '@opentelemetry/sdk-trace';

export interface GatewayOptions {
  /** Overrides gateway.port (0 = any free port). */
  readonly port?: number;
  readonly host?: string;
  readonly logger?: Logger;
  /** Resolves `${ENV}` references; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Relative paths in the config resolve against this directory. */
  readonly baseDir?: string;
  /** Digest of the config file as written (the CLI passes it); computed from the object otherwise. */
  readonly configHash?: string;
  /** Benchmarks only (the recording-off reference): wraps the opened log. Reachable from neither the config nor the CLI. */
  readonly wrapLog?: (log: EventLog) => EventLog;
  /** Tests only: spans go to this exporter instead of OTLP (observability.tracing must be set). */
  readonly spanExporter?: SpanExporter;
}

export interface Gateway {
  /** `http://host:port` the gateway listens on. */
  readonly url: string;
  readonly config: AttestConfig;
  readonly log: EventLog;
  close(reason?: string): Promise<void>;
}

/** The parts shared by the HTTP and stdio front doors. */
export interface GatewayCore {
  readonly config: AttestConfig;
  readonly log: EventLog;
  readonly recorder: Recorder;
  readonly keys: ApiKeyStore;
  readonly logger: Logger;
  readonly sessionDeps: SessionDeps;
  readonly systemContext: { readonly tenant: string; readonly stream: string; readonly actor: typeof SYSTEM_PRINCIPAL };
  /** Prometheus metrics (observability.metrics.enabled), fed by the recorder. */
  readonly metrics: GatewayMetrics | undefined;
  /** OpenTelemetry spans (observability.tracing), ended by the recorder. */
  readonly tracing: CallTracing | undefined;
  close(reason: string): Promise<void>;
}

export function resolveConfig(input: AttestConfig | AttestConfigInput, options: GatewayOptions): { config: AttestConfig; configHash: string } {
  const parsed = parseConfig(input, { env: options.env ?? process.env, ...(options.baseDir !== undefined && { baseDir: options.baseDir }) });
  return { config: parsed.config, configHash: options.configHash ?? parsed.configHash };
}

/** Opens the log, reconciles interrupted calls and records GatewayStarted. */
export async function openGatewayCore(input: AttestConfig | AttestConfigInput, options: GatewayOptions = {}): Promise<GatewayCore> {
  const { config, configHash } = resolveConfig(input, options);
  const logger = options.logger ?? createLogger();
  redactSecretValues(logger, secretValuesOf(config));
  // Policy expressions compile before anything is opened: a bad rule is a config error.
  const governance = config.policy === undefined ? undefined : new Governance(config.policy);
  const opened = await openEventLog(config.log, { logger });
  const log = options.wrapLog?.(opened) ?? opened;
  const metrics = config.observability.metrics.enabled ? new GatewayMetrics({ config: config.observability.metrics, upstreams: Object.keys(config.upstreams), log }) : undefined;
  const tracingConfig = config.observability.tracing;
  const tracing = tracingConfig === undefined ? undefined : createOtelTracing({ config: tracingConfig, instance: config.gateway.instance, version: GATEWAY_VERSION, ...(options.spanExporter !== undefined && { exporter: options.spanExporter }) });
  const recorder = new Recorder(log, [metrics, tracing].filter((observer) => observer !== undefined));
  const systemContext = { tenant: SYSTEM_PRINCIPAL.tenant, stream: `system-${config.gateway.instance}`, actor: SYSTEM_PRINCIPAL };
  try {
    const gaps = await reconcileOutcomes(log, recorder);
    if (gaps > 0) logger.warn({ gaps }, 'calls forwarded before a crash had no recorded outcome; recorded OutcomeUnknown for each');
    await recorder.record([draft(systemContext, 'GatewayStarted', { instance: config.gateway.instance, version: GATEWAY_VERSION, configHash, ...(governance !== undefined && { policyHash: governance.policyHash }), upstreams: Object.keys(config.upstreams) })]);
  } catch (error) {
    await log.close();
    throw error;
  }
  const keys = new ApiKeyStore(config.auth.keys);
  try {
    await governance?.rebuild(log);
  } catch (error) {
    await log.close();
    throw error;
  }
  const sessionDeps: SessionDeps = {
    recorder,
    keys,
    upstreams: config.upstreams,
    // `command: node` means the Node that runs the gateway (the machine's default may be older).
    createLink: (name, upstreamConfig) =>
      createUpstreamLink(name, upstreamConfig.transport === 'stdio' && upstreamConfig.command === 'node' ? { ...upstreamConfig, command: process.execPath } : upstreamConfig, { logger }),
    logger,
    version: GATEWAY_VERSION,
    governance,
    tracing,
  };
  let closed = false;
  return {
    config,
    log,
    recorder,
    keys,
    logger,
    sessionDeps,
    systemContext,
    metrics,
    tracing,
    async close(reason) {
      if (closed) return;
      closed = true;
      await recorder.record([draft(systemContext, 'GatewayStopped', { instance: config.gateway.instance, reason })]).catch((error: unknown) => logger.warn({ err: error }, 'GatewayStopped could not be recorded'));
      await log.close();
      await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'spans could not all be exported at shutdown'));
    },
  };
}

export async function startGateway(input: AttestConfig | AttestConfigInput, options: GatewayOptions = {}): Promise<Gateway> {
  const core = await openGatewayCore(input, options);
  const { config, logger } = core;
  const sessions = new SessionRegistry();
  const app = buildHttpServer({ config, recorder: core.recorder, keys: core.keys, sessionDeps: core.sessionDeps, logger, sessions, metrics: core.metrics });
  const host = options.host ?? config.gateway.host;
  const port = options.port ?? config.gateway.port;
  try {
    await app.listen({ host, port });
  } catch (error) {
    await core.close(`listen failed: ${(error as Error).message}`);
    throw error;
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address !== null ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  logger.info({ url, upstreams: Object.keys(config.upstreams), log: config.log.backend }, 'attest gateway listening');

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - config.gateway.sessionIdleMs;
    for (const entry of sessions.values()) {
      if (entry.session.lastActivity < cutoff) {
        sessions.delete(entry.session.id);
        void entry.session.close('idle timeout');
      }
    }
  }, Math.min(60_000, config.gateway.sessionIdleMs)).unref();

  let closing: Promise<void> | undefined;
  return {
    url,
    config,
    log: core.log,
    close(reason = 'shutdown') {
      closing ??= (async () => {
        clearInterval(sweeper);
        await Promise.all([...sessions.values()].map((entry) => entry.session.close(reason)));
        await app.close();
        await core.close(reason);
      })();
      return closing;
    },
  };
}


