/**
 * The event contract. Every event is a readonly discriminated union member (past tense). It is a
 * public contract read by other processes and other versions (docs/events.md), so it comes in two
 * strengths built from one definition:
 *   write  what this code appends: strict (unknown keys refused), open vocabularies checked
 *          against schemas/vocabulary.ts — a draft that breaks it is a gateway bug, refused;
 *   read   what a reader accepts: unknown keys kept (a newer minor version added them), open
 *          vocabularies any string; older major versions are upcast first (`readEvent`).
 *
 * Envelope, per docs/architecture.md "Events":
 *   identity  id (UUIDv7), type, schemaVersion
 *   time      occurredAt (gateway clock, ms precision, ISO-8601 UTC)
 *   context   tenant, stream, traceparent?, callId?
 *   actor     the authenticated principal
 *   chain     seq (1, 2, 3 … per stream), prevHash (null at seq 1), hash
 *   body      data, per type
 *
 * `hash` = SHA-256 (hex) over the RFC 8785 canonical JSON of the event *as written* without
 * `hash` (see canonical.ts): upcasting changes the view a reader works with, never what the
 * chain and the Merkle tree commit to.
 *
 * Versions: `schemaVersion` is "MAJOR.MINOR" (a string) from 2.0 on; the first contract wrote the
 * number 1 (read as 1.0). A minor version only adds: optional fields, event types, values of the
 * open vocabularies. Anything else is a new major version with an upcaster from the previous one.
 */
import { z } from 'zod';
import { LOOP_GUARD_ID } from './policy.ts';
import { EVENT_ERROR_CODES, STAGE_NAMES } from './vocabulary.ts';

/** The contract version this code writes. */
export const SCHEMA_VERSION = '2.1' as const;
export const SCHEMA_MAJOR = 2;
export const SCHEMA_MINOR = 1;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256');
/** `sha256:<hex>` digest of the original bytes of a payload; always kept, whatever the data policy. */
export const DigestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const digest = DigestSchema;

type Strength = 'write' | 'read';

/**
 * Every schema of the contract, at one strength. The two strengths differ only at run time (how
 * unknown keys and unknown vocabulary values are treated); their static types are the declared
 * shapes, so `object()` is typed as a plain ZodObject for both.
 */
function contract(strength: Strength) {
  const object = <S extends z.ZodRawShape>(shape: S): z.ZodObject<S> => strength === 'write' ? z.strictObject(shape) : z.looseObject(shape);
  const vocabulary = (name: string, values: readonly string[]): z.ZodString => {
    if (strength === 'read') return z.string().min(1);
    const known = new Set(values);
    return z.string().refine((value) => known.has(value), { message: `not a known ${name} (schemas/vocabulary.ts)` });
  };
  const stage = vocabulary('stage', STAGE_NAMES);
  const errorCode = vocabulary('error code', EVENT_ERROR_CODES);

  /** A note key (C2SP signed-note): its name, key id (8 lowercase hex digits) and public verifier key `<name>+<id>+<base64>`. */
  const checkpointKey = object({ name: z.string().min(1), keyId: z.string().regex(/^[0-9a-f]{8}$/), verifierKey: z.string().min(1) });

  const principal = object({
    /** How the principal was established. */
    kind: z.enum(['apiKey', 'jwt', 'anonymous', 'system']),
    /** Key id (never the key itself) or JWT subject. */
    id: z.string().min(1),
    tenant: z.string().min(1),
    team: z.string().optional(),
    agent: z.string().optional(),
    roles: z.array(z.string()).readonly(),
  }).readonly();

  /**
   * A JSON-RPC payload as recorded. `recording` says what `body` holds:
   *   full     the message params/result exactly as seen
   *   redacted the same with personal data and secrets masked (`[email]`, `[card]` …); `redactions` counts them per kind
   *   digest   nothing but the digest (body absent)
   * `digest` is always the SHA-256 of the canonical JSON of the original.
   */
  const payload = object({
    recording: z.enum(['full', 'redacted', 'digest']),
    digest,
    bytes: z.number().int().nonnegative(),
    body: z.unknown().optional(),
    /** With `redacted`: how many matches of each kind were masked (gateway/redaction/redact.ts). */
    redactions: z.record(z.string(), z.number().int().positive()).optional(),
  }).readonly();

  /** Why a call was refused by a limit: which limit, its value, the spend, and when it resets. */
  const limitTrip = z.discriminatedUnion('kind', [
    object({
      kind: z.literal('rate'),
      limitId: z.string(),
      scope: z.enum(['key', 'team', 'tenant', 'tool']),
      scopeValue: z.string(),
      /** Bucket capacity (calls). */
      limit: z.number(),
      refillPerSecond: z.number(),
      retryAfterMs: z.number().int().nonnegative(),
      resetsAt: z.string(),
      reason: z.string(),
    }),
    object({
      kind: z.literal('budget'),
      limitId: z.string(),
      scope: z.enum(['key', 'team', 'tenant']),
      scopeValue: z.string(),
      period: z.enum(['hour', 'day', 'month']),
      metric: z.enum(['calls', 'cost']),
      limit: z.number(),
      /** Spent in the current period before this call. */
      spent: z.number(),
      /** What this call would have added (1 for calls, its cost for cost). */
      requested: z.number(),
      retryAfterMs: z.number().int().nonnegative(),
      resetsAt: z.string(),
      reason: z.string(),
    }),
    object({
      kind: z.literal('loop'),
      limitId: z.literal(LOOP_GUARD_ID),
      /** maxRepeats. */
      limit: z.number(),
      /** Identical calls within the window, this one included. */
      count: z.number().int(),
      windowMs: z.number().int(),
      retryAfterMs: z.number().int().nonnegative(),
      resetsAt: z.string(),
      reason: z.string(),
    }),
  ]);

  /**
   * Carried by DecisionMade: what an allowed call was charged, or which limit refused it.
   * Rebuilding limits from the log reads this instead of re-evaluating `match` expressions, which
   * may depend on arguments recorded only as a digest.
   */
  const enforcement = object({
    /** Cost of the call under the cost model in force. */
    cost: z.number().nonnegative(),
    /** Ids of the rate limits and budgets the call counts against (their `match` held). */
    limits: z.array(z.string()).readonly(),
    /** `sha256:` of the canonical JSON of the call's `arguments` (not of params: `_meta` differs per call). */
    argumentsDigest: digest,
    trip: limitTrip.optional(),
  }).readonly();

  /**
   * Attacker-controlled strings (Host, User-Agent, paths, methods, messages echoing input) are
   * recorded cut to a documented length; the original's length (UTF-16 units) and digest stay.
   */
  const truncatedFields = z.record(z.string(), object({ length: z.number().int().positive(), digest }).readonly()).readonly();

  /** Where a message came from, relative to the gateway. */
  const peer = z.enum(['agent', 'upstream', 'gateway']);
  const jsonrpcId = z.union([z.string(), z.number()]);

  const data = {
    SessionOpened: object({
      transport: z.enum(['streamable-http', 'sse', 'stdio']),
      endpoint: z.string(),
      upstreams: z.array(z.string()).readonly(),
      /**
       * The gateway instance that opened the session and alone appends to its stream (several
       * replicas may share one log). Always written since 2.0; absent in older logs, where a
       * session belongs to the instance of the latest GatewayStarted before it (one writer).
       */
      // Required of writers, optional to readers; typed as the readers see it.
      instance: (strength === 'write' ? z.string().min(1) : z.string().min(1).optional()) as z.ZodOptional<z.ZodString>,
      /** The virtual server the session was opened on (`/servers/<name>/…`), when it was one. */
      virtualServer: z.string().optional(),
      remoteAddress: z.string().optional(),
      userAgent: z.string().optional(),
      /** Since 2.1: `userAgent` cut to its recorded length, with the original's length and digest. */
      truncated: truncatedFields.optional(),
    }),
    /** The agent's `initialize` was answered: what it said about itself, and the version agreed. */
    SessionInitialized: object({
      protocolVersion: z.string(),
      clientInfo: z.unknown(),
      clientCapabilities: z.unknown(),
    }),
    SessionClosed: object({ reason: z.string() }),
    /** A JSON-RPC request: from the agent (a call), or from an upstream to the agent (sampling, elicitation, roots). */
    RequestReceived: object({
      from: peer,
      method: z.string(),
      jsonrpcId,
      upstream: z.string().optional(),
      /** What the request targets on the upstream, after namespace mapping: the tool or prompt name, or the resource URI. */
      target: z.string().optional(),
      params: payload,
    }),
    DecisionMade: object({
      decision: z.enum(['allow', 'deny']),
      /** Stage of the decision pipeline that decided (STAGES in schemas/vocabulary.ts). */
      stage,
      /** The rule that decided: a built-in one (BUILTIN_RULE_IDS), a policy rule, a limit, or a key's tool list. */
      ruleId: z.string(),
      reason: z.string(),
      /** `forward` to an upstream, or answered by the gateway itself. */
      route: z.enum(['forward', 'local']),
      /** sha256 of the policy bundle in force, when one is configured. */
      policyHash: digest.optional(),
      /** What a metered call was charged (cost, limit ids, arguments digest) or the limit that refused it. */
      enforcement: enforcement.optional(),
    }),
    ResultReturned: object({
      from: peer,
      upstream: z.string().optional(),
      isError: z.boolean(),
      durationMs: z.number().nonnegative(),
      result: payload,
    }),
    ErrorReturned: object({
      from: peer,
      upstream: z.string().optional(),
      /** The JSON-RPC error code the requester got. */
      jsonrpcCode: z.number().int(),
      /** Stable string code for errors raised by the gateway (EVENT_ERROR_CODES, e.g. ATTEST_LOG_UNAVAILABLE). */
      errorCode: errorCode.optional(),
      message: z.string(),
      durationMs: z.number().nonnegative(),
      /** The JSON-RPC error's `data`, recorded by the data policy like a result (absent when the error had none). */
      data: payload.optional(),
      /**
       * Since 2.1, with ATTEST_RESULT_NOT_RECORDED: the upstream ran the call and answered, and the
       * answer was withheld from the agent because the log could not record it. What the answer
       * was (its digest and size, when it has a canonical form) and why it was withheld. Recorded
       * as soon as the log takes it, so the call has a true outcome and never becomes an
       * OutcomeUnknown at the next start.
       */
      withheld: object({
        /** `log-refused`: the log would not take the result (too large for one record, e.g. a Kafka topic's max.message.bytes); `log-unavailable`: it could not write it (full disk, timeout, brokers down); `unrecordable`: the answer has no canonical JSON form (nesting over 512 levels, a lone surrogate …). */
        reason: z.enum(['log-refused', 'log-unavailable', 'unrecordable']),
        /** The log's error code (ATTEST_LOG_UNAVAILABLE, ATTEST_LOG_BUSY, ATTEST_EVENT_INVALID …) with its system cause, e.g. `ATTEST_LOG_UNAVAILABLE, ENOSPC`. */
        logError: z.string().optional(),
        /** `sha256:` of the canonical JSON of the answer's result, and its size in bytes (absent when it has no canonical form). */
        digest: digest.optional(),
        bytes: z.number().int().nonnegative().optional(),
        /** The result's own `isError`. */
        isError: z.boolean().optional(),
      }).readonly().optional(),
    }),
    NotificationRelayed: object({
      from: peer,
      method: z.string(),
      upstream: z.string().optional(),
      params: payload,
    }),
    /** Input refused before it became a session-level request: malformed JSON, bad JSON-RPC, no key, oversized body … */
    RequestRejected: object({
      errorCode,
      httpStatus: z.number().int().optional(),
      jsonrpcCode: z.number().int().optional(),
      message: z.string(),
      method: z.string().optional(),
      path: z.string().optional(),
      sessionId: z.string().optional(),
      remoteAddress: z.string().optional(),
      bodyBytes: z.number().int().nonnegative().optional(),
      /** Since 2.1: the request's Host header, when the refusal is about it or it is worth keeping (capped as below). */
      host: z.string().optional(),
      /** Since 2.1: the request's User-Agent (capped as below). */
      userAgent: z.string().optional(),
      /** Since 2.1: fields cut to their recorded length (docs/events.md "Capped strings"), with the original's length and digest. */
      truncated: truncatedFields.optional(),
    }),
    /**
     * Since 2.1: refusals beyond the recording budget of their source (docs/configuration.md
     * "Front door"), counted instead of recorded one by one; one event per window with any.
     * Every refusal is either a RequestRejected or counted in exactly one of these.
     */
    RequestsRejectedCounted: object({
      instance: z.string().min(1),
      windowStart: z.string(),
      windowEnd: z.string(),
      /** Refusals counted in the window, all rows and `otherSources` together. */
      total: z.number().int().positive(),
      /** By source and reason, largest first. */
      counts: z.array(object({
        remoteAddress: z.string(),
        errorCode,
        httpStatus: z.number().int().optional(),
        count: z.number().int().positive(),
      }).readonly()).readonly(),
      /** Rows beyond the per-event cap, folded: how many sources, how many refusals. */
      otherSources: object({ sources: z.number().int().positive(), count: z.number().int().positive() }).readonly().optional(),
    }),
    /** Emitted by the reconciler for a call that was forwarded but has no recorded outcome (crash in between). */
    OutcomeUnknown: object({ requestEventId: z.string(), method: z.string(), upstream: z.string().optional(), detectedAt: z.string() }),
    UpstreamConnected: object({ upstream: z.string(), transport: z.enum(['stdio', 'streamable-http', 'sse']), pid: z.number().int().optional(), serverInfo: z.unknown().optional(), protocolVersion: z.string().optional() }),
    UpstreamLost: object({ upstream: z.string(), reason: z.string(), willRestart: z.boolean(), exitCode: z.number().int().nullable().optional() }),
    GatewayStarted: object({ instance: z.string(), version: z.string(), configHash: digest, policyHash: digest.optional(), upstreams: z.array(z.string()).readonly() }),
    GatewayStopped: object({ instance: z.string(), reason: z.string() }),
    /**
     * Since 2.1: what a start found of an unclean end before it, and what it did, on the instance's
     * `system-<instance>` stream before its GatewayStarted. Written only when something was found.
     */
    GatewayRecovered: object({
      instance: z.string(),
      /** The previous run of this instance recorded GatewayStarted and no GatewayStopped after it: it crashed, was killed, or lost its log. */
      uncleanStop: object({ startedEventId: z.string(), startedAt: z.string() }).optional(),
      /** File log: invalid bytes at the end of the last segment (a write cut short; never acknowledged), cut off. */
      tornTails: z.array(object({ segment: z.number().int().nonnegative(), offset: z.number().int().nonnegative(), bytesDropped: z.number().int().positive(), reason: z.string() }).readonly()).readonly().optional(),
      /** File log: the directory's lock was left by a process that no longer runs (`pid`, when the lock named one), and taken over. */
      staleLock: object({ pid: z.number().int().nullable() }).optional(),
      /** What the start recorded for the previous run: an OutcomeUnknown per call forwarded without an outcome, ApprovalExpired per held call, SessionClosed per open session. */
      outcomesUnknown: z.number().int().nonnegative(),
      approvalsExpired: z.number().int().nonnegative(),
      sessionsClosed: z.number().int().nonnegative(),
    }),
    /** A virtual key issued at run time (admin API). `keyHash` is the sha256 of the key; the key itself is never recorded. */
    KeyIssued: object({
      keyId: z.string().min(1),
      keyHash: digest,
      tenant: z.string().min(1),
      team: z.string().optional(),
      agent: z.string().optional(),
      roles: z.array(z.string()).readonly(),
      expiresAt: z.string().optional(),
      allowTools: z.array(z.string()).readonly(),
      denyTools: z.array(z.string()).readonly(),
    }),
    /** Keys revoked at run time: one key, or every key of a team or tenant (`keyIds` lists them). */
    KeyRevoked: object({
      scope: z.enum(['key', 'team', 'tenant']),
      tenant: z.string().min(1),
      team: z.string().optional(),
      keyId: z.string().optional(),
      keyIds: z.array(z.string()).readonly(),
      reason: z.string().optional(),
    }),
    /**
     * A `hold` rule matched: the call (its `callId` is the approval id) waits for a person. Nothing
     * is forwarded until an ApprovalGranted and an allow DecisionMade follow. Actor: the agent.
     */
    ApprovalRequested: object({
      upstream: z.string(),
      /** The tool the held call targets, as RequestReceived.target. */
      target: z.string(),
      /** `sha256:` of the canonical JSON of the call's `arguments`. */
      argumentsDigest: digest,
      ruleId: z.string(),
      reason: z.string(),
      /** A principal with any of these roles may decide (never the agent itself). */
      approverRoles: z.array(z.string()).readonly(),
      timeoutMs: z.number().int().positive(),
      /** Past this time the call is denied (ApprovalExpired). */
      expiresAt: z.string(),
      /** The gateway instance holding the call (a restarted instance expires its own dangling approvals). */
      instance: z.string(),
    }),
    /** Actor: the approver. */
    ApprovalGranted: object({ reason: z.string() }),
    /** Actor: the approver. */
    ApprovalDenied: object({ reason: z.string() }),
    /** Nobody decided in time, or the gateway holding the call restarted. Actor: the gateway. */
    ApprovalExpired: object({ reason: z.string(), expiresAt: z.string() }),
    /** The agent cancelled the call or its session ended while it waited. */
    ApprovalWithdrawn: object({ reason: z.string() }),
    /** A reloaded config (SIGHUP or the admin API) was validated and is now in force for new decisions. */
    ConfigApplied: object({
      instance: z.string(),
      trigger: z.enum(['signal', 'admin']),
      configHash: digest,
      previousConfigHash: digest,
      policyHash: digest.optional(),
      previousPolicyHash: digest.optional(),
      /** Top-level sections whose content changed (e.g. `policy`, `auth`, `upstreams`, `gateway.allowedOrigins`). */
      changed: z.array(z.string()).readonly(),
      upstreamsAdded: z.array(z.string()).readonly(),
      upstreamsRemoved: z.array(z.string()).readonly(),
    }),
    /** A reload was refused; the config in force is unchanged. `issues` name key paths, never secret values. */
    ConfigRejected: object({
      instance: z.string(),
      trigger: z.enum(['signal', 'admin']),
      configHash: digest.optional(),
      currentConfigHash: digest,
      issues: z.array(z.string()).readonly(),
    }),
    /**
     * Tool-definition pinning (docs/tool-pinning.md). `hash` is the digest of the pinned fields of the
     * definition (name, title, description, inputSchema, outputSchema, annotations); the first one
     * seen per upstream and tool is the pin. `sessionId`: the session whose listing showed it.
     */
    ToolPinned: object({ upstream: z.string(), tool: z.string(), hash: digest, definition: z.unknown(), sessionId: z.string().optional() }),
    /** An upstream listed a definition differing from the pin: the tool is quarantined until an admin decides. */
    ToolDefinitionChanged: object({ upstream: z.string(), tool: z.string(), pinnedHash: digest, observedHash: digest, definition: z.unknown(), sessionId: z.string().optional() }),
    /** An admin (the actor) approved a changed definition: `hash` is the new pin. */
    ToolDefinitionApproved: object({ upstream: z.string(), tool: z.string(), previousHash: digest, hash: digest, reason: z.string() }),
    /** An admin (the actor) rejected a changed definition: the pin stays, the definition stays refused. */
    ToolDefinitionRejected: object({ upstream: z.string(), tool: z.string(), pinnedHash: digest, rejectedHash: digest, reason: z.string() }),
    /**
     * Since 2.1. A signed checkpoint of the evidence tree (docs/configuration.md "Evidence"; C2SP
     * tlog-checkpoint): the Merkle tree (RFC 9162) over the first `treeSize` events of the log had
     * root `rootHash` (lowercase hex; the note carries it in base64). `note` is the signed note
     * exactly as published (`<evidence dir>/checkpoints/<treeSize>.ckpt`, the HTTP well-known
     * path). This event is itself a leaf, covered by the next checkpoint. Actor: the gateway.
     */
    CheckpointSigned: object({
      instance: z.string(),
      origin: z.string().min(1),
      treeSize: z.number().int().nonnegative(),
      rootHash: hex64,
      /** The signed time of the checkpoint (its `time` extension line), ISO-8601 UTC. */
      signedAt: z.string(),
      /** The keys that signed the note: name, key id (8 lowercase hex digits) and the public verifier key. */
      signers: z.array(checkpointKey).readonly(),
      note: z.string().min(1),
    }),
    /**
     * Since 2.1. Checkpoints of `origin` are signed by a new key from now on: the latest checkpoint
     * (`lastTreeSize`) was signed by `previousKey`, the next CheckpointSigned by `key`. Recorded
     * just before that first checkpoint by the new key. Actor: the gateway.
     */
    CheckpointKeyRotated: object({
      instance: z.string(),
      origin: z.string().min(1),
      previousKey: checkpointKey,
      key: checkpointKey,
      lastTreeSize: z.number().int().nonnegative(),
    }),
  } as const;

  const envelope = {
    id: z.string().uuid(),
    schemaVersion: strength === 'write' ? z.literal(SCHEMA_VERSION) : z.string().regex(/^[1-9][0-9]*\.(0|[1-9][0-9]*)$/, 'a "MAJOR.MINOR" version'),
    occurredAt: z.string().datetime({ precision: 3 }),
    tenant: z.string().min(1),
    stream: z.string().min(1),
    traceparent: z.string().optional(),
    callId: z.string().optional(),
    actor: principal,
  };
  const chain = { seq: z.number().int().positive(), prevHash: hex64.nullable(), hash: hex64 };
  const types = Object.keys(data) as (keyof typeof data)[];
  const draftVariants = types.map((type) => object({ ...envelope, type: z.literal(type), data: data[type] }).readonly());
  const sealedVariants = types.map((type) => object({ ...envelope, ...chain, type: z.literal(type), data: data[type] }).readonly());
  // zod's discriminatedUnion needs a tuple; the maps above keep one entry per event type.
  const draftSchema = z.discriminatedUnion('type', draftVariants as unknown as [(typeof draftVariants)[number], ...(typeof draftVariants)[number][]]);
  const eventSchema = z.discriminatedUnion('type', sealedVariants as unknown as [(typeof sealedVariants)[number], ...(typeof sealedVariants)[number][]]);
  return { principal, payload, limitTrip, enforcement, data, draftSchema, eventSchema, sealedVariants };
}

const WRITE = contract('write');
const READ = contract('read');
const dataSchemas = WRITE.data;

export const PrincipalSchema = WRITE.principal;
export type Principal = z.infer<typeof PrincipalSchema>;
export const SYSTEM_PRINCIPAL: Principal = Object.freeze({ kind: 'system', id: 'attest', tenant: 'system', roles: Object.freeze([]) });
export const RecordedPayloadSchema = WRITE.payload;
export type RecordedPayload = z.infer<typeof RecordedPayloadSchema>;
export const LimitTripSchema = WRITE.limitTrip;
export type LimitTrip = z.infer<typeof LimitTripSchema>;
export const DecisionEnforcementSchema = WRITE.enforcement;
export type DecisionEnforcement = z.infer<typeof DecisionEnforcementSchema>;
/** What a reader accepts as a DecisionMade's `enforcement` (keeps fields a newer minor version added). */
export const DecisionEnforcementReadSchema = READ.enforcement;

export type EventType = keyof typeof dataSchemas;
export const EVENT_TYPES = Object.freeze(Object.keys(dataSchemas) as EventType[]);
const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);

/** Drafts the gateway appends: the write strength of the current version. */
export const EventDraftSchema = WRITE.draftSchema;
/** A sealed event of the current version, as written (write strength): what this code appends. */
export const AttestEventSchema = WRITE.eventSchema;
/** A sealed event as a reader accepts it (read strength, current major): unknown keys kept. */
export const AttestEventReadSchema = READ.eventSchema;

type Envelope = {
  readonly id: string;
  /** "MAJOR.MINOR" as written; `1` for events of the first contract (upcast when read). */
  readonly schemaVersion: string | 1;
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
export type EventDraft = { [T in EventType]: Omit<Envelope, 'schemaVersion'> & { readonly schemaVersion: typeof SCHEMA_VERSION; readonly type: T; readonly data: EventData<T> } }[EventType];
/** An event as stored: sealed into its stream's hash chain; read from the log, in the current major version's shape. */
export type AttestEvent = { [T in EventType]: Envelope & Chain & { readonly type: T; readonly data: EventData<T> } }[EventType];
export type EventOfType<T extends EventType> = Extract<AttestEvent, { type: T }>;

// ── reading: versions and upcasting ──────────────────────────────────────────────────────────

export interface SchemaVersion {
  readonly major: number;
  readonly minor: number;
}

/** The version an event says it was written under: `1` (the first contract) or "MAJOR.MINOR"; undefined when neither. */
export function schemaVersionOf(written: unknown): SchemaVersion | undefined {
  if (written === 1) return { major: 1, minor: 0 };
  if (typeof written !== 'string') return undefined;
  const match = /^([1-9][0-9]*)\.(0|[1-9][0-9]*)$/.exec(written);
  if (match === null) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

type RawEvent = Record<string, unknown>;

function renamed(data: unknown, from: string, to: string): unknown {
  if (typeof data !== 'object' || data === null || !(from in data)) return data;
  const { [from]: value, ...rest } = data as RawEvent;
  return { ...rest, [to]: value };
}

/**
 * Upcasters, by the major version they read: each turns an event of that major version into the
 * next one's shape. 1 → 2: one name per concept — ApprovalRequested.tool is `target` as in
 * RequestReceived, ErrorReturned.code is `jsonrpcCode` as in RequestRejected, the tool-pinning
 * events' `session` is `sessionId` as in RequestRejected.
 */
const UPCASTERS: Readonly<Record<number, (event: RawEvent) => RawEvent>> = {
  1: (event) => {
    const next: RawEvent = { ...event, schemaVersion: '2.0' };
    switch (event['type']) {
      case 'ApprovalRequested':
        next['data'] = renamed(event['data'], 'tool', 'target');
        break;
      case 'ErrorReturned':
        next['data'] = renamed(event['data'], 'code', 'jsonrpcCode');
        break;
      case 'ToolPinned':
      case 'ToolDefinitionChanged':
        next['data'] = renamed(event['data'], 'session', 'sessionId');
        break;
      default:
        break;
    }
    return next;
  },
};

/**
 * An event read back, in the current major version's shape. `written` is the event as it was
 * written when that differs (it was upcast from an older major version): the chain hash and the
 * Merkle leaf cover `written`, not `event`.
 */
export type EventReading =
  | { readonly ok: true; readonly event: AttestEvent; readonly written?: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly problem: UnreadableProblem; readonly reason: string };

/**
 * Why a record that is an event (it has an envelope) cannot be read by this version:
 *   version  written by a newer major version (or no version at all): upgrade the reader
 *   type     an event type this version does not know (a newer minor version added it)
 *   shape    a known type that does not match its schema (a writer bug, or tampering)
 */
export type UnreadableProblem = 'version' | 'type' | 'shape';

/**
 * Reads a parsed event of any version this code knows: older major versions are upcast, the
 * current one is validated at read strength (unknown keys kept). Pure; never throws.
 */
export function readEvent(raw: unknown): EventReading {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, problem: 'shape', reason: 'the record is not a JSON object' };
  const written = raw as RawEvent;
  const version = schemaVersionOf(written['schemaVersion']);
  if (version === undefined) return { ok: false, problem: 'version', reason: `schemaVersion ${JSON.stringify(written['schemaVersion'])} is not a contract version (1 or "MAJOR.MINOR")` };
  if (version.major > SCHEMA_MAJOR) {
    return { ok: false, problem: 'version', reason: `written under contract version ${version.major}.${version.minor}; this reader understands major version ${SCHEMA_MAJOR} and older: upgrade it` };
  }
  let current = written;
  for (let major = version.major; major < SCHEMA_MAJOR; major++) {
    const upcast = UPCASTERS[major];
    if (upcast === undefined) return { ok: false, problem: 'version', reason: `no upcaster from contract version ${major}` };
    current = upcast(current);
  }
  const type = current['type'];
  if (typeof type !== 'string' || !EVENT_TYPE_SET.has(type)) {
    return { ok: false, problem: 'type', reason: `event type ${JSON.stringify(type)} is not one this reader knows (contract ${SCHEMA_VERSION}; a newer minor version may have added it)` };
  }
  const parsed = AttestEventReadSchema.safeParse(version.major === SCHEMA_MAJOR ? written : { ...current, schemaVersion: SCHEMA_VERSION });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    return { ok: false, problem: 'shape', reason: `the ${type} does not match the event schema (${issues})` };
  }
  // Loose parsing keeps unknown keys; the declared type is the shape this version knows.
  const event = parsed.data as unknown as AttestEvent;
  if (version.major === SCHEMA_MAJOR) return { ok: true, event };
  return { ok: true, event: { ...event, schemaVersion: written['schemaVersion'] as string | 1 }, written };
}

/** The read-strength schema of every event type (for the JSON Schema consumers outside TypeScript read). */
export const EVENT_READ_VARIANTS = READ.sealedVariants;
