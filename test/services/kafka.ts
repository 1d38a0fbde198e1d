/**
 * A real Kafka broker for tests: `ATTEST_KAFKA_BROKERS` (comma-separated host:port), else a
 * container, else `deploy/local/kafka.sh` (Apache Kafka 4.x, KRaft, one node).
 */
import { createServer } from 'node:net';
import { resolveEndpoint } from './resolve.ts';
import type { ServiceSpec, StartedEndpoint } from './resolve.ts';
import { withDispose } from './service.ts';
import type { RunningService } from './service.ts';

export interface KafkaService extends RunningService {
  readonly brokers: string[];
}

/** Override with ATTEST_KAFKA_IMAGE; the same Kafka line as deploy/local/kafka.sh. */
const DEFAULT_IMAGE = 'apache/kafka:4.4.0';
const CLIENT_PORT = 9092;

export const KAFKA: ServiceSpec = {
  name: 'Kafka',
  variable: 'ATTEST_KAFKA_BROKERS',
  launcher: 'kafka',
  startContainer: startKafkaContainer,
};

export async function kafkaBrokers(): Promise<KafkaService> {
  const { endpoint, source, stop } = await resolveEndpoint(KAFKA);
  const brokers = endpoint.split(',').map((broker) => broker.trim()).filter((broker) => broker !== '');
  return withDispose({ brokers, source, stop });
}

async function startKafkaContainer(host: string): Promise<StartedEndpoint> {
  const { GenericContainer, Wait } = await import('testcontainers');
  // The broker must advertise the address clients use from outside the container, so the host
  // port is chosen first and bound explicitly; a second listener serves the broker itself.
  const hostPort = await freeLoopbackPort();
  const container = await new GenericContainer(process.env.ATTEST_KAFKA_IMAGE ?? DEFAULT_IMAGE)
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${CLIENT_PORT},BROKER://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${hostPort},BROKER://localhost:9094`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      // One node: internal topics with RF 1 / min ISR 1, as in deploy/local/kafka.sh.
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_MIN_INSYNC_REPLICAS: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withExposedPorts({ container: CLIENT_PORT, host: hostPort })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start();
  return {
    endpoint: `${host}:${hostPort}`,
    stop: async () => {
      await container.stop();
    },
  };
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not read the port of a loopback listener');
  return address.port;
}
