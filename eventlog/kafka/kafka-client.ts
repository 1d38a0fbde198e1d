/**
 * One kafkajs client per adapter instance, configured from the `log` section: brokers, TLS, SASL,
 * timeouts derived from `appendTimeoutMs`, and kafkajs's own log lines routed to the event log's
 * logger (kafkajs writes JSON to the console by default).
 */
import kafkajs from 'kafkajs';
import type { Kafka, LogEntry, RetryOptions, SASLOptions } from 'kafkajs';
import type { KafkaLogConfig } from '#schemas';
import type { EventLogLogger } from '../logger.ts';

const { Kafka: KafkaClient, logLevel } = kafkajs;

/** A connect attempt that takes longer than this is a broker that is not there. */
const CONNECTION_TIMEOUT_MS = 3_000;

/**
 * kafkajs warns at every idempotent producer whose retries are bounded. They are bounded on
 * purpose: the adapter replaces the producer after any failed batch (kafka-writer.ts), so a
 * retry can never be mistaken by the broker for a later batch.
 */
const EXPECTED_WARNINGS = [/Limiting retries for the idempotent producer/];

export type KafkaConnection = Pick<KafkaLogConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl' | 'appendTimeoutMs'>;

export function createKafka(config: KafkaConnection, logger: EventLogLogger, role: string): Kafka {
  return new KafkaClient({
    clientId: `${config.clientId}-${role}`,
    brokers: [...config.brokers],
    ssl: config.ssl,
    ...(config.sasl === undefined ? {} : { sasl: saslOptions(config.sasl) }),
    connectionTimeout: Math.min(CONNECTION_TIMEOUT_MS, config.appendTimeoutMs),
    // A produce request waits up to appendTimeoutMs on the broker for its replicas; the client
    // gives it a little longer before it calls the request lost.
    requestTimeout: config.appendTimeoutMs + 1_000,
    retry: retryWithin(config.appendTimeoutMs),
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => forward(logger, entry),
  });
}

/**
 * kafkajs backs off 100 ms, 200 ms, 400 ms … up to 1 s between attempts (± 20 %). Enough retries
 * to ride out a leader election within the time a caller waits anyway, and no more: a batch that
 * still fails after that is rejected, the producer replaced and the topic's tail re-read.
 */
export function retryWithin(budgetMs: number): RetryOptions {
  const initialRetryTime = 100;
  const maxRetryTime = 1_000;
  let retries = 0;
  for (let wait = initialRetryTime, spent = 0; spent + wait <= budgetMs && retries < 30; retries++) {
    spent += wait;
    wait = Math.min(wait * 2, maxRetryTime);
  }
  return { retries: Math.max(1, retries), initialRetryTime, maxRetryTime, factor: 0.2, multiplier: 2 };
}

function saslOptions(sasl: NonNullable<KafkaLogConfig['sasl']>): SASLOptions {
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
  }
}

function forward(logger: EventLogLogger, { namespace, level, log }: LogEntry): void {
  const { message, timestamp: _timestamp, logger: _logger, ...details } = log;
  if (level > logLevel.WARN || EXPECTED_WARNINGS.some((pattern) => pattern.test(message))) return;
  // kafkajs reports every failed attempt as an error, retried or not; the adapter reports the
  // outcome itself (logger.error), so the client's own lines are warnings.
  logger.warn({ kafkajs: namespace, ...details }, `kafkajs: ${message}`);
}

/** The first useful sentence of a kafkajs error: retries exhausted → the error that caused them. */
export function describeKafkaError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    if (!parts.includes(current.message)) parts.push(current.message);
    const next = (current as Error & { originalError?: unknown }).originalError ?? current.cause;
    current = next;
  }
  if (parts.length === 0) return String(error);
  return parts.join(': ');
}
