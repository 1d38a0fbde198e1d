export { canonicalize, digestOf, eventHash, rememberCanonical, sha256Hex } from './canonical.ts';
export {
  ApiKeySchema,
  ClickHouseReadModelSchema,
  ConfigSchema,
  EmbeddedReadModelSchema,
  FileLogSchema,
  FrontDoorSchema,
  KafkaLogSchema,
  KurrentLogSchema,
  HttpUpstreamSchema,
  LogSchema,
  ReadModelSchema,
  RecordingSchema,
  StdioUpstreamSchema,
  UpstreamSchema,
} from './config.ts';
export type { ApiKeyConfig, AttestConfig, ClickHouseReadModelConfig, ReadModelConfig, FileLogConfig, FrontDoorConfig, KafkaLogConfig, KurrentLogConfig, AttestConfigInput, HttpUpstreamConfig, LogConfig, StdioUpstreamConfig, UpstreamConfig } from './config.ts';
export { AnonymousAuthSchema, JwtAuthSchema, ResourceMetadataSchema } from './identity.ts';
export type { AnonymousAuthConfig, JwtAuthConfig, ResourceMetadataConfig } from './identity.ts';
export { formatConfigIssues } from './issues.ts';
export { VirtualServerSchema, globToRegExp, upstreamsOfPattern, virtualServerIssues } from './virtual-servers.ts';
export type { VirtualServerConfig } from './virtual-servers.ts';
export { METRICS_ROLE, MetricsConfigSchema, ObservabilitySchema, TracingConfigSchema } from './observability.ts';
export type { MetricsConfig, ObservabilityConfig, TracingConfig } from './observability.ts';
export { checkSigningKeyIsReference, ConfigError, parseConfig, resolveEnvRefs } from './config-parse.ts';
export type { ParsedConfig } from './config-parse.ts';
export { GATEWAY_ERRORS, GatewayError, JSONRPC } from './errors.ts';
export type { GatewayErrorCode } from './errors.ts';
export {
  AttestEventReadSchema,
  AttestEventSchema,
  DecisionEnforcementReadSchema,
  DecisionEnforcementSchema,
  DigestSchema,
  EVENT_READ_VARIANTS,
  EVENT_TYPES,
  EventDraftSchema,
  LimitTripSchema,
  PrincipalSchema,
  readEvent,
  RecordedPayloadSchema,
  SCHEMA_MAJOR,
  SCHEMA_MINOR,
  SCHEMA_VERSION,
  schemaVersionOf,
  SYSTEM_PRINCIPAL,
} from './events.ts';
export type { AttestEvent, DecisionEnforcement, EventData, EventDraft, EventOfType, EventReading, EventType, LimitTrip, Principal, RecordedPayload, SchemaVersion, UnreadableProblem } from './events.ts';
export { eventContractJsonSchema } from './json-schema.ts';
export { BUILTIN_RULE_IDS, EVENT_ERROR_CODES, STAGE_NAMES, STAGES } from './vocabulary.ts';
export type { Stage } from './vocabulary.ts';
export { newEventId, nowIso } from './ids.ts';
export {
  APPROVER_ROLE,
  ApprovalSettingsSchema,
  DEFAULT_APPROVAL_TIMEOUT_MS,
  DEFAULT_APPROVER_ROLES,
  BudgetSchema,
  DEFAULT_CALL_COST,
  DEFAULT_RULE_ID,
  LOOP_GUARD_ID,
  LoopGuardSchema,
  PolicyBundleSchema,
  PolicyEffectSchema,
  PolicyError,
  PolicyRuleSchema,
  RateLimitSchema,
  parsePolicyBundle,
  policyBundleHash,
} from './policy.ts';
export type {
  ApprovalSettings,
  BudgetPeriod,
  BudgetRule,
  LimitScope,
  LoopGuardConfig,
  ParsedPolicyBundle,
  PolicyBundle,
  PolicyBundleInput,
  PolicyEffect,
  PolicyRule,
  RateLimitRule,
} from './policy.ts';
export { CLICKHOUSE_MIGRATIONS } from './clickhouse/index.ts';
export type { ClickHouseMigration } from './clickhouse/index.ts';
