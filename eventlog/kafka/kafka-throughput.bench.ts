/**
 * Append throughput and latency of the Kafka adapter against a real broker (not a test; issue 3's
 * measurement for the Kafka client decision, recorded in README.md beside this file).
 *
 *   ATTEST_KAFKA_BROKERS=127.0.0.1:9092 node --conditions=attest-source eventlog/kafka/kafka-throughput.bench.ts [seconds per cell]
 *
 * Without ATTEST_KAFKA_BROKERS the service harness starts a deploy/local broker (with C1-only JIT:
 * start one yourself with ATTEST_KAFKA_JVM_OPTS='' for broker-side figures). Cells: 1, 16 and 64
 * closed-loop appenders, each either appending one event per call (`1 event`) or the gateway's
 * shape (`gateway`: [request, decision] then [result], 3 events in 2 appends per tool call). Events
 * carry a 100-byte argument body. Each cell is bounded in time (default 5 s) and in appends
 * (200,000), on a fresh topic, deleted afterwards.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Admin } from '@platformatic/kafka';
import { digestOf } from '#schemas';
import type { EventDraft } from '#schemas';
import { kafkaBrokers } from '../../test/services/index.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { openKafkaLog } from './kafka-log.ts';

const SECONDS = Number(process.argv[2] ?? 5);
const MAX_APPENDS_PER_CELL = 200_000;
const WARMUP_MS = 1_000;
const CONCURRENCY = [1, 16, 64] as const;
const SHAPES = ['1 event', 'gateway'] as const;

/** A draft whose recorded argument body is 100 bytes of JSON. */
function draft100(stream: string, n: number): EventDraft {
  const base = sampleDraft(stream, n);
  if (base.type !== 'RequestReceived') return base;
  const body = { text: 'x'.repeat(89) };
  return { ...base, data: { ...base.data, params: { recording: 'full', digest: digestOf(body), bytes: 100, body } } };
}

interface Cell {
  readonly shape: (typeof SHAPES)[number];
  readonly concurrency: number;
  readonly appends: number;
  readonly events: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly meanBatchEvents: number;
  readonly cpuPercent: number;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function runCell(brokers: readonly string[], shape: (typeof SHAPES)[number], concurrency: number): Promise<Cell> {
  const topic = `attest-bench-${randomUUID()}`;
  const log = await openKafkaLog({ backend: 'kafka', brokers: [...brokers], topic, clientId: 'attest-bench', createTopic: true, replicationFactor: 1, minInsyncReplicas: 1 });
  const latencies = new Float64Array(MAX_APPENDS_PER_CELL);
  let appends = 0;
  let events = 0;
  let measuring = false;
  let stop = false;
  const appender = async (a: number): Promise<void> => {
    for (let n = 0; !stop && appends < MAX_APPENDS_PER_CELL; n++) {
      const stream = `bench-${a}`;
      const calls: EventDraft[][] = shape === '1 event' ? [[draft100(stream, n * 3)]] : [[draft100(stream, n * 3), draft100(stream, n * 3 + 1)], [draft100(stream, n * 3 + 2)]];
      for (const drafts of calls) {
        const started = performance.now();
        await log.append(drafts);
        if (measuring && appends < MAX_APPENDS_PER_CELL) {
          latencies[appends++] = performance.now() - started;
          events += drafts.length;
        }
      }
    }
  };
  const running = Array.from({ length: concurrency }, (_, a) => appender(a));
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const before = log.stats();
  const cpu = process.cpuUsage();
  const started = performance.now();
  measuring = true;
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const after = log.stats();
  stop = true;
  await Promise.all(running);
  await log.close();
  await deleteTopic(brokers, topic);
  const sorted = latencies.slice(0, appends).sort();
  return {
    shape,
    concurrency,
    appends,
    events,
    seconds,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
    meanBatchEvents: (after.events - before.events) / Math.max(1, after.batches - before.batches),
    cpuPercent: ((used.user + used.system) / 1000 / (seconds * 1000)) * 100,
  };
}

async function deleteTopic(brokers: readonly string[], topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'attest-bench-admin', bootstrapBrokers: [...brokers] });
  try {
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await admin.close();
  }
}

const service = await kafkaBrokers();
try {
  const cells: Cell[] = [];
  process.stdout.write(`Kafka adapter append benchmark: brokers ${service.brokers.join(',')} (${service.source}), ${SECONDS} s per cell, 100-byte argument bodies, acks=all, idempotent producer\n`);
  process.stdout.write('| shape | appenders | appends/s | events/s | p50 ms | p99 ms | max ms | events/batch | bench CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const shape of SHAPES) {
    for (const concurrency of CONCURRENCY) {
      const cell = await runCell(service.brokers, shape, concurrency);
      cells.push(cell);
      process.stdout.write(
        `| ${shape} | ${concurrency} | ${Math.round(cell.appends / cell.seconds)} | ${Math.round(cell.events / cell.seconds)} | ${cell.p50.toFixed(2)} | ${cell.p99.toFixed(2)} | ${cell.max.toFixed(1)} | ${cell.meanBatchEvents.toFixed(1)} | ${Math.round(cell.cpuPercent)} % |\n`,
      );
    }
  }
} finally {
  await service.stop();
}
