/**
 * The scenarios of the benchmark table (issue 5). Each is a way of reaching the fast upstream's
 * `echo` tool: directly (the floor), or through one gateway process whose `log` section differs.
 *
 * The Kafka scenario runs once the adapter is in the build and a broker is named in
 * ATTEST_KAFKA_BROKERS (`eval "export $(deploy/local/kafka.sh start)"`): the adapter always produces
 * with acks=all and idempotence; the bench topic is created with one partition and the single
 * local broker's replication (weaker than production: the gateway warns, the figures say so).
 */
import { LogSchema } from '#schemas';

export type ScenarioName = 'direct' | 'gateway-file' | 'gateway-file-evidence' | 'gateway-file-nofsync' | 'gateway-recording-off' | 'gateway-kafka';

export interface Scenario {
  readonly name: ScenarioName;
  readonly title: string;
  readonly target: 'direct' | 'gateway';
  /** The gateway config's `log` section for a fresh log in `dir` (gateway scenarios). */
  readonly log?: (dir: string) => Record<string, unknown>;
  /** Config sections beside `log` (e.g. `evidence`), merged into the gateway's config. */
  readonly sections?: (dir: string) => Record<string, unknown>;
  /** `off`: the bench launcher answers appends without writing (bench/gateway/serve.ts). */
  readonly recording?: 'on' | 'off';
  /** Why it cannot run on this machine now, or undefined when it can. */
  unavailable(launcher: 'bench' | 'cli'): string | undefined;
}

const always = (): undefined => undefined;

const KAFKA_BROKERS = 'ATTEST_KAFKA_BROKERS';

function kafkaBrokers(): string[] {
  return (process.env[KAFKA_BROKERS] ?? '').split(',').filter((b) => b !== '');
}

/** A fresh topic per cell, like a fresh directory for the file log. */
function kafkaLog(_dir: string): Record<string, unknown> {
  return { backend: 'kafka', brokers: kafkaBrokers(), topic: `attest-bench-${Date.now()}`, createTopic: true, partitions: 1, replicationFactor: 1, minInsyncReplicas: 1 };
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'direct', title: 'direct to the upstream (the floor)', target: 'direct', unavailable: always },
  {
    name: 'gateway-file',
    title: 'gateway, file log (fdatasync per group commit: durable)',
    target: 'gateway',
    log: (dir) => ({ backend: 'file', dir, fsync: true }),
    unavailable: always,
  },
  {
    name: 'gateway-file-evidence',
    title: 'gateway, file log, durable, with the evidence tree and signed checkpoints (defaults: every 1000 events or 10 s)',
    target: 'gateway',
    log: (dir) => ({ backend: 'file', dir, fsync: true }),
    sections: (dir) => ({ evidence: { enabled: true, dir: `${dir}.merkle` }, state: { dir: `${dir}.state` } }),
    unavailable: always,
  },
  {
    name: 'gateway-file-nofsync',
    title: 'gateway, file log without fdatasync (not durable; reference)',
    target: 'gateway',
    log: (dir) => ({ backend: 'file', dir, fsync: false }),
    unavailable: always,
  },
  {
    name: 'gateway-recording-off',
    title: 'gateway, recording off (appends answered without writing; reference)',
    target: 'gateway',
    log: (dir) => ({ backend: 'file', dir, fsync: false }),
    recording: 'off',
    unavailable: (launcher) => (launcher === 'cli' ? 'needs the bench launcher (the CLI has no recording-off switch)' : undefined),
  },
  {
    name: 'gateway-kafka',
    title: 'gateway, Kafka log (acks=all)',
    target: 'gateway',
    log: kafkaLog,
    unavailable() {
      if (kafkaBrokers().length === 0) return `no broker: set ${KAFKA_BROKERS} (deploy/local/kafka.sh start prints it)`;
      if (kafkaBrokers().some((broker) => !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(broker))) return `${KAFKA_BROKERS} must name loopback brokers only`;
      const parsed = LogSchema.safeParse(kafkaLog('unused'));
      if (!parsed.success && parsed.error.issues.some((issue) => issue.path[0] === 'backend' || issue.path.length === 0)) return 'this build has no Kafka adapter (log.backend does not accept "kafka")';
      if (!parsed.success) return `the bench's Kafka log section no longer matches the schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
      return undefined;
    },
  },
];

export function scenarioNamed(name: string): Scenario {
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (scenario === undefined) throw new Error(`unknown scenario "${name}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  return scenario;
}
