/**
 * Hot-path cost of observability, without the noise of a whole gateway run: what the Recorder's
 * observers do per call (metrics alone; metrics + OpenTelemetry spans to an in-memory exporter),
 * measured over many synthetic calls in one process. The drafts are those of one allowed,
 * forwarded tools/call: [RequestReceived, DecisionMade] then [ResultReturned].
 *
 *   node --conditions=attest-source bench/observability.ts [--calls 200000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { openEventLog } from '#eventlog';
import { createOtelTracing, GatewayMetrics } from '#gateway';
import type { CallTracing } from '#gateway';
import { MetricsConfigSchema, TracingConfigSchema, newEventId, nowIso, SCHEMA_VERSION } from '#schemas';
import type { EventDraft, Principal } from '#schemas';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '200000' } } });
const calls = Number(values.calls);
const dir = mkdtempSync(join(tmpdir(), 'attest-obs-bench-'));
const log = await openEventLog({ backend: 'file', dir, segmentBytes: 64 * 1024 * 1024, appendTimeoutMs: 5000, maxBatchEvents: 4096, maxQueuedBytes: 256 * 1024 * 1024, fsync: false });
const actor: Principal = { kind: 'apiKey', id: 'bench', tenant: 't1', roles: [] };
const payload = { recording: 'digest' as const, digest: `sha256:${'0'.repeat(64)}` as const, bytes: 10 };

function drafts(callId: string): { admitted: EventDraft[]; outcome: EventDraft[] } {
  const base = { schemaVersion: SCHEMA_VERSION, occurredAt: nowIso(), tenant: 't1', stream: 'session-bench', actor, callId };
  return {
    admitted: [
      { ...base, id: newEventId(), type: 'RequestReceived', data: { from: 'agent', method: 'tools/call', jsonrpcId: 1, upstream: 'fixture', target: 'echo', params: payload } },
      { ...base, id: newEventId(), type: 'DecisionMade', data: { decision: 'allow', stage: 'tool-access', ruleId: 'allow-all', reason: 'bench', route: 'forward' } },
    ],
    outcome: [{ ...base, id: newEventId(), type: 'ResultReturned', data: { from: 'upstream', upstream: 'fixture', isError: false, durationMs: 1.5, result: payload } }],
  };
}

const ids = Array.from({ length: 1024 }, () => newEventId());
const prepared = ids.map(drafts);

function run(label: string, metrics: GatewayMetrics, tracing: CallTracing | undefined): void {
  const rounds = (n: number): number => {
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const call = prepared[i % prepared.length] as { admitted: EventDraft[]; outcome: EventDraft[] };
      const t0 = performance.now();
      tracing?.startCall(ids[i % ids.length] as string, 'tools/call', undefined, undefined);
      metrics.appended(call.admitted, t0);
      tracing?.appended(call.admitted, t0);
      const t1 = performance.now();
      metrics.appended(call.outcome, t1);
      tracing?.appended(call.outcome, t1);
    }
    return performance.now() - started;
  };
  rounds(Math.min(20_000, calls)); // warm-up (JIT)
  const ms = rounds(calls);
  process.stdout.write(`${label}: ${((ms * 1e6) / calls).toFixed(0)} ns per call (${calls} calls, ${ms.toFixed(0)} ms)\n`);
}

const metricsConfig = MetricsConfigSchema.parse({});
run('metrics', new GatewayMetrics({ config: metricsConfig, upstreams: ['fixture'], log }), undefined);
const exporter = new InMemorySpanExporter();
const tracing = createOtelTracing({ config: TracingConfigSchema.parse({ endpoint: 'http://127.0.0.1:1/v1/traces' }), instance: 'bench', version: 'bench', exporter });
run('metrics + spans', new GatewayMetrics({ config: metricsConfig, upstreams: ['fixture'], log }), tracing);
await tracing.shutdown();
await log.close();
rmSync(dir, { recursive: true, force: true });
