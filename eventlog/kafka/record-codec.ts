/**
 * Event ↔ Kafka record. The value is the file adapter's payload, byte for byte (file/event-codec.ts:
 * `{"hash":"…",` + the canonical JSON the hash covers); Kafka frames and checksums its own record
 * batches, so the file's length + CRC header is dropped. The key is the event's stream (one
 * session's events stay in order on one partition); the `attest-event-id` header lets consumers
 * deduplicate without parsing the value.
 */
import type { SealedEvent } from '../chain.ts';
import type { RecordDecodeResult } from '../record-decode.ts';
import { FRAME_HEADER_BYTES } from '../file/framing.ts';
import { claimedIdentity, decodeEvent, encodeEvents } from '../file/event-codec.ts';

export const EVENT_ID_HEADER = 'attest-event-id';
const SKIPPED: RecordDecodeResult = Object.freeze({ ok: false, skipped: true });
const EVENT_ID_HEADER_KEY = Buffer.from(EVENT_ID_HEADER);

/** A record to produce on the topic's one partition: key = stream, value = the event, header = its id. */
export interface OutgoingRecord {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly headers: Map<Buffer, Buffer>;
}

/**
 * Bytes a record adds to its key, value and header in a v2 record batch (varint lengths, offset
 * and timestamp deltas, attributes), rounded up; and what a batch adds once (its 61-byte header).
 */
const RECORD_OVERHEAD_BYTES = 32;
export const BATCH_OVERHEAD_BYTES = 61;

export interface EncodedRecords {
  readonly messages: readonly OutgoingRecord[];
  /** Estimated size in a record batch: compared against the topic's `max.message.bytes`. */
  readonly bytes: number;
}

export function encodeRecords(sealed: readonly SealedEvent[]): EncodedRecords {
  const { bytes, frameOffsets } = encodeEvents(sealed);
  const messages: OutgoingRecord[] = new Array<OutgoingRecord>(sealed.length);
  let total = 0;
  for (let i = 0; i < sealed.length; i++) {
    const { event } = sealed[i] as SealedEvent;
    const start = (frameOffsets[i] as number) + FRAME_HEADER_BYTES;
    const end = i + 1 < sealed.length ? (frameOffsets[i + 1] as number) : bytes.length;
    // Views into one buffer: no copy per event.
    const value = bytes.subarray(start, end);
    messages[i] = { key: Buffer.from(event.stream), value, headers: new Map([[EVENT_ID_HEADER_KEY, Buffer.from(event.id)]]) };
    total += value.length + Buffer.byteLength(event.stream) + EVENT_ID_HEADER.length + event.id.length + RECORD_OVERHEAD_BYTES;
  }
  return { messages, bytes: total };
}

/** A record as the reader sees it: where it is, and what it holds. */
export interface RawRecord {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;
}

export type { RecordDecodeResult } from '../record-decode.ts';

/** Parses and validates a record (Kafka is a boundary). With `stream`, other streams are skipped by key, before parsing. */
export function decodeRecord(record: RawRecord, stream?: string, trusted = false): RecordDecodeResult {
  if (stream !== undefined && record.key !== null && !keyIs(record.key, stream)) return SKIPPED;
  if (record.value === null) return { ok: false, skipped: false, reason: 'the record has no value (a tombstone: was the topic compacted?)', claimed: {} };
  const decoded = decodeEvent(record.value, stream, trusted);
  if (!decoded.ok) return decoded;
  const { id, stream: eventStream } = decoded.entry.event ?? decoded.entry.envelope;
  const mismatch = identityMismatch(record, id, eventStream);
  if (mismatch !== undefined) return { ok: false, skipped: false, reason: mismatch, claimed: { eventId: id, stream: eventStream } };
  return decoded;
}

/** The fields start-up needs to rebuild chain heads, from one JSON.parse and no schema validation (`attest verify` checks everything). */
export interface ChainRecord {
  readonly id: string;
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
}

export function decodeChainRecord(record: RawRecord): ChainRecord | string {
  if (record.value === null) return 'the record has no value (a tombstone: was the topic compacted?)';
  let raw: unknown;
  try {
    raw = JSON.parse(record.value.toString('utf8'));
  } catch {
    return 'the record is not valid JSON';
  }
  const { eventId, stream, seq } = claimedIdentity(raw);
  const hash = (raw as { hash?: unknown }).hash;
  if (eventId === undefined || stream === undefined || seq === undefined || !Number.isSafeInteger(seq) || seq < 1 || typeof hash !== 'string') {
    return 'the record is not an Attest event (no id, stream, seq and hash)';
  }
  return identityMismatch(record, eventId, stream) ?? { id: eventId, stream, seq, hash };
}

/** The key and the id header, when present, must agree with the value: a record whose envelope lies is damage. */
function identityMismatch(record: RawRecord, id: string, stream: string): string | undefined {
  if (record.key !== null && !keyIs(record.key, stream)) return `its key "${record.key.toString('utf8')}" is not the stream of the event it holds (${stream})`;
  const header = record.headers?.[EVENT_ID_HEADER];
  if (header !== undefined && String(Array.isArray(header) ? header[0] : header) !== id) return `its ${EVENT_ID_HEADER} header does not match the id of the event it holds (${id})`;
  return undefined;
}

function keyIs(key: Buffer, stream: string): boolean {
  return key.length === Buffer.byteLength(stream) && key.toString('utf8') === stream;
}

/** The event id of a record from its header alone, when it carries one. */
export function headerEventId(record: RawRecord): string | undefined {
  const header = record.headers?.[EVENT_ID_HEADER];
  if (header === undefined) return undefined;
  return String(Array.isArray(header) ? header[0] : header);
}

/**
 * Event ids seen lately, to skip repeats (COMPLIANCE.md §1: a producer that restarts mid-batch
 * can write an event twice, with the same id). Bounded: repeats come from retries of recent
 * batches, so remembering the last `capacity` ids catches them without holding every id of the log.
 */
export class RecentIds {
  readonly #capacity: number;
  readonly #seen = new Set<string>();
  readonly #order: string[];
  #next = 0;

  constructor(capacity = 65_536) {
    this.#capacity = capacity;
    this.#order = new Array<string>(capacity);
  }

  /** True when the id was seen (a repeat to skip); otherwise remembers it. */
  repeat(id: string): boolean {
    if (this.#seen.has(id)) return true;
    const evicted = this.#order[this.#next];
    if (evicted !== undefined) this.#seen.delete(evicted);
    this.#order[this.#next] = id;
    this.#next = (this.#next + 1) % this.#capacity;
    this.#seen.add(id);
    return false;
  }
}
