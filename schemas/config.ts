/**
 * The config file contract (YAML or JSON). Validated once at start: unknown keys are rejected and
 * every error names its key path. Secrets are `${ENV}` references, resolved by the loader
 * (cli/config-file.ts), never literal in the file and never logged.
 */
import { z } from 'zod';
import { PolicyBundleSchema } from './policy.ts';
import { AnonymousAuthSchema, JwtAuthSchema, ResourceMetadataSchema, toolPattern } from './identity.ts';
import { VirtualServerSchema, virtualServerIssues } from './virtual-servers.ts';
import { ObservabilitySchema } from './observability.ts';

const upstreamName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/, 'letters, digits, "_" and "-", starting with a letter or digit').refine((s) => !s.includes('__'), 'must not contain "__" (the namespace separator)');
const durationMs = z.number().int().positive();

/** What is kept of arguments and results in the log. A digest of the original is always kept. */
export const RecordingSchema = z.enum(['full', 'redacted', 'digest']);

/** A tool name as the upstream lists it, or a pattern with `*` wildcards. */
const toolNamePattern = z.string().regex(/^[^\s]{1,128}$/, 'a tool name or a pattern with "*" (no spaces)');

const upstreamCommon = {
  /** Per-request timeout for calls forwarded to this upstream. */
  timeoutMs: durationMs.default(60_000),
  /** Time allowed to connect and initialize. */
  connectTimeoutMs: durationMs.default(30_000),
  recording: RecordingSchema.default('full'),
  /** Per-tool data policy (docs/data-policy.md): exact names win over patterns, then patterns in the order written. */
  recordingByTool: z.record(toolNamePattern, RecordingSchema).default({}),
  /** Pin each tool's definition when first seen; quarantine it when it changes (docs/tool-pinning.md). */
  pinTools: z.boolean().default(true),
};

export const StdioUpstreamSchema = z
  .object({
    transport: z.literal('stdio'),
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    restart: z
      .object({ initialDelayMs: durationMs.default(250), maxDelayMs: durationMs.default(30_000), maxRestarts: z.number().int().nonnegative().default(10) })
      .strict()
      .prefault({}),
    /** Spawn it once when the HTTP gateway starts and ask it to initialize, so a wrong command or path is said at start (log, /healthz). */
    probeAtStart: z.boolean().default(true),
    /**
     * One process for every session instead of one per session (docs/configuration.md "Shared stdio
     * upstreams"): for servers that keep no per-session state and send no requests to clients.
     */
    share: z.boolean().default(false),
    ...upstreamCommon,
  })
  .strict();

export const HttpUpstreamSchema = z
  .object({
    transport: z.enum(['streamable-http', 'sse']),
    url: z.url({ protocol: /^https?$/ }),
    headers: z.record(z.string(), z.string()).default({}),
    /**
     * The largest answer to one forwarded request the gateway reads (a JSON body, or everything on the
     * event stream answering that POST); beyond it the response is cut off and the call fails
     * (ATTEST_UPSTREAM_UNAVAILABLE naming the limit). Bounds the memory an upstream can make the gateway hold.
     */
    maxResponseBytes: z.number().int().min(1024).default(32 * 1024 * 1024),
    ...upstreamCommon,
  })
  .strict();

export const UpstreamSchema = z.discriminatedUnion('transport', [StdioUpstreamSchema, HttpUpstreamSchema]);
export type UpstreamConfig = z.infer<typeof UpstreamSchema>;
export type StdioUpstreamConfig = z.infer<typeof StdioUpstreamSchema>;
export type HttpUpstreamConfig = z.infer<typeof HttpUpstreamSchema>;

export const ApiKeySchema = z
  .object({
    id: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/),
    /** `sha256:<hex>` of the key. The key itself is never in the config. */
    hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex chars> (see `attest keys new`)'),
    tenant: z.string().min(1).default('default'),
    team: z.string().optional(),
    agent: z.string().optional(),
    roles: z.array(z.string()).default([]),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    /** Tools this key may call. Deny wins over allow; no match → denied. */
    allowTools: z.array(toolPattern).default(['*']),
    denyTools: z.array(toolPattern).default([]),
  })
  .strict();
export type ApiKeyConfig = z.infer<typeof ApiKeySchema>;

/**
 * Admission control of a log backend: while this many bytes of encoded events wait for the storage
 * (queued, or in the batch being written), new appends are refused at once (ATTEST_LOG_BUSY, fail
 * closed) instead of queueing until appendTimeoutMs. Bounds the memory a stalled storage can take.
 */
const queuedBytesBound = z.number().int().min(1024 * 1024).default(256 * 1024 * 1024);

export const FileLogSchema = z
  .object({
    backend: z.literal('file'),
    dir: z.string().min(1),
    segmentBytes: z.number().int().min(4096).default(64 * 1024 * 1024),
    /** Fail the call closed when the log has not acknowledged within this time. */
    appendTimeoutMs: durationMs.default(5_000),
    /** Upper bound on events per group commit. */
    maxBatchEvents: z.number().int().positive().default(4096),
    /** Admission control (queuedBytesBound above). */
    maxQueuedBytes: queuedBytesBound,
    /** `false` only for benchmarks of the recording-off reference; never in production. */
    fsync: z.boolean().default(true),
  })
  .strict();
/**
 * Kafka: acks=all, idempotent producer, key = stream. The topic must not be weaker than the
 * production settings (docs/backends.md); the gateway checks it at start and warns loudly, or
 * refuses when `requireProductionTopic` is set.
 */
export const KafkaLogSchema = z
  .object({
    backend: z.literal('kafka'),
    brokers: z.array(z.string().min(1)).min(1),
    topic: z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/).default('attest-events'),
    clientId: z.string().default('attest'),
    ssl: z.boolean().default(false),
    sasl: z
      .object({ mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']), username: z.string().min(1), password: z.string().min(1) })
      .strict()
      .optional(),
    appendTimeoutMs: durationMs.default(5_000),
    maxBatchEvents: z.number().int().positive().default(4096),
    maxQueuedBytes: queuedBytesBound,
    /** Create the topic at start when it does not exist (with the settings below). */
    createTopic: z.boolean().default(false),
    /**
     * Exactly one: the partition's offsets are the log's index, the one total order over all events
     * (the Merkle tree's leaf order). The adapter also refuses an existing topic with more.
     */
    partitions: z.literal(1, 'must be 1: one partition is the total order of the log (its index and the Merkle leaf order); scale with bigger brokers, not partitions').default(1),
    replicationFactor: z.number().int().positive().default(3),
    minInsyncReplicas: z.number().int().positive().default(2),
    /** Retention in ms; -1 keeps forever. Default: 190 days (EU AI Act Art. 19/26(6): at least six months). */
    retentionMs: z.number().int().min(-1).default(190 * 24 * 3600 * 1000),
    /** Refuse to start (instead of warning) when the topic is weaker than the production settings. */
    requireProductionTopic: z.boolean().default(false),
  })
  .strict();

/** KurrentDB / EventStoreDB: a stream per session, exact expected revision on every append. */
export const KurrentLogSchema = z
  .object({
    backend: z.literal('kurrent'),
    /** `kurrentdb://host:2113?tls=true` (or `esdb://…`); put credentials in ${ENV} references. */
    connectionString: z.string().min(1),
    /**
     * Prefix of every Attest stream name: `${streamPrefix}${stream}`. Readers filter `$all` on it,
     * so it must not be empty, and no other application's streams (nor another Attest log's prefix)
     * may start with it.
     */
    streamPrefix: z.string().regex(/^[a-zA-Z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-", 1 to 64 of them').default('attest-'),
    appendTimeoutMs: durationMs.default(5_000),
    maxQueuedBytes: queuedBytesBound,
  })
  .strict();

export const LogSchema = z.discriminatedUnion('backend', [FileLogSchema, KafkaLogSchema, KurrentLogSchema]);
export type KafkaLogConfig = z.infer<typeof KafkaLogSchema>;
export type KurrentLogConfig = z.infer<typeof KurrentLogSchema>;
export type FileLogConfig = z.infer<typeof FileLogSchema>;
export type LogConfig = z.infer<typeof LogSchema>;

/** A ClickHouse database or table name: unquoted it cannot carry SQL. */
const clickhouseName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/, 'letters, digits and "_", starting with a letter or "_" (at most 63)');

/** How the projector batches what it reads (docs/projector.md). */
const projectorBatching = {
  /** Most events per batch (one insert per table, then the checkpoint). */
  batchEvents: z.number().int().min(1).max(100_000).default(5_000),
  /** While following the live log, a batch is written at the latest this long after its first event. */
  flushMs: z.number().int().min(1).max(60_000).default(200),
};

/** The ClickHouse read model (docs/projector.md). Put the password in a ${ENV} reference. */
export const ClickHouseReadModelSchema = z
  .object({
    backend: z.literal('clickhouse'),
    /** The HTTP interface, e.g. `http://127.0.0.1:8123`. */
    url: z.url({ protocol: /^https?$/ }),
    /** Created at start when missing. */
    database: clickhouseName.default('attest'),
    user: z.string().min(1).default('default'),
    password: z.string().default(''),
    requestTimeoutMs: durationMs.default(30_000),
    ...projectorBatching,
  })
  .strict();

/** The zero-setup read model beside `attest start`; not implemented yet (refused below). */
export const EmbeddedReadModelSchema = z
  .object({
    backend: z.literal('embedded'),
    dir: z.string().min(1).optional(),
    ...projectorBatching,
  })
  .strict();

export const ReadModelSchema = z.discriminatedUnion('backend', [ClickHouseReadModelSchema, EmbeddedReadModelSchema]);
export type ClickHouseReadModelConfig = z.infer<typeof ClickHouseReadModelSchema>;
export type ReadModelConfig = z.infer<typeof ReadModelSchema>;
/**
 * What a flood of refusals may cost the log: each source (remote address) may have its refusals
 * recorded one by one at `perSourcePerSecond` after a burst of `perSourceBurst`, and all sources
 * together at `totalPerSecond` after `totalBurst`; beyond that they are counted, and the counts
 * recorded once per `summaryIntervalMs` (RequestsRejectedCounted). Every refusal is accounted for.
 */
export const RefusalRecordingSchema = z
  .object({
    perSourceBurst: z.number().int().min(1).default(20),
    perSourcePerSecond: z.number().positive().default(1),
    totalBurst: z.number().int().min(1).default(200),
    totalPerSecond: z.number().positive().default(10),
    summaryIntervalMs: durationMs.min(100).default(10_000),
    /** Sources with a budget of their own; beyond, new sources share one budget (they are still counted by address). */
    maxSourcesTracked: z.number().int().min(1).default(10_000),
    /** Rows (source × reason) per summary event; the rest are folded into `otherSources`. */
    maxRowsPerSummary: z.number().int().min(1).default(100),
    /**
     * A refusal beyond the budget is answered after this long (a tarpit): a client flooding on its
     * connections gets at most one answer per connection per delay, and the agents keep the CPU.
     */
    overBudgetDelayMs: z.number().int().nonnegative().max(60_000).default(1_000),
  })
  .strict();

export const FrontDoorSchema = z
  .object({
    refusals: RefusalRecordingSchema.prefault({}),
    /** Time to receive a whole request, headers and body (408 beyond, recorded). */
    requestTimeoutMs: durationMs.default(30_000),
    /** Time to receive the request headers (408 beyond); at most requestTimeoutMs. */
    headersTimeoutMs: durationMs.default(10_000),
    /** An idle keep-alive connection is closed after this long. */
    keepAliveTimeoutMs: durationMs.default(5_000),
    /** Open connections one remote address may hold; beyond, new ones get 503 and are closed (counted as refusals). */
    maxConnectionsPerSource: z.number().int().min(1).default(256),
  })
  .strict()
  .refine((f) => f.headersTimeoutMs <= f.requestTimeoutMs, { path: ['headersTimeoutMs'], message: 'must not exceed frontDoor.requestTimeoutMs' });
export type FrontDoorConfig = z.infer<typeof FrontDoorSchema>;

export const ConfigSchema = z
  .object({
    gateway: z
      .object({
        instance: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/).default('gw-1'),
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8787),
        /** Largest HTTP body accepted, in bytes (413 beyond). */
        maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
        /** Browser origins allowed to call (DNS-rebinding defence). Requests without Origin pass. */
        allowedOrigins: z.array(z.string()).default([]),
        /** Host header values accepted; defaults to loopback names when bound to loopback. */
        allowedHosts: z.array(z.string()).optional(),
        /** Idle session expiry. */
        sessionIdleMs: durationMs.default(30 * 60_000),
        /**
         * Open sessions allowed per credential, per tenant and in all (docs/configuration.md "Session
         * limits"); an initialize beyond one is refused with ATTEST_SESSION_LIMIT (HTTP 429), recorded.
         */
        sessionLimits: z
          .object({ perKey: z.number().int().positive().default(256), perTenant: z.number().int().positive().default(1024), total: z.number().int().positive().default(4096) })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** The HTTP front door's own limits: refusal recording, slow clients, connections per source (docs/configuration.md "Front door"). */
    frontDoor: FrontDoorSchema.prefault({}),
    log: LogSchema,
    /**
     * The gateway's own state beside the log: snapshots of its projections at a log position, so a
     * start reads only the log's tail (docs/configuration.md "Start-up snapshots"). `dir` defaults to
     * `<log.dir>.state` for a file log, else `attest-state/<gateway.instance>` (relative to the config file).
     */
    state: z
      .object({
        dir: z.string().min(1).optional(),
        snapshots: z.boolean().default(true),
        /** A snapshot once this many events were written since the last one… */
        snapshotEveryEvents: z.number().int().min(100).default(10_000),
        /** …or this long after the last one, if anything was written. */
        snapshotIntervalMs: durationMs.default(30_000),
      })
      .strict()
      .prefault({}),
    // --- evidence (issue 12) ---
    /**
     * Tamper evidence: a Merkle tree over every event and signed checkpoints of it (eventlog/evidence,
     * gateway/evidence, docs/configuration.md "Evidence"). `dir` defaults to `<state.dir>/merkle`,
     * `origin` to `attest/<gateway.instance>` (both set by parseConfig).
     */
    evidence: z
      .object({
        enabled: z.boolean().default(false),
        dir: z.string().min(1).optional(),
        /** Leaves appended between syncs of the tree's files and its cursor. */
        syncEveryLeaves: z.number().int().min(1).default(1024),
        /** The checkpoints' origin line (C2SP tlog-checkpoint): the log's name for witnesses, e.g. `example.com/attest/prod`. */
        origin: z.string().regex(/^[^\s+\p{Cc}]{1,255}$/u, 'one line of at most 255 characters, with no space, "+" or control character (it also names the generated signing key)').optional(),
        /** The signer key (`PRIVATE+KEY+<name>+<id>+<base64>`, from `attest keys note`) as a `${ENV}` reference, never literal. */
        signingKey: z.string().min(1).optional(),
        /** A file holding the signer key as `attest keys note --out FILE` wrote it (not readable by others). */
        keyFile: z.string().min(1).optional(),
        /** Verifier keys (`<name>+<id>+<base64>`) that signed earlier checkpoints of this log: a key rotation keeps them trusted. */
        previousVerifierKeys: z.array(z.string().min(1)).default([]),
        /** A checkpoint once this many events were added to the tree since the last one… */
        checkpointEveryEvents: z.number().int().min(1).default(1000),
        /** …or this many seconds after the last one, if the tree grew. */
        checkpointEverySeconds: z.number().min(0.1).default(10),
      })
      .strict()
      .refine((evidence) => evidence.signingKey === undefined || evidence.keyFile === undefined, { path: ['keyFile'], message: 'give evidence.signingKey or evidence.keyFile, not both' })
      .prefault({}),
    // --- end evidence ---
    auth: z
      .object({
        keys: z.array(ApiKeySchema).default([]),
        /** Key used by `attest gateway --stdio` sessions when ATTEST_API_KEY is not set; none → stdio refused. */
        stdioKeyId: z.string().optional(),
        /** JWT bearer tokens from an identity provider (docs/identity.md); absent → API keys only. */
        jwt: JwtAuthSchema.optional(),
        /** RFC 9728 protected-resource metadata served at /.well-known/oauth-protected-resource. */
        resourceMetadata: ResourceMetadataSchema.optional(),
        /** A principal for HTTP requests without any credential, for local development; off unless enabled (docs/identity.md). */
        anonymous: AnonymousAuthSchema.optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Governance: CEL rules, rate limits, budgets, loop guard (schemas/policy.ts). Absent → only
     * the keys' allowTools/denyTools apply. Present → its defaultEffect (deny unless set) applies.
     */
    policy: PolicyBundleSchema.optional(),
    /** Metrics and traces (schemas/observability.ts, docs/observability.md). */
    observability: ObservabilitySchema.prefault({}),
    upstreams: z.record(upstreamName, UpstreamSchema).refine((u) => Object.keys(u).length > 0, 'at least one upstream is required'),
    /** Where the projector keeps the read models it builds from the log (docs/projector.md); absent: no projector. */
    readModel: ReadModelSchema.optional(),
    /** Named bundles of upstream tools served at `/servers/<name>/mcp` (schemas/virtual-servers.ts, docs/configuration.md). */
    virtualServers: z.record(upstreamName, VirtualServerSchema).optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const issue of virtualServerIssues(config.virtualServers, Object.keys(config.upstreams))) ctx.addIssue({ code: 'custom', ...issue });
    if (config.readModel?.backend === 'embedded') {
      ctx.addIssue({ code: 'custom', path: ['readModel', 'backend'], message: '"embedded" is not implemented yet (issue 13): use "clickhouse" with a url, or remove readModel' });
    }
    // The metadata sends clients to an OAuth login; without auth.jwt the gateway would refuse the tokens they bring back.
    if (config.auth.resourceMetadata !== undefined && config.auth.jwt === undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'resourceMetadata'], message: 'is served only with auth.jwt (OAuth access tokens): configure auth.jwt, or remove auth.resourceMetadata' });
    }
  });

export type AttestConfig = z.infer<typeof ConfigSchema>;
export type AttestConfigInput = z.input<typeof ConfigSchema>;
