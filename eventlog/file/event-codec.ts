/**
 * Event ↔ record payload. The payload is the UTF-8 JSON of the sealed event, written as
 * `{"hash":"<hex>",` followed by the canonical JSON the hash was computed over (minus its `{`):
 * one serialisation per event on the hot path, and the stored bytes hash correctly by
 * construction. Readers never rely on that layout — they parse the JSON and recompute; the evidence
 * follower hashes its canonical part only after checking it against the hash (evidence/leaf.ts).
 */
import type { SealedEvent } from '../chain.ts';
import { claimedIdentity, decodeWritten } from '../record-decode.ts';
import type { ClaimedIdentity, RecordDecodeResult } from '../record-decode.ts';
import { FRAME_HEADER_BYTES, writeFrameHeader } from './framing.ts';

const HASH_PREFIX = Buffer.from('{"hash":"', 'latin1');
/** `{"hash":"` + 64 hex digits + `"`; the canonical JSON's own `{` becomes the `,` after it. */
const HASHED_PREFIX_BYTES = HASH_PREFIX.length + 64 + 1;

export interface EncodedEvents {
  /** The frames of all events, back to back. */
  readonly bytes: Buffer;
  /** Start of each event's frame within `bytes`. */
  readonly frameOffsets: readonly number[];
}

export function encodeEvents(sealed: readonly SealedEvent[]): EncodedEvents {
  const sizes: number[] = new Array<number>(sealed.length);
  let total = 0;
  for (let i = 0; i < sealed.length; i++) {
    const size = HASHED_PREFIX_BYTES + Buffer.byteLength((sealed[i] as SealedEvent).canonical, 'utf8');
    sizes[i] = size;
    total += FRAME_HEADER_BYTES + size;
  }
  const bytes = Buffer.allocUnsafe(total);
  const frameOffsets: number[] = new Array<number>(sealed.length);
  let at = 0;
  for (let i = 0; i < sealed.length; i++) {
    const { event, canonical } = sealed[i] as SealedEvent;
    const payloadBytes = sizes[i] as number;
    const p = at + FRAME_HEADER_BYTES;
    HASH_PREFIX.copy(bytes, p);
    bytes.write(event.hash, p + HASH_PREFIX.length, 64, 'latin1');
    bytes[p + HASH_PREFIX.length + 64] = 0x22; // "
    bytes.write(canonical, p + HASHED_PREFIX_BYTES, 'utf8');
    bytes[p + HASHED_PREFIX_BYTES] = 0x2c; // , replaces the canonical JSON's opening {
    writeFrameHeader(bytes, at, payloadBytes);
    frameOffsets[i] = at;
    at += FRAME_HEADER_BYTES + payloadBytes;
  }
  return { bytes, frameOffsets };
}

export type { ClaimedIdentity, RecordDecodeResult } from '../record-decode.ts';
export { claimedIdentity } from '../record-decode.ts';

/** Parses a payload and decodes it (record-decode.ts). With `stream`, other streams are skipped before the shape is checked. */
export function decodeEvent(payload: Buffer, stream?: string, trusted = false): RecordDecodeResult {
  const text = payload.toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, skipped: false, reason: 'the record is not valid JSON', claimed: {} };
  }
  return decodeWritten(raw, stream, trusted, text);
}

/** Best-effort identity of a payload that may be damaged (never throws). */
export function claimedIdentityOf(payload: Buffer): ClaimedIdentity {
  try {
    return claimedIdentity(JSON.parse(payload.toString('utf8')));
  } catch {
    return {};
  }
}

export interface ChainFields {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
}

/**
 * The chain fields of a payload, without full validation: start-up recovery rebuilds heads from
 * these alone (`attest verify` checks everything). Null when the payload is not an event.
 */
export function decodeChainFields(payload: Buffer): ChainFields | null {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { stream, seq, hash } = raw as Record<string, unknown>;
  if (typeof stream !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || typeof hash !== 'string') return null;
  return { stream, seq, hash };
}
