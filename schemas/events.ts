/**
 * The event contract. Every event is a readonly discriminated union member (past tense),
 * validated by zod wherever it crosses a boundary (file bytes, Kafka records, exports).
 *
 * Envelope, per ARCHITECTURE.md "Events":
 *   identity  id (UUIDv7), type, schemaVersion
 *   time      occurredAt (gateway clock, ms precision, ISO-8601 UTC)
 *   context   tenant, stream, traceparent?, callId?
 *   actor     the authenticated principal
 *   chain     seq (1, 2, 3 … per stream), prevHash (null at seq 1), hash
 *   body      data, per type
 *
 * `hash` = SHA-256 (hex) over the RFC 8785 canonical JSON of the event without `hash`
 * (see canonical.ts). The chain is sealed by the event log at append time, so a draft carries
 * neither seq, prevHash nor hash.
 */
import { z } from 'zod';
import { DecisionEnforcementSchema } from './policy.ts';

export const SCHEMA_VERSION = 1 as const;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256');
/** `sha256:<hex>` digest of the original bytes of a payload; always kept, whatever the data policy. */
export const DigestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/);

export const PrincipalSchema = z
  .object({
    /** How the principal was established. */
    kind: z.enum(['apiKey', 'jwt', 'anonymous', 'system']),
    /** Key id (never the key itself) or JWT subject. */
    id: z.string().min(1),
    tenant: z.string().min(1),
    team: z.string().optional(),
    agent: z.string().optional(),
    roles: z.array(z.string()).readonly(),
  })
  .strict()
  .readonly();
export type Principal = z.infer<typeof PrincipalSchema>;

export const SYSTEM_PRINCIPAL: Principal = Object.freeze({ kind: 'system', id: 'attest', tenant: 'system', roles: Object.freeze([]) });

/**
 * A JSON-RPC payload as recorded. `recording` says what `body` holds:
 *   full     the message params/result exactly as seen
 *   redacted the same with personal data and secrets masked (`[email]`, `[card]` …); `redactions` counts them per kind
 *   digest   nothing but the digest (body absent)
 * `digest` is always the SHA-256 of the canonical JSON of the original.
 */
export const RecordedPayloadSchema = z
  .object({
    recording: z.enum(['full', 'redacted', 'digest']),
    digest: DigestSchema,
    bytes: z.number().int().nonnegative(),
    body: z.unknown().optional(),
    /** With `redacted`: how many matches of each kind were masked (gateway/redaction/redact.ts). */
    redactions: z.record(z.string(), z.number().int().positive()).optional(),
  })
  .strict()
  .readonly();
export type RecordedPayload = z.infer<typeof RecordedPayloadSchema>;

/** Where a message came from, relative to the gateway. */
export const PeerSchema = z.enum(['agent', 'upstream', 'gateway']);

const JsonRpcIdSchema = z.union([z.string(), z.number()]);

const dataSchemas = {
  SessionOpened: z
    .object({
      transport: z.enum(['streamable-http', 'sse', 'stdio']),
      endpoint: z.string(),
      upstreams: z.array(z.string()).readonly(),
      /** The virtual server the session was opened on (`/servers/<name>/…`), when it was one. */
      virtualServer: z.string().optional(),
      /**
       * The gateway instance that opened the session and alone appends to its stream (several
       * replicas may share one log). Absent in logs written before it existed: such a session
       * belongs to the instance of the latest GatewayStarted before it (those logs had one writer).
       */
      instance: z.string().min(1).optional(),
      remoteAddress: z.string().optional(),
      userAgent: z.string().optional(),
    })
    .strict(),
  SessionInitialized: z
    .object({
      protocolVersion: z.string(),
      clientInfo: z.unknown(),
      clientCapabilities: z.unknown(),
    })
    .strict(),
  SessionClosed: z.object({ reason: z.string() }).strict(),
  /** A JSON-RPC request: from the agent (a call), or from an upstream to the agent (sampling, elicitation, roots). */
  RequestReceived: z
    .object({
      from: PeerSchema,
      method: z.string(),
      jsonrpcId: JsonRpcIdSchema,
      upstream: z.string().optional(),
      /** The upstream-side name (tool, prompt) or URI the request targets, after namespace mapping. */
      target: z.string().optional(),
      params: RecordedPayloadSchema,
    })
    .strict(),
  DecisionMade: z
    .object({
      decision: z.enum(['allow', 'deny']),
      /** Stage of the decision pipeline that decided (e.g. `auth`, `tool-access`, `protocol`). */
      stage: z.string(),
      ruleId: z.string(),
      reason: z.string(),
      /** `forward` to an upstream, or answered by the gateway itself. */
      route: z.enum(['forward', 'local']),
      /** sha256 of the policy bundle in force, when one is configured. */
      policyHash: DigestSchema.optional(),
      /** What a metered call was charged (cost, limit ids, arguments digest) or the limit that refused it. */
      enforcement: DecisionEnforcementSchema.optional(),
    })
    .strict(),
  ResultReturned: z
    .object({
      from: PeerSchema,
      upstream: z.string().optional(),
      isError: z.boolean(),
      durationMs: z.number().nonnegative(),
      result: RecordedPayloadSchema,
    })
    .strict(),
  ErrorReturned: z
    .object({
      from: PeerSchema,
      upstream: z.string().optional(),
      code: z.number().int(),
      /** Stable string code for errors raised by the gateway (e.g. ATTEST_LOG_UNAVAILABLE). */
      errorCode: z.string().optional(),
      message: z.string(),
      durationMs: z.number().nonnegative(),
      /** The JSON-RPC error's `data`, recorded by the data policy like a result (absent when the error had none). */
      data: RecordedPayloadSchema.optional(),
    })
    .strict(),
  NotificationRelayed: z
    .object({
      from: PeerSchema,
      method: z.string(),
      upstream: z.string().optional(),
      params: RecordedPayloadSchema,
    })
    .strict(),
  /** Input refused before it became a session-level request: malformed JSON, bad JSON-RPC, no key, oversized body … */
  RequestRejected: z
    .object({
      errorCode: z.string(),
      httpStatus: z.number().int().optional(),
      jsonrpcCode: z.number().int().optional(),
      message: z.string(),
      method: z.string().optional(),
      path: z.string().optional(),
      sessionId: z.string().optional(),
      remoteAddress: z.string().optional(),
      bodyBytes: z.number().int().nonnegative().optional(),
    })
    .strict(),
  /** Emitted by the reconciler for a call that was forwarded but has no recorded outcome (crash in between). */
  OutcomeUnknown: z
    .object({ requestEventId: z.string(), method: z.string(), upstream: z.string().optional(), detectedAt: z.string() })
    .strict(),
  UpstreamConnected: z
    .object({ upstream: z.string(), transport: z.enum(['stdio', 'streamable-http', 'sse']), pid: z.number().int().optional(), serverInfo: z.unknown().optional(), protocolVersion: z.string().optional() })
    .strict(),
  UpstreamLost: z
    .object({ upstream: z.string(), reason: z.string(), willRestart: z.boolean(), exitCode: z.number().int().nullable().optional() })
    .strict(),
  GatewayStarted: z
    .object({ instance: z.string(), version: z.string(), configHash: DigestSchema, policyHash: DigestSchema.optional(), upstreams: z.array(z.string()).readonly() })
    .strict(),
  GatewayStopped: z.object({ instance: z.string(), reason: z.string() }).strict(),
  /** A virtual key issued at run time (admin API). `keyHash` is the sha256 of the key; the key itself is never recorded. */
  KeyIssued: z
    .object({
      keyId: z.string().min(1),
      keyHash: DigestSchema,
      tenant: z.string().min(1),
      team: z.string().optional(),
      agent: z.string().optional(),
      roles: z.array(z.string()).readonly(),
      expiresAt: z.string().optional(),
      allowTools: z.array(z.string()).readonly(),
      denyTools: z.array(z.string()).readonly(),
    })
    .strict(),
  /** Keys revoked at run time: one key, or every key of a team or tenant (`keyIds` lists them). */
  KeyRevoked: z
    .object({
      scope: z.enum(['key', 'team', 'tenant']),
      tenant: z.string().min(1),
      team: z.string().optional(),
      keyId: z.string().optional(),
      keyIds: z.array(z.string()).readonly(),
      reason: z.string().optional(),
    })
    .strict(),
  /**
   * A `hold` rule matched: the call (its `callId` is the approval id) waits for a person. Nothing
   * is forwarded until an ApprovalGranted and an allow DecisionMade follow. Actor: the agent.
   */
  ApprovalRequested: z
    .object({
      upstream: z.string(),
      tool: z.string(),
      /** `sha256:` of the canonical JSON of the call's `arguments`. */
      argumentsDigest: DigestSchema,
      ruleId: z.string(),
      reason: z.string(),
      /** A principal with any of these roles may decide (never the agent itself). */
      approverRoles: z.array(z.string()).readonly(),
      timeoutMs: z.number().int().positive(),
      /** Past this time the call is denied (ApprovalExpired). */
      expiresAt: z.string(),
      /** The gateway instance holding the call (a restarted instance expires its own dangling approvals). */
      instance: z.string(),
    })
    .strict(),
  /** Actor: the approver. */
  ApprovalGranted: z.object({ reason: z.string() }).strict(),
  /** Actor: the approver. */
  ApprovalDenied: z.object({ reason: z.string() }).strict(),
  /** Nobody decided in time, or the gateway holding the call restarted. Actor: the gateway. */
  ApprovalExpired: z.object({ reason: z.string(), expiresAt: z.string() }).strict(),
  /** The agent cancelled the call or its session ended while it waited. */
  ApprovalWithdrawn: z.object({ reason: z.string() }).strict(),
  /** A reloaded config (SIGHUP or the admin API) was validated and is now in force for new decisions. */
  ConfigApplied: z
    .object({
      instance: z.string(),
      trigger: z.enum(['signal', 'admin']),
      configHash: DigestSchema,
      previousConfigHash: DigestSchema,
      policyHash: DigestSchema.optional(),
      previousPolicyHash: DigestSchema.optional(),
      /** Top-level sections whose content changed (e.g. `policy`, `auth`, `upstreams`, `gateway.allowedOrigins`). */
      changed: z.array(z.string()).readonly(),
      upstreamsAdded: z.array(z.string()).readonly(),
      upstreamsRemoved: z.array(z.string()).readonly(),
    })
    .strict(),
  /** A reload was refused; the config in force is unchanged. `issues` name key paths, never secret values. */
  ConfigRejected: z
    .object({
      instance: z.string(),
      trigger: z.enum(['signal', 'admin']),
      configHash: DigestSchema.optional(),
      currentConfigHash: DigestSchema,
      issues: z.array(z.string()).readonly(),
    })
    .strict(),
  /**
   * Tool-definition pinning (docs/tool-pinning.md). `hash` is the digest of the pinned fields of the
   * definition (name, title, description, inputSchema, outputSchema, annotations); the first one
   * seen per upstream and tool is the pin.
   */
  ToolPinned: z.object({ upstream: z.string(), tool: z.string(), hash: DigestSchema, definition: z.unknown(), session: z.string().optional() }).strict(),
  /** An upstream listed a definition differing from the pin: the tool is quarantined until an admin decides. */
  ToolDefinitionChanged: z
    .object({ upstream: z.string(), tool: z.string(), pinnedHash: DigestSchema, observedHash: DigestSchema, definition: z.unknown(), session: z.string().optional() })
    .strict(),
  /** An admin (the actor) approved a changed definition: `hash` is the new pin. */
  ToolDefinitionApproved: z.object({ upstream: z.string(), tool: z.string(), previousHash: DigestSchema, hash: DigestSchema, reason: z.string() }).strict(),
  /** An admin (the actor) rejected a changed definition: the pin stays, the definition stays refused. */
  ToolDefinitionRejected: z.object({ upstream: z.string(), tool: z.string(), pinnedHash: DigestSchema, rejectedHash: DigestSchema, reason: z.string() }).strict(),
} as const;

export type EventType = keyof typeof dataSchemas;
export const EVENT_TYPES = Object.freeze(Object.keys(dataSchemas) as EventType[]);

const envelopeShape = {
  id: z.string().uuid(),
  schemaVersion: z.literal(SCHEMA_VERSION),
  occurredAt: z.string().datetime({ precision: 3 }),
  tenant: z.string().min(1),
  stream: z.string().min(1),
  traceparent: z.string().optional(),
  callId: z.string().optional(),
  actor: PrincipalSchema,
};
const chainShape = { seq: z.number().int().positive(), prevHash: hex64.nullable(), hash: hex64 };

function variants<C extends Record<string, z.ZodTypeAny>>(chain: C) {
  return (Object.keys(dataSchemas) as EventType[]).map((type) =>
    z.object({ ...envelopeShape, ...chain, type: z.literal(type), data: dataSchemas[type] }).strict().readonly(),
  );
}

// zod's discriminatedUnion needs a tuple; the map above keeps one entry per event type.
const draftVariants = variants({});
const sealedVariants = variants(chainShape);
export const EventDraftSchema = z.discriminatedUnion('type', draftVariants as unknown as [(typeof draftVariants)[number], ...(typeof draftVariants)[number][]]);
export const AttestEventSchema = z.discriminatedUnion('type', sealedVariants as unknown as [(typeof sealedVariants)[number], ...(typeof sealedVariants)[number][]]);

type Envelope = {
  readonly id: string;
  readonly schemaVersion: typeof SCHEMA_VERSION;
  readonly occurredAt: string;
  readonly tenant: string;
  readonly stream: string;
  readonly traceparent?: string | undefined;
  readonly callId?: string | undefined;
  readonly actor: Principal;
};
type Chain = { readonly seq: number; readonly prevHash: string | null; readonly hash: string };
export type EventData<T extends EventType> = Readonly<z.infer<(typeof dataSchemas)[T]>>;
/** An event before the log seals it into its stream's chain. */
export type EventDraft = { [T in EventType]: Envelope & { readonly type: T; readonly data: EventData<T> } }[EventType];
/** An event as stored: sealed into its stream's hash chain. */
export type AttestEvent = { [T in EventType]: Envelope & Chain & { readonly type: T; readonly data: EventData<T> } }[EventType];
export type EventOfType<T extends EventType> = Extract<AttestEvent, { type: T }>;
