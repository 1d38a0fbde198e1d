/**
 * The @platformatic/kafka client options from the `log` section: brokers, TLS, SASL, and the
 * timeouts and retries derived from `appendTimeoutMs`. One place, so the writer's producer, its
 * admin client and the readers' fetchers agree (README.md beside this file says why this client
 * replaced kafkajs, with the measurements).
 */
import type { KafkaLogConfig } from '#schemas';

/** A connect attempt that takes longer than this is a broker that is not there. */
const CONNECTION_TIMEOUT_MS = 3_000;

export type KafkaConnection = Pick<KafkaLogConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl' | 'appendTimeoutMs'>;

/** Options shared by every client of one adapter instance (`role` names it on the broker: writer, admin, reader). */
export interface ClientOptions {
  readonly clientId: string;
  readonly bootstrapBrokers: string[];
  readonly connectTimeout: number;
  readonly requestTimeout: number;
  readonly timeout: number;
  readonly retries: number;
  readonly retryDelay: (client: unknown, operationId: string, attempt: number) => number;
  readonly tls?: Record<string, never>;
  readonly sasl?: { readonly mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; readonly username: string; readonly password: string };
}

const SASL_MECHANISMS = { plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const;

export function clientOptions(config: KafkaConnection, role: string): ClientOptions {
  const { retries, delay } = retryWithin(config.appendTimeoutMs);
  return {
    clientId: `${config.clientId}-${role}`,
    bootstrapBrokers: [...config.brokers],
    connectTimeout: Math.min(CONNECTION_TIMEOUT_MS, config.appendTimeoutMs),
    // A produce request waits up to appendTimeoutMs on the broker for its replicas; the client
    // gives it a little longer before it calls the request lost.
    requestTimeout: config.appendTimeoutMs + 1_000,
    timeout: config.appendTimeoutMs + 1_000,
    retries,
    retryDelay: (_client, _operation, attempt) => delay(attempt),
    ...(config.ssl && { tls: {} }),
    ...(config.sasl !== undefined && { sasl: { mechanism: SASL_MECHANISMS[config.sasl.mechanism], username: config.sasl.username, password: config.sasl.password } }),
  };
}

/**
 * Backoff 100 ms, 200 ms, 400 ms … up to 1 s between attempts: enough retries to ride out a leader
 * election within the time a caller waits anyway, and no more. A batch that still fails after that
 * is rejected, the producer replaced and the topic's tail re-read (kafka-writer.ts).
 */
export function retryWithin(budgetMs: number): { readonly retries: number; readonly delay: (attempt: number) => number } {
  const initial = 100;
  const max = 1_000;
  const delay = (attempt: number): number => Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
  let retries = 0;
  for (let spent = 0; spent + delay(retries + 1) <= budgetMs && retries < 30; retries++) spent += delay(retries + 1);
  return { retries: Math.max(1, retries), delay };
}

/**
 * The first useful sentences of a client error: @platformatic/kafka wraps retried failures in
 * AggregateErrors ("produce failed 4 times") whose `errors` say why; the last one is the cause.
 */
export function describeKafkaError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 6; depth++) {
    if (!parts.includes(current.message)) parts.push(current.message);
    const nested = (current as Error & { errors?: unknown[] }).errors;
    current = Array.isArray(nested) && nested.length > 0 ? nested[nested.length - 1] : current.cause;
  }
  if (parts.length === 0) return String(error);
  return parts.join(': ');
}
