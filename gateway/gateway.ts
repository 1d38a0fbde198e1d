/**
 * Wires one gateway process: config → log → reconciler → HTTP front door (or stdio).
 * `startGateway` is what `attest gateway` / `attest start` run and what tests start in-process.
 */
import { ConfigError, parseConfig, SYSTEM_PRINCIPAL } from '#schemas';
import type { AttestConfig, AttestConfigInput, EventData, ParsedConfig, Principal, UpstreamConfig } from '#schemas';
import type { EventLog, RecoveryReport, StaleLock } from '#eventlog';
import type { RunningInstance } from '#projections';
import type { ApiKeyStore } from './auth/api-keys.ts';
import { keyStoreFor } from './auth/key-store.ts';
import { buildHttpServer, isLoopbackBind, SessionRegistry } from './http/server.ts';
import { createLogger, redactSecretValues, secretValuesOf } from './logger.ts';
import type { Logger } from './logger.ts';
import { closeLeftoverSessions, reconcileOutcomes } from './reconciler.ts';
import { SnapshotStore } from './state/snapshot-store.ts';
import { Snapshotter } from './state/snapshotter.ts';
import { EvidenceService } from './evidence/evidence-service.ts';
import { loadCheckpointKeys } from './evidence/checkpoint-keys.ts';
import { readLatestCheckpoint } from './evidence/checkpoint-files.ts';
import { openWithState } from './state/startup.ts';
import { draft, Recorder } from './recorder.ts';
import type { SessionDeps } from './session/session.ts';
import { createUpstreamLink } from './upstreams/link.ts';
import { SharedStdioPool } from './upstreams/shared-stdio.ts';
import { LATEST_PROTOCOL_VERSION } from './session/protocol.ts';
import { UpstreamHealth } from './upstreams/health.ts';
import { probeStdioUpstreams } from './upstreams/probe.ts';
import { Governance } from './governance.ts';
import { ApprovalBroker } from './approvals/broker.ts';
import { expireDanglingApprovals } from './approvals/dangling.ts';
import { LiveConfig } from './live-config.ts';
import { ConfigReloader } from './reload.ts';
import type { ReloadOutcome, ReloadTrigger } from './reload.ts';
import { GATEWAY_VERSION } from './version.ts';
import { ToolPins } from './pins/tool-pins.ts';
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
  /** Re-reads the config for a hot reload (SIGHUP, POST /admin/v1/config/reload); the CLI passes its file loader. Absent → reloads are refused. */
  readonly reloadFrom?: () => ParsedConfig;
  /** Tests only: spans go to this exporter instead of OTLP (observability.tracing must be set). */
  readonly spanExporter?: SpanExporter;
}

export interface Gateway {
  /** `http://host:port` the gateway listens on. */
  readonly url: string;
  readonly config: AttestConfig;
  readonly log: EventLog;
  /** Its /metrics (observability.metrics.enabled); the CLI adds an in-process projector's series to it. */
  readonly metrics: GatewayMetrics | undefined;
  /** Re-reads and applies the config (gateway/reload.ts); a refusal is an outcome, the config in force unchanged. */
  reload(trigger: ReloadTrigger, actor?: Principal): Promise<ReloadOutcome>;
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
  /** What a reload swaps; `config`, `keys` and `sessionDeps` read through it. */
  readonly live: LiveConfig;
  readonly reloader: ConfigReloader;
  /** Prometheus metrics (observability.metrics.enabled), fed by the recorder. */
  readonly metrics: GatewayMetrics | undefined;
  /** OpenTelemetry spans (observability.tracing), ended by the recorder. */
  readonly tracing: CallTracing | undefined;
  /** How each upstream last started or connected (sessions, the start-up probe); /healthz shows it. */
  readonly health: UpstreamHealth;
  /** The evidence tree and its checkpoints (evidence.enabled). */
  readonly evidence: EvidenceService | undefined;
  close(reason: string): Promise<void>;
}

/** `command: node` in a stdio upstream means the Node that runs the gateway (the machine's default may be older). */
function withGatewayNode<T extends UpstreamConfig>(config: T): T {
  return config.transport === 'stdio' && config.command === 'node' ? { ...config, command: process.execPath } : config;
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
  // So is a checkpoint key that cannot be read (gateway/evidence/checkpoint-keys.ts).
  // Likewise a checkpoint on disk the config no longer trusts (another key without rotation, another origin).
  const checkpointKeys = config.evidence.enabled ? await loadCheckpointKeys(config, { generate: true, logger }) : undefined;
  const latestCheckpoint = checkpointKeys === undefined ? undefined : await readLatestCheckpoint(config.evidence.dir ?? '', checkpointKeys);
  // The log, resumed after the newest snapshot of the gateway's state when one checks out, and the
  // state folded to the log's end (gateway/state/startup.ts).
  const store = config.state.snapshots ? new SnapshotStore({ dir: config.state.dir ?? '', instance: config.gateway.instance, log: config.log, gatewayVersion: GATEWAY_VERSION }) : undefined;
  const started = performance.now();
  // What the log repaired at open (file log): recorded once the log is open (GatewayRecovered).
  const tornTails: RecoveryReport[] = [];
  let staleLock: StaleLock | undefined;
  const openOptions = { logger, onRecovery: (report: RecoveryReport) => tornTails.push(report), onStaleLock: (taken: StaleLock) => (staleLock = taken) };
  const startup = await openWithState({ log: config.log, logger, limits: governance?.policy.limits, policyHash: governance?.policyHash, store, openOptions, wrapLog: options.wrapLog });
  const { log } = startup;
  logger.info({ resumedFrom: startup.resumedFrom, readAtStart: startup.read, fullReadBecause: startup.fullReadBecause, size: log.size(), ms: Math.round(performance.now() - started) }, 'gateway state rebuilt from the log');
  const metrics = config.observability.metrics.enabled ? new GatewayMetrics({ config: config.observability.metrics, upstreams: Object.keys(config.upstreams), log }) : undefined;
  const tracingConfig = config.observability.tracing;
  const tracing = tracingConfig === undefined ? undefined : createOtelTracing({ config: tracingConfig, instance: config.gateway.instance, version: GATEWAY_VERSION, ...(options.spanExporter !== undefined && { exporter: options.spanExporter }) });
  const recorder = new Recorder(log, [metrics, tracing].filter((observer) => observer !== undefined));
  recorder.onBacklogDropped((drafts) => logger.error({ callIds: drafts.map((d) => d.callId) }, 'too many outcomes wait for the log: the oldest withheld outcome is dropped (the next start records it as OutcomeUnknown)'));
  const systemContext = { tenant: SYSTEM_PRINCIPAL.tenant, stream: `system-${config.gateway.instance}`, actor: SYSTEM_PRINCIPAL };
  const keys = keyStoreFor(config);
  const live = new LiveConfig({ config, configHash, keys, governance });
  // Tool-definition pins belong to the gateway, not to a config version: a reload keeps them.
  const pins = new ToolPins(recorder, systemContext);
  const health = new UpstreamHealth();
  let snapshotter: Snapshotter | undefined;
  let evidence: EvidenceService | undefined;
  try {
    // Every projection of the log from one fold of it (#projections): open calls, approvals and
    // sessions, run-time keys, pins and limits; each part goes to its user.
    const state = startup.fold.projections;
    const { calls } = state;
    keys.load(state.keys);
    pins.load(state.pins);
    if (state.limits !== undefined) governance?.load(state.limits);
    // A snapshot of what was just folded (before anything is appended: it is the log's state at its
    // cursor), so the snapshot worker and the next start begin from here.
    if (store !== undefined && startup.read > 0) await store.write(startup.fold.toJson()).catch((error: unknown) => logger.warn({ err: error, dir: store.dir }, 'gateway state snapshot could not be written; the next start reads the log from the last one'));
    const instance = config.gateway.instance;
    const gaps = await reconcileOutcomes(calls, recorder, instance);
    const expired = await expireDanglingApprovals(calls, recorder, instance);
    const closed = await closeLeftoverSessions(calls, recorder, instance);
    if (gaps > 0) logger.warn({ gaps }, 'calls forwarded before a crash had no recorded outcome; recorded OutcomeUnknown for each');
    if (expired > 0) logger.warn({ expired }, 'approvals left pending by a stopped gateway; recorded ApprovalExpired for each');
    if (closed > 0) logger.warn({ closed }, 'sessions left open by a stopped gateway; recorded SessionClosed for each');
    const recovered = recoveryFound(instance, calls.running.get(instance), tornTails, staleLock, { outcomesUnknown: gaps, approvalsExpired: expired, sessionsClosed: closed });
    if (recovered !== undefined) {
      await recorder.record([draft(systemContext, 'GatewayRecovered', recovered)]);
      logger.warn({ ...recovered }, 'the previous run of this instance did not end cleanly; what was found and done is recorded (GatewayRecovered)');
    }
    await recorder.record([draft(systemContext, 'GatewayStarted', { instance: config.gateway.instance, version: GATEWAY_VERSION, configHash, ...(governance !== undefined && { policyHash: governance.policyHash }), upstreams: Object.keys(config.upstreams) })]);
    if (checkpointKeys !== undefined) evidence = await EvidenceService.start({ config, keys: checkpointKeys, latest: latestCheckpoint, log, recorder, systemContext, logger });
    if (store !== undefined) snapshotter = new Snapshotter(config, log, logger, GATEWAY_VERSION, startup.fold.size);
  } catch (error) {
    await log.close();
    throw error;
  }
  const sharedStdio = new SharedStdioPool({ logger, version: GATEWAY_VERSION, protocolVersion: LATEST_PROTOCOL_VERSION, createProcessLink: (name, upstreamConfig) => createUpstreamLink(name, withGatewayNode(upstreamConfig), { logger }) });
  // Keys, upstreams and governance are read per decision through `live`, so a reload swaps them for new decisions only.
  const sessionDeps: SessionDeps = {
    recorder,
    get keys() {
      return live.current.keys;
    },
    get upstreams() {
      return live.current.config.upstreams;
    },
    // A stdio upstream with `share: true` is one process for every session (upstreams/shared-stdio.ts).
    createLink: (name, upstreamConfig) => (upstreamConfig.transport === 'stdio' && upstreamConfig.share ? sharedStdio.lease(name, upstreamConfig) : createUpstreamLink(name, withGatewayNode(upstreamConfig), { logger })),
    logger,
    version: GATEWAY_VERSION,
    instance: config.gateway.instance,
    get governance() {
      return live.current.governance;
    },
    pins,
    tracing,
    health,
  };
  const reloader = new ConfigReloader({ live, recorder, log, systemContext, logger, load: options.reloadFrom });
  let closed = false;
  return {
    get config() {
      return live.current.config;
    },
    log,
    recorder,
    get keys() {
      return live.current.keys;
    },
    logger,
    sessionDeps,
    systemContext,
    live,
    reloader,
    metrics,
    tracing,
    health,
    evidence,
    async close(reason) {
      if (closed) return;
      closed = true;
      await sharedStdio.close().catch((error: unknown) => logger.warn({ err: error }, 'a shared upstream process could not be closed cleanly'));
      // Withheld outcomes the log could not take yet: one more try, so a clean stop leaves none for the next start to call unknown.
      const left = await recorder.drainBacklog();
      if (left > 0) logger.error({ outcomes: left }, 'outcomes of withheld results could not be recorded before the stop; the next start records them as OutcomeUnknown');
      await recorder.record([draft(systemContext, 'GatewayStopped', { instance: config.gateway.instance, reason })]).catch((error: unknown) => logger.warn({ err: error }, 'GatewayStopped could not be recorded'));
      await snapshotter?.stop();
      await evidence?.stop().catch((error: unknown) => logger.warn({ err: error }, 'the evidence tree could not be synced at shutdown; the next start resumes from its last sync'));
      await log.close();
      await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'spans could not all be exported at shutdown'));
    },
  };
}

/** What a start found of an unclean end before it (none: undefined, nothing to record). */
function recoveryFound(instance: string, unstopped: RunningInstance | undefined, tornTails: readonly RecoveryReport[], staleLock: StaleLock | undefined, settled: { readonly outcomesUnknown: number; readonly approvalsExpired: number; readonly sessionsClosed: number }): EventData<'GatewayRecovered'> | undefined {
  if (unstopped === undefined && tornTails.length === 0 && staleLock === undefined && settled.outcomesUnknown + settled.approvalsExpired + settled.sessionsClosed === 0) return undefined;
  return {
    instance,
    ...(unstopped !== undefined && { uncleanStop: { startedEventId: unstopped.startedEventId, startedAt: unstopped.startedAt } }),
    ...(tornTails.length > 0 && { tornTails: tornTails.map(({ segment, offset, bytesDropped, reason }) => ({ segment, offset, bytesDropped, reason })) }),
    ...(staleLock !== undefined && { staleLock: { pid: staleLock.pid } }),
    ...settled,
  };
}

export async function startGateway(input: AttestConfig | AttestConfigInput, options: GatewayOptions = {}): Promise<Gateway> {
  const core = await openGatewayCore(input, options);
  const { config, logger } = core;
  const sessions = new SessionRegistry();
  // Held calls wait here for a decision through the approvals API (HTTP only: stdio has no such API).
  const approvals = new ApprovalBroker(
    config.gateway.instance,
    () => (core.sessionDeps.governance?.policy.rules ?? []).flatMap((rule) => rule.approval?.approverRoles ?? []),
    (error, approvalId) => logger.error({ err: error, approvalId }, 'the expiry of a held call could not be recorded (the call is refused all the same)'),
  );
  const shared = core.sessionDeps;
  // Not a spread: keys, upstreams and governance are getters a reload swaps behind.
  const sessionDeps: SessionDeps = {
    recorder: shared.recorder,
    createLink: shared.createLink,
    logger: shared.logger,
    version: shared.version,
    instance: shared.instance,
    get keys() {
      return shared.keys;
    },
    get upstreams() {
      return shared.upstreams;
    },
    get governance() {
      return shared.governance;
    },
    pins: shared.pins,
    tracing: shared.tracing,
    health: shared.health,
    approvals,
  };
  const app = buildHttpServer({
    get config() {
      return core.config;
    },
    recorder: core.recorder,
    get keys() {
      return core.keys;
    },
    sessionDeps,
    logger,
    sessions,
    reload: (actor) => core.reloader.reload('admin', actor),
    metrics: core.metrics,
    health: core.health,
    checkpoint: () => (core.evidence === undefined ? { enabled: false } : { enabled: true, note: core.evidence.latestCheckpoint }),
  });
  const host = options.host ?? config.gateway.host;
  const port = options.port ?? config.gateway.port;
  const anonymous = config.auth.anonymous;
  if (anonymous?.enabled === true) {
    if (!isLoopbackBind(host) && !anonymous.allowNonLoopback) {
      const refusal = `auth.anonymous.enabled: refused on the non-loopback bind address "${host}": anyone who can reach it would be served without a credential; bind 127.0.0.1 for local development, or set auth.anonymous.allowNonLoopback: true`;
      await core.close(`start refused: ${refusal}`);
      throw new ConfigError(refusal);
    }
    logger.warn(
      { host, tenant: anonymous.tenant, agent: anonymous.agent, roles: anonymous.roles, allowTools: anonymous.allowTools, denyTools: anonymous.denyTools },
      `ANONYMOUS ACCESS IS ON (auth.anonymous): HTTP requests without a credential are served as principal "anonymous" of tenant "${anonymous.tenant}"${isLoopbackBind(host) ? '' : `, on the non-loopback address ${host}`}; for local development only`,
    );
  }
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
  // In the background: a stdio upstream that cannot start is said now (log, /healthz), not when an agent finds fewer tools.
  const probe = probeStdioUpstreams({ upstreams: config.upstreams, createLink: shared.createLink, health: core.health, recorder: core.recorder, systemContext: core.systemContext, logger, version: shared.version });

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - core.config.gateway.sessionIdleMs;
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
    get config() {
      return core.config;
    },
    log: core.log,
    metrics: core.metrics,
    reload: (trigger, actor) => core.reloader.reload(trigger, actor),
    close(reason = 'shutdown') {
      closing ??= (async () => {
        clearInterval(sweeper);
        await probe.stop();
        await Promise.all([...sessions.values()].map((entry) => entry.session.close(reason)));
        await app.close();
        await core.close(reason);
      })();
      return closing;
    },
  };
}


