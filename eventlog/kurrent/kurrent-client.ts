/**
 * The part of `@kurrent/kurrentdb-client` the adapter uses, as a narrow interface: the real client
 * satisfies it structurally, and the unit specs run the adapter against a small in-memory fake of
 * exactly these calls (fake-kurrentdb.ts). Nothing else of the client is touched.
 */
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import type {
  AllStreamResolvedEvent,
  AppendResult,
  AppendToStreamOptions,
  EventData,
  ReadAllOptions,
  ReadStreamOptions,
  ResolvedEvent,
  SubscribeToAllOptions,
} from '@kurrent/kurrentdb-client';

/** A catch-up subscription to `$all`: events in log order, then live ones, until unsubscribed. */
export interface AllSubscription extends AsyncIterable<AllStreamResolvedEvent> {
  unsubscribe(): Promise<void>;
  destroy(error?: Error): unknown;
}

export interface KurrentClient {
  appendToStream(streamName: string, events: EventData[], options: AppendToStreamOptions): Promise<AppendResult>;
  readStream(streamName: string, options: ReadStreamOptions): AsyncIterable<ResolvedEvent>;
  readAll(options: ReadAllOptions): AsyncIterable<AllStreamResolvedEvent>;
  subscribeToAll(options: SubscribeToAllOptions): AllSubscription;
  dispose(): Promise<void>;
}

/** Opens a client on a `kurrentdb://` / `kurrentdb+discover://` / `esdb://` connection string (connects lazily). */
export function connectKurrent(connectionString: string): KurrentClient {
  return KurrentDBClient.connectionString(connectionString);
}

/** The connection string without credentials, for messages and logs (it may carry `user:password@`). */
export function redactConnectionString(connectionString: string): string {
  return connectionString.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1***@').replace(/([?&](?:password|token|userCertKeyFile)=)[^&]*/gi, '$1***');
}
