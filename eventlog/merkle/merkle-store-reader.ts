/**
 * A read-only view of a MerkleStore directory (merkle-store.ts) for another process — `attest
 * prove`, `attest export`, `attest verify` — while the gateway that owns the store may be running
 * and appending to it. It takes no lock, opens every file read-only, repairs nothing, and reads
 * only up to the size HEAD records: the last sync() made those nodes durable before HEAD was
 * renamed into place, so they never change under the reader (the files only grow past them).
 * Nodes the writer appended since are not seen; reopen to see a newer size.
 *
 * Opening checks that the directory is a store (a HEAD, the level files it needs, long enough) and
 * recomputes the root at HEAD's size from the stored nodes (O(log n) reads): a store that
 * contradicts its HEAD is refused (ATTEST_MERKLE_CORRUPT), a missing one is named
 * (ATTEST_MERKLE_NOT_FOUND).
 */
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isTreeInteger } from './bits.ts';
import { MerkleError } from './errors.ts';
import { HASH_SIZE, base64Of, emptyRoot, equalBytes } from './hash.ts';
import { HEAD_FILE, LEVEL_FILE, levelFileName, readHead, recordsAt } from './merkle-store.ts';
import { assembleProof, planConsistency, planInclusion, planRoot, subtreeNodes } from './proof-plan.ts';
import type { NodeId, ProofPlan } from './proof-plan.ts';

export class MerkleStoreReader implements AsyncDisposable {
  readonly #dir: string;
  readonly #size: number;
  readonly #root: Buffer;
  /** One read-only handle per level with records at `size`. */
  readonly #handles: FileHandle[];
  #nodesRead = 0;
  #closed = false;

  private constructor(dir: string, size: number, root: Buffer, handles: FileHandle[]) {
    this.#dir = dir;
    this.#size = size;
    this.#root = root;
    this.#handles = handles;
  }

  /** Opens the store in `dir` read-only at the size its HEAD records. */
  static async open(dir: string): Promise<MerkleStoreReader> {
    const info = await stat(dir).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new MerkleError('ATTEST_MERKLE_NOT_FOUND', `there is no Merkle store at ${dir}: the directory does not exist (is evidence.enabled on, and has the gateway run with it?)`);
      throw error;
    });
    if (!info.isDirectory()) throw new MerkleError('ATTEST_MERKLE_NOT_FOUND', `${dir} is not a Merkle store: it is not a directory`);
    const head = await readHead(dir);
    if (head === undefined) {
      const levels = (await readdir(dir)).filter((name) => LEVEL_FILE.test(name));
      throw new MerkleError(
        'ATTEST_MERKLE_NOT_FOUND',
        levels.length === 0
          ? `${dir} is not a Merkle store: it has no ${HEAD_FILE} and no level files`
          : `the Merkle store in ${dir} has no ${HEAD_FILE}: it was never synced (its writer syncs every evidence.syncEveryLeaves leaves and at a clean stop)`,
      );
    }
    const handles: FileHandle[] = [];
    try {
      for (let level = 0; recordsAt(head.size, level) > 0; level++) {
        const path = join(dir, levelFileName(level));
        const handle = await open(path, 'r').catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new MerkleError('ATTEST_MERKLE_CORRUPT', `the Merkle store in ${dir} records ${head.size} leaves but has no ${levelFileName(level)}: rebuild it from the log`);
          throw error;
        });
        handles.push(handle);
        const records = Math.floor((await handle.stat()).size / HASH_SIZE);
        if (records < recordsAt(head.size, level)) {
          throw new MerkleError('ATTEST_MERKLE_CORRUPT', `${path} holds ${records} nodes but the store's ${HEAD_FILE} (size ${head.size}) needs ${recordsAt(head.size, level)}: synced nodes were lost; rebuild the store from the log`);
        }
      }
      const reader = new MerkleStoreReader(dir, head.size, head.root, handles);
      const root = head.size === 0 ? emptyRoot() : await reader.#rootFromNodes(head.size);
      if (!equalBytes(root, head.root)) {
        throw new MerkleError('ATTEST_MERKLE_CORRUPT', `the Merkle store in ${dir} has root ${base64Of(root)} at size ${head.size}, but its ${HEAD_FILE} recorded ${base64Of(head.root)}: its nodes were altered; rebuild it from the log`);
      }
      return reader;
    } catch (error) {
      for (const handle of handles) await handle.close();
      throw error;
    }
  }

  /** Leaves in the view: the size of the store's last sync. */
  get size(): number {
    return this.#size;
  }

  get directory(): string {
    return this.#dir;
  }

  /** Nodes read from the files since open (a proof reads O(log n): the bench and the specs count them). */
  get nodesRead(): number {
    return this.#nodesRead;
  }

  /** MTH at `size` (HEAD's root, checked at open). */
  root(): Buffer {
    return Buffer.from(this.#root);
  }

  /** MTH of the first `size` leaves, for any size up to the view's: O(log n) reads. */
  async rootAt(size: number): Promise<Buffer> {
    this.#assertOpen();
    if (size === this.#size) return this.root();
    planRoot(size, this.#size);
    return size === 0 ? emptyRoot() : this.#rootFromNodes(size);
  }

  async leafHash(index: number): Promise<Buffer> {
    this.#assertOpen();
    if (!isTreeInteger(index) || index >= this.#size) throw new MerkleError('ATTEST_MERKLE_RANGE', `leaf index ${String(index)} is not in the tree of size ${this.#size} (the store's last sync)`);
    const [hash] = await this.#readNodes([{ level: 0, index }]);
    return hash as Buffer;
  }

  /** Leaf hashes [start, start + count) in one read (a verifier walking the log beside the tree). */
  async leafHashes(start: number, count: number): Promise<Buffer> {
    this.#assertOpen();
    if (!isTreeInteger(start) || !isTreeInteger(count) || start + count > this.#size) throw new MerkleError('ATTEST_MERKLE_RANGE', `leaves [${String(start)}, ${String(start + count)}) are not in the tree of size ${this.#size}`);
    const bytes = Buffer.allocUnsafe(count * HASH_SIZE);
    let read = 0;
    while (read < bytes.length) {
      const { bytesRead } = await (this.#handles[0] as FileHandle).read(bytes, read, bytes.length - read, start * HASH_SIZE + read);
      if (bytesRead === 0) throw this.#shortened(0, start + read / HASH_SIZE);
      read += bytesRead;
    }
    this.#nodesRead += count;
    return bytes;
  }

  /** RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the tree of `size` leaves (default: the view's size). */
  async inclusionProof(index: number, size = this.#size): Promise<Buffer[]> {
    this.#assertOpen();
    return this.#resolve(planInclusion(index, size, this.#size));
  }

  /** RFC 9162 §2.1.4.1 consistency proof from size m to size n (default: the view's size), 0 < m ≤ n. */
  async consistencyProof(m: number, n = this.#size): Promise<Buffer[]> {
    this.#assertOpen();
    return this.#resolve(planConsistency(m, n, this.#size));
  }

  /**
   * The complete subtrees [0, size) splits into, left to right (one per set bit of size): the
   * compact range a verifier resumes from to hash leaves [size, …) itself (CompactRange.fromSubtrees).
   */
  async rightEdge(size: number): Promise<Buffer[]> {
    this.#assertOpen();
    planRoot(size, this.#size);
    return size === 0 ? [] : this.#readNodes(subtreeNodes({ start: 0, end: size }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of this.#handles) await handle.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #rootFromNodes(size: number): Promise<Buffer> {
    const [root] = await this.#resolve(planRoot(size, this.#size));
    return root as Buffer;
  }

  #assertOpen(): void {
    if (this.#closed) throw new MerkleError('ATTEST_MERKLE_CLOSED', `the Merkle store reader of ${this.#dir} is closed`);
  }

  #shortened(level: number, index: number): MerkleError {
    return new MerkleError('ATTEST_MERKLE_CORRUPT', `${join(this.#dir, levelFileName(level))} ends before node ${index}, below the synced size ${this.#size} (it was truncated or rebuilt while this reader had it open): reopen`);
  }

  async #readNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    this.#nodesRead += ids.length;
    return Promise.all(
      ids.map(async ({ level, index }) => {
        const handle = this.#handles[level];
        if (handle === undefined || index >= recordsAt(this.#size, level)) throw new MerkleError('ATTEST_MERKLE_RANGE', `no complete node at level ${level}, index ${index} in a tree of size ${this.#size}`);
        const hash = Buffer.allocUnsafe(HASH_SIZE);
        const { bytesRead } = await handle.read(hash, 0, HASH_SIZE, index * HASH_SIZE);
        if (bytesRead !== HASH_SIZE) throw this.#shortened(level, index);
        return hash;
      }),
    );
  }

  async #resolve(plan: ProofPlan): Promise<Buffer[]> {
    return assembleProof(plan, await this.#readNodes(plan.nodes));
  }
}
