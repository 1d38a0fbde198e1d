/**
 * Sequential frame reads from one segment file, in large chunks: one read syscall serves many
 * records. A returned payload is a view into the chunk and is valid until the next call.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { checkFrame, declaredLength, findNextFrame, FRAME_BAD_CRC, FRAME_BAD_LENGTH, FRAME_HEADER_BYTES, FRAME_SHORT_HEADER, FRAME_SHORT_PAYLOAD, MAX_PAYLOAD_BYTES } from './framing.ts';
import type { FrameDefect } from './framing.ts';

const CHUNK_BYTES = 1024 * 1024;

export type FrameRead =
  | { readonly status: 'ok'; readonly payload: Buffer; readonly frameEnd: number }
  | { readonly status: 'end' }
  | { readonly status: 'defect'; readonly defect: FrameDefect };

const END: FrameRead = Object.freeze({ status: 'end' });
const SHORT_HEADER: FrameRead = Object.freeze({ status: 'defect', defect: FRAME_SHORT_HEADER });
const SHORT_PAYLOAD: FrameRead = Object.freeze({ status: 'defect', defect: FRAME_SHORT_PAYLOAD });
const BAD_LENGTH: FrameRead = Object.freeze({ status: 'defect', defect: FRAME_BAD_LENGTH });
const BAD_CRC: FrameRead = Object.freeze({ status: 'defect', defect: FRAME_BAD_CRC });

export class SegmentReader {
  readonly path: string;
  readonly #handle: FileHandle;
  #chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  /** File offset of chunk[0] and number of valid bytes in the chunk. */
  #chunkStart = 0;
  #chunkBytes = 0;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  static async open(path: string): Promise<SegmentReader> {
    return new SegmentReader(path, await open(path, 'r'));
  }

  async size(): Promise<number> {
    return (await this.#handle.stat()).size;
  }

  /** The frame at `offset`, reading no further than `limit` (the bytes known to be readable). */
  async next(offset: number, limit: number): Promise<FrameRead> {
    if (offset >= limit) return END;
    if (limit - offset < FRAME_HEADER_BYTES || !(await this.#load(offset, offset + FRAME_HEADER_BYTES))) return SHORT_HEADER;
    const length = declaredLength(this.#chunk, offset - this.#chunkStart);
    if (length === 0 || length > MAX_PAYLOAD_BYTES) return BAD_LENGTH;
    const frameEnd = offset + FRAME_HEADER_BYTES + length;
    if (frameEnd > limit || !(await this.#load(offset, frameEnd))) return SHORT_PAYLOAD;
    const pos = offset - this.#chunkStart;
    const result = checkFrame(this.#chunk, pos, pos + FRAME_HEADER_BYTES + length);
    if (result < 0) return BAD_CRC; // length and extent were checked above
    return { status: 'ok', payload: this.#chunk.subarray(pos + FRAME_HEADER_BYTES, pos + result), frameEnd };
  }

  /** The bytes [start, end) of the file (for scanning past damage). */
  async region(start: number, end: number): Promise<Buffer> {
    const buf = Buffer.alloc(Math.max(0, end - start));
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await this.#handle.read(buf, filled, buf.length - filled, start + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  }

  /** Whether a valid record starts anywhere after the damaged one at `offset`: damage at the end is a torn tail, damage before valid records is corruption. */
  async validRecordAfter(offset: number, limit: number): Promise<boolean> {
    if (limit - offset <= FRAME_HEADER_BYTES) return false;
    return findNextFrame(await this.region(offset + 1, limit), 0) >= 0;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }

  /** Ensures [start, end) is in the chunk, reading ahead; false when the file holds fewer bytes. */
  async #load(start: number, end: number): Promise<boolean> {
    if (start >= this.#chunkStart && end <= this.#chunkStart + this.#chunkBytes) return true;
    const want = end - start;
    if (want > this.#chunk.length) this.#chunk = Buffer.allocUnsafe(want);
    let filled = 0;
    while (filled < this.#chunk.length) {
      const { bytesRead } = await this.#handle.read(this.#chunk, filled, this.#chunk.length - filled, start + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (filled >= want) break;
    }
    this.#chunkStart = start;
    this.#chunkBytes = filled;
    return filled >= want;
  }
}

