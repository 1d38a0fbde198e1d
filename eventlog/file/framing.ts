/**
 * Record framing of the file log: [u32 BE payload length][u32 BE CRC-32 of payload][payload].
 * The CRC (zlib's, IEEE 802.3) detects torn writes and any single-byte change; it is not a
 * defence against someone who rewrites it — the hash chains are (see verify.ts).
 */
import { crc32 } from 'node:zlib';

export const FRAME_HEADER_BYTES = 8;
/** Larger declared lengths are treated as damage, not as records. */
export const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

/**
 * Outcome of checking the bytes at a position: a positive number is the length of a valid frame;
 * the negative constants below name what is wrong. Numbers, not objects: this runs per record.
 */
export const FRAME_SHORT_HEADER = -1;
export const FRAME_SHORT_PAYLOAD = -2;
export const FRAME_BAD_LENGTH = -3;
export const FRAME_BAD_CRC = -4;
export type FrameDefect = typeof FRAME_SHORT_HEADER | typeof FRAME_SHORT_PAYLOAD | typeof FRAME_BAD_LENGTH | typeof FRAME_BAD_CRC;

/** Writes the header of a frame whose payload is already at `frameStart + 8`. */
export function writeFrameHeader(buf: Buffer, frameStart: number, payloadBytes: number): void {
  const payloadStart = frameStart + FRAME_HEADER_BYTES;
  buf.writeUInt32BE(payloadBytes, frameStart);
  buf.writeUInt32BE(crc32(buf.subarray(payloadStart, payloadStart + payloadBytes)), frameStart + 4);
}

/** Frames a whole payload into a new buffer. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  buf.set(payload, FRAME_HEADER_BYTES);
  writeFrameHeader(buf, 0, payload.length);
  return buf;
}

/** Checks the frame starting at `pos`, given that `buf` holds valid bytes up to `end`. */
export function checkFrame(buf: Buffer, pos: number, end: number): number {
  if (end - pos < FRAME_HEADER_BYTES) return FRAME_SHORT_HEADER;
  const length = buf.readUInt32BE(pos);
  if (length === 0 || length > MAX_PAYLOAD_BYTES) return FRAME_BAD_LENGTH;
  const frameEnd = pos + FRAME_HEADER_BYTES + length;
  if (frameEnd > end) return FRAME_SHORT_PAYLOAD;
  if (crc32(buf.subarray(pos + FRAME_HEADER_BYTES, frameEnd)) !== buf.readUInt32BE(pos + 4)) return FRAME_BAD_CRC;
  return FRAME_HEADER_BYTES + length;
}

/**
 * Start of the first valid frame at or after `from` whose payload looks like a JSON object, or -1.
 * Used only after damage, to tell a torn tail (nothing valid follows) from corruption.
 */
export function findNextFrame(buf: Buffer, from: number): number {
  for (let pos = from; pos + FRAME_HEADER_BYTES < buf.length; pos++) {
    if (buf[pos + FRAME_HEADER_BYTES] === 0x7b && checkFrame(buf, pos, buf.length) > 0) return pos;
  }
  return -1;
}

/** Declared payload length of the frame at `pos` (header must be in `buf`). */
export function declaredLength(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos);
}

export function describeFrameDefect(defect: FrameDefect): string {
  switch (defect) {
    case FRAME_SHORT_HEADER:
      return 'the record header is incomplete';
    case FRAME_SHORT_PAYLOAD:
      return 'the record is shorter than its declared length';
    case FRAME_BAD_LENGTH:
      return 'the record declares an impossible length';
    case FRAME_BAD_CRC:
      return 'the record checksum does not match its bytes';
  }
}
