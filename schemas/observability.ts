/**
 * The optional `observability` config section: Prometheus metrics and OpenTelemetry traces.
 * Absent → metrics on at `/metrics` (scraped only by a key with role `attest:metrics` or
 * `attest:admin`) and no tracing SDK (a valid W3C `traceparent` from the agent is still passed to
 * HTTP upstreams unchanged). docs/observability.md is the reference.
 */
import { z } from 'zod';

export const METRICS_ROLE = 'attest:metrics';

export const MetricsConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Roles any one of which lets a key scrape `/metrics`. */
    roles: z.array(z.string().min(1)).min(1).default([METRICS_ROLE, 'attest:admin']),
    /** Distinct tool labels kept per upstream; further tools are counted under `tool="_other"`. */
    maxToolsPerUpstream: z.number().int().positive().max(10_000).default(200),
  })
  .strict();

export const TracingConfigSchema = z
  .object({
    /** OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces` (JSON encoding). */
    endpoint: z.url({ protocol: /^https?$/ }),
    /** Headers sent to the collector (use `${ENV}` references for tokens; never logged). */
    headers: z.record(z.string(), z.string()).default({}),
    serviceName: z.string().min(1).default('attest-gateway'),
    /** Share of new traces sampled (0–1); a sampled/unsampled parent from the agent is respected. */
    sampleRatio: z.number().min(0).max(1).default(1),
    /** Export deadline per batch. */
    exportTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();

export const ObservabilitySchema = z
  .object({
    metrics: MetricsConfigSchema.prefault({}),
    tracing: TracingConfigSchema.optional(),
  })
  .strict();

export type MetricsConfig = z.infer<typeof MetricsConfigSchema>;
export type TracingConfig = z.infer<typeof TracingConfigSchema>;
export type ObservabilityConfig = z.infer<typeof ObservabilitySchema>;
