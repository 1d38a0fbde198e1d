/**
 * An in-memory stand-in for the few KurrentDB calls the adapter makes (kurrent-client.ts), for the
 * unit specs only: KurrentDB cannot run where these specs were written. It keeps the server rules
 * the adapter relies on, and nothing more:
 * - `appendToStream` checks the expected state exactly (no_stream, a revision, any) and throws the
 *   client's WrongExpectedVersionError otherwise; an append whose event ids are already in the
 *   stream right after the expected state succeeds without writing again (the server's retry check);
 * - every event gets its own `$all` position (commit = prepare), byte-like, so *not* contiguous;
 *   an acknowledgement carries the position of the append's last event only;
 * - `readAll` reads forwards from a position inclusively and backwards exclusively, refuses a
 *   position that is not a record boundary, and applies stream-name / event-type filters (prefixes
 *   or regex) the way the server does; `readStream` carries no `$all` positions and throws
 *   StreamNotFoundError for a stream that does not exist;
 * - `subscribeToAll` starts *after* its position, then delivers live appends.
 * Faults for the specs: `failNextAppend`, `holdAppends`, `redeliver`, `appendRaw` (a foreign writer).
 */
import { Readable } from 'node:stream';
import { StreamNotFoundError, UnknownError, WrongExpectedVersionError } from '@kurrent/kurrentdb-client';
import type {
  AllStreamRecordedEvent,
  AllStreamResolvedEvent,
  AppendResult,
  AppendToStreamOptions,
  EventData,
  Filter,
  Position,
  ReadAllOptions,
  ReadStreamOptions,
  ResolvedEvent,
  SubscribeToAllOptions,
} from '@kurrent/kurrentdb-client';
import type { AllSubscription, KurrentClient } from './kurrent-client.ts';

interface FakeRecord {
  readonly streamId: string;
  readonly id: string;
  readonly revision: bigint;
  readonly type: string;
  /** The bytes the server keeps: JSON text for JSON events. */
  readonly json: string;
  readonly created: Date;
  readonly position: Position;
}

export interface RecordedAppend {
  readonly stream: string;
  readonly streamState: unknown;
  readonly ids: readonly string[];
}

interface Fault {
  readonly error: Error;
  /** The events are written, then the error is thrown: a lost acknowledgement. */
  readonly afterWrite: boolean;
}

/** Everything the adapter asked, for assertions; and the shared store, so two "gateways" can share one fake server. */
export class FakeKurrentDB {
  readonly records: FakeRecord[] = [];
  readonly streams = new Map<string, FakeRecord[]>();
  readonly appends: RecordedAppend[] = [];
  readonly readAllCalls: ReadAllOptions[] = [];
  readonly readStreamCalls: { readonly stream: string; readonly options: ReadStreamOptions }[] = [];
  readonly subscribeCalls: SubscribeToAllOptions[] = [];
  /** Deliver every record twice on subscriptions (a re-delivery after a reconnect). */
  redeliver = false;
  readonly #faults = new Map<string, Fault[]>();
  readonly #subscribers = new Set<(record: FakeRecord) => void>();
  #gate: Promise<void> | null = null;
  #end = 4096n;

  constructor() {
    // What any server holds besides Attest's streams: system records and another application's.
    this.appendRaw('$settings', '$settings', { note: 'system' });
    this.appendRaw('orders-1', 'OrderPlaced', { order: 1 });
    this.appendRaw('$stats-127.0.0.1:2113', '$statsCollected', { cpu: 1 });
  }

  /** A client of this server (each `connect` is a new connection; `dispose` closes only it). */
  client(): KurrentClient {
    return new FakeClient(this);
  }

  failNextAppend(stream: string, error: Error, options: { afterWrite?: boolean } = {}): void {
    const list = this.#faults.get(stream) ?? [];
    list.push({ error, afterWrite: options.afterWrite ?? false });
    this.#faults.set(stream, list);
  }

  /** Appends wait until the returned function is called (a server that does not answer). */
  holdAppends(): () => void {
    let release!: () => void;
    this.#gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.#gate = null;
      release();
    };
  }

  /** Writes a record as another writer would (no expected-state check). */
  appendRaw(stream: string, type: string, data: unknown, id: string = crypto.randomUUID()): FakeRecord {
    const existing = this.streams.get(stream) ?? [];
    const json = JSON.stringify(data);
    const record: FakeRecord = { streamId: stream, id, revision: BigInt(existing.length), type, json, created: new Date(), position: { commit: this.#end, prepare: this.#end } };
    // Byte-like positions: each record takes room in the log, so positions are not 0, 1, 2 …
    this.#end += 128n + BigInt(Buffer.byteLength(json));
    existing.push(record);
    this.streams.set(stream, existing);
    this.records.push(record);
    for (const deliver of this.#subscribers) deliver(record);
    return record;
  }

  async append(stream: string, events: readonly EventData[], options: AppendToStreamOptions): Promise<AppendResult> {
    const streamState = options.streamState ?? 'any';
    this.appends.push({ stream, streamState, ids: events.map((event) => event.id) });
    if (this.#gate !== null) await this.#gate;
    const fault = this.#faults.get(stream)?.shift();
    if (fault !== undefined && !fault.afterWrite) throw fault.error;
    const existing = this.streams.get(stream) ?? [];
    const current = existing.length === 0 ? 'no_stream' : BigInt(existing.length - 1);
    const start = streamState === 'no_stream' ? 0 : typeof streamState === 'bigint' ? Number(streamState) + 1 : -1;
    // The server's retry check: the same ids already follow the expected state.
    if (start >= 0 && existing.length >= start + events.length && events.every((event, i) => existing[start + i]?.id === event.id) && events.length > 0) {
      const last = existing[start + events.length - 1] as FakeRecord;
      return { success: true, nextExpectedRevision: last.revision, position: last.position };
    }
    const matches = streamState === 'any' || (streamState === 'stream_exists' ? current !== 'no_stream' : streamState === current);
    if (!matches) throw new WrongExpectedVersionError(undefined, { streamName: stream, expected: streamState, current });
    let last: FakeRecord | undefined;
    for (const event of events) {
      if (event.contentType !== 'application/json') throw new Error('the fake stores JSON events only');
      last = this.appendRaw(stream, event.type, event.data, event.id);
    }
    if (fault !== undefined) throw fault.error;
    if (last === undefined) return { success: true, nextExpectedRevision: existing.length === 0 ? -1n : BigInt(existing.length - 1) };
    return { success: true, nextExpectedRevision: last.revision, position: last.position };
  }

  *readAll(options: ReadAllOptions): Generator<AllStreamResolvedEvent> {
    this.readAllCalls.push(options);
    const backwards = options.direction === 'backwards';
    const from = options.fromPosition ?? (backwards ? 'end' : 'start');
    let start: number;
    if (from === 'start') start = backwards ? -1 : 0;
    else if (from === 'end') start = backwards ? this.records.length - 1 : this.records.length;
    else {
      const at = this.#recordIndexAt(from);
      // Forwards includes the record at the position; backwards starts before it.
      start = backwards ? at - 1 : at;
    }
    let left = Number(options.maxCount ?? Number.MAX_SAFE_INTEGER);
    for (let i = start; left > 0 && i >= 0 && i < this.records.length; i += backwards ? -1 : 1) {
      const record = this.records[i] as FakeRecord;
      if (!passes(options.filter, record)) continue;
      left--;
      yield { event: toAllRecorded(record) };
    }
  }

  *readStream(stream: string, options: ReadStreamOptions): Generator<ResolvedEvent> {
    this.readStreamCalls.push({ stream, options });
    const records = this.streams.get(stream);
    if (records === undefined) throw new StreamNotFoundError(undefined, stream);
    const backwards = options.direction === 'backwards';
    const ordered = backwards ? [...records].reverse() : records;
    let left = Number(options.maxCount ?? Number.MAX_SAFE_INTEGER);
    for (const record of ordered) {
      if (left-- <= 0) return;
      // Stream reads carry no $all position.
      const { position: _position, ...recorded } = toAllRecorded(record);
      yield { event: { ...recorded, position: undefined } };
    }
  }

  subscribe(options: SubscribeToAllOptions): AllSubscription {
    this.subscribeCalls.push(options);
    const from = options.fromPosition ?? 'start';
    const subscription = new FakeSubscription(() => this.#subscribers.delete(deliver));
    const deliver = (record: FakeRecord): void => {
      if (!passes(options.filter, record)) return;
      subscription.push({ event: toAllRecorded(record) });
      if (this.redeliver) subscription.push({ event: toAllRecorded(record) });
    };
    // Catch-up: everything after the position (a subscription starts after it), then live.
    const start = from === 'start' ? 0 : from === 'end' ? this.records.length : this.#recordIndexAt(from) + 1;
    for (const record of this.records.slice(start)) deliver(record);
    this.#subscribers.add(deliver);
    return subscription;
  }

  #recordIndexAt(position: Position): number {
    if (position.commit === this.#end) return this.records.length;
    const at = this.records.findIndex((record) => record.position.commit === position.commit && record.position.prepare === position.prepare);
    if (at < 0) throw new UnknownError(undefined, `Invalid position ${position.commit}/${position.prepare}: not a record boundary of the transaction log`);
    return at;
  }
}

class FakeClient implements KurrentClient {
  readonly #server: FakeKurrentDB;
  #disposed = false;

  constructor(server: FakeKurrentDB) {
    this.#server = server;
  }

  appendToStream(streamName: string, events: EventData[], options: AppendToStreamOptions): Promise<AppendResult> {
    this.#check();
    return this.#server.append(streamName, events, options);
  }

  readStream(streamName: string, options: ReadStreamOptions): AsyncIterable<ResolvedEvent> {
    this.#check();
    return toAsync(() => this.#server.readStream(streamName, options));
  }

  readAll(options: ReadAllOptions): AsyncIterable<AllStreamResolvedEvent> {
    this.#check();
    return toAsync(() => this.#server.readAll(options));
  }

  subscribeToAll(options: SubscribeToAllOptions): AllSubscription {
    this.#check();
    return this.#server.subscribe(options);
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
  }

  #check(): void {
    if (this.#disposed) throw new Error('the fake client was disposed');
  }
}

class FakeSubscription extends Readable implements AllSubscription {
  readonly #stop: () => void;

  constructor(stop: () => void) {
    super({ objectMode: true, read: () => undefined });
    this.#stop = stop;
  }

  async unsubscribe(): Promise<void> {
    this.#stop();
    this.push(null);
  }
}

/** Iterates lazily, the first step on the next tick, like the client's network reads. */
async function* toAsync<T>(make: () => Iterable<T>): AsyncGenerator<T> {
  await Promise.resolve();
  yield* make();
}

function passes(filter: Filter | undefined, record: FakeRecord): boolean {
  if (filter === undefined) return true;
  const subject = filter.filterOn === 'streamName' ? record.streamId : record.type;
  if ('prefixes' in filter) return filter.prefixes.some((prefix) => subject.startsWith(prefix));
  return new RegExp(filter.regex).test(subject);
}

function toAllRecorded(record: FakeRecord): AllStreamRecordedEvent {
  return {
    streamId: record.streamId,
    id: record.id,
    isJson: true,
    revision: record.revision,
    type: record.type,
    created: record.created,
    data: JSON.parse(record.json) as Record<string, unknown>,
    metadata: undefined,
    position: record.position,
  };
}
