/**
 * The Merkle tree's nodes on disk, so proofs never read the log and a restart never re-hashes it.
 *
 * Layout (README.md "Storage format"): one file per level, `level-00` … `level-52`, each an array of
 * 32-byte records: record j of `level-k` is the complete node at level k covering leaves
 * [j·2^k, (j+1)·2^k) — `level-00` holds the leaf hashes. A tree of n leaves has exactly
 * floor(n / 2^k) records in `level-k`, so any node of any past size is one 32-byte read at
 * offset 32·j, and a C2SP tlog-tiles tile (level L, index N) is bytes [8192·N, 8192·(N+1)) of
 * `level-(8L)`. `HEAD` holds the size and root of the last sync(), checkpoint-shaped.
 *
 * Appends are synchronous and in memory (hashing and the right edge, compact-range.ts); the new
 * nodes are written in batches — one positional write per level — when `flushLeaves` leaves are
 * pending or flush()/sync() is called, and never fsynced per leaf: the store is derived data that
 * the log can always rebuild. sync() makes everything appended so far durable and records HEAD.
 *
 * Opening resumes at the size the leaf file supports, repairs what a crash between writes leaves
 * (partial records cut, upper-level records beyond the leaves dropped, missing ones recomputed
 * from the level below — all reported in `recovery`), and checks the root recomputed from the
 * stored nodes at HEAD's size against HEAD's root. A store that contradicts its HEAD is refused
 * (ATTEST_MERKLE_CORRUPT); `verify()` rehashes every node. Rebuild by opening with
 * `{ reset: true }` (or `truncate()` to a good size) and feeding the missing leaves from the log.
 *
 * One writer per directory (the process that owns the event log); nothing here takes a lock.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isTreeInteger } from './bits.ts';
import { formatCheckpoint, parseCheckpoint } from './checkpoint.ts';
import { CompactRange } from './compact-range.ts';
import type { NodeSink } from './compact-range.ts';
import { HASH_SIZE, base64Of, emptyRoot, equalBytes, hashChildren, hashLeaf } from './hash.ts';
import { MerkleError } from './errors.ts';
import { assembleProof, planConsistency, planInclusion, planRoot, subtreeNodes } from './proof-plan.ts';
import type { NodeId, ProofPlan } from './proof-plan.ts';

/** The origin line of HEAD: it is checkpoint-shaped but never signed, and never leaves the directory. */
const HEAD_ORIGIN = 'attest merkle store v1';
export const HEAD_FILE = 'HEAD';
export const LEVEL_FILE = /^level-(\d{2})$/;
/** Level 53 would need 2^53 leaves: beyond a safe integer. */
const MAX_LEVELS = 53;
/** Records read per chunk when scanning or repairing a level (256 KiB). */
const SCAN_RECORDS = 8192;

export interface MerkleStoreOptions {
  /** Pending leaves that start a background write (default 1024). */
  readonly flushLeaves?: number;
  /** Deletes every node and HEAD first: the store restarts empty, to be fed from the log. */
  readonly reset?: boolean;
}

/** What open() found on disk and did about it. */
export interface MerkleStoreRecovery {
  /** Leaves in the store once opened. */
  readonly size: number;
  /** Size recorded by the last sync(), when there was one. */
  readonly syncedSize: number | undefined;
  /** Bytes of partial records cut from the ends of level files (a write cut short by a crash). */
  readonly tornBytes: number;
  /** Upper-level nodes dropped because the leaves under them were not on disk. */
  readonly droppedNodes: number;
  /** Upper-level nodes recomputed from the level below because they were not on disk. */
  readonly rebuiltNodes: number;
}

export interface StoreVerifyFailure {
  readonly level: number;
  readonly index: number;
  /** The leaves [start, end) under the node that does not match: truncate() to `start` and re-feed from there. */
  readonly start: number;
  readonly end: number;
  readonly reason: string;
}

export interface StoreVerifyResult {
  readonly ok: boolean;
  readonly size: number;
  readonly nodesChecked: number;
  readonly firstFailure?: StoreVerifyFailure;
}

interface Level {
  readonly number: number;
  readonly path: string;
  handle: FileHandle | undefined;
  /** Records in the file. */
  onDisk: number;
  /** Records [onDisk, onDisk + pending) not yet written, packed from offset 0. */
  buffer: Buffer;
  pending: number;
  /** Written since the last datasync. */
  dirty: boolean;
}

export function levelFileName(level: number): string {
  return `level-${String(level).padStart(2, '0')}`;
}

export function recordsAt(size: number, level: number): number {
  return Math.floor(size / 2 ** level);
}

export class MerkleStore implements AsyncDisposable {
  readonly #dir: string;
  readonly #flushLeaves: number;
  readonly #levels: Level[] = [];
  #range: CompactRange;
  #syncedSize: number | undefined;
  #recovery: MerkleStoreRecovery;
  #writing: Promise<void> | undefined;
  /** Set when a background write failed: background writes pause until flush()/sync() succeed. */
  #backgroundError: unknown;
  /** sync(), truncate() and close() run one at a time. */
  #serial: Promise<unknown> = Promise.resolve();
  #closed = false;
  #truncating = false;
  readonly #sink: NodeSink = { completed: (level, _index, hash) => this.#queue(level, hash) };

  private constructor(dir: string, flushLeaves: number, range: CompactRange, recovery: MerkleStoreRecovery) {
    this.#dir = dir;
    this.#flushLeaves = flushLeaves;
    this.#range = range;
    this.#syncedSize = recovery.syncedSize;
    this.#recovery = recovery;
  }

  /** Opens (creating when missing) the store in `dir`: see the file comment for what it checks and repairs. */
  static async open(dir: string, options: MerkleStoreOptions = {}): Promise<MerkleStore> {
    const flushLeaves = options.flushLeaves ?? 1024;
    if (!Number.isSafeInteger(flushLeaves) || flushLeaves < 1) throw new RangeError(`flushLeaves must be a positive integer, not ${flushLeaves}`);
    await mkdir(dir, { recursive: true });
    if (options.reset === true) await removeStoreFiles(dir);
    const found = await scanDirectory(dir);
    const head = await readHead(dir);
    const store = new MerkleStore(dir, flushLeaves, new CompactRange(), { size: 0, syncedSize: head?.size, tornBytes: 0, droppedNodes: 0, rebuiltNodes: 0 });
    try {
      await store.#recover(found, head);
    } catch (error) {
      await store.#closeHandles();
      throw error;
    }
    return store;
  }

  /** Leaves in the tree (appended, written or not). */
  get size(): number {
    return this.#range.size;
  }

  /** Size recorded by the last sync() (or found in HEAD at open): what a crash now would keep at least. */
  get syncedSize(): number | undefined {
    return this.#syncedSize;
  }

  get recovery(): MerkleStoreRecovery {
    return this.#recovery;
  }

  /** The error of the last background write, when it failed and no flush()/sync() has succeeded since. */
  get writeError(): unknown {
    return this.#backgroundError;
  }

  /** Leaves appended but not yet written to the files. */
  get pendingLeaves(): number {
    return this.#levels[0]?.pending ?? 0;
  }

  get directory(): string {
    return this.#dir;
  }

  /** Appends a leaf by its bytes (an event's canonical JSON); returns its index. */
  append(leaf: Uint8Array): number {
    return this.#append(hashLeaf(leaf));
  }

  /** Appends a leaf by its hash (SHA-256(0x00 ‖ bytes)); returns its index. */
  appendLeafHash(leafHash: Uint8Array): number {
    if (leafHash.length !== HASH_SIZE) throw new MerkleError('ATTEST_MERKLE_RANGE', `a leaf hash is ${HASH_SIZE} bytes, not ${leafHash.length}`);
    return this.#append(Buffer.from(leafHash));
  }

  #append(hash: Buffer): number {
    this.#assertOpen();
    if (this.#truncating) throw new MerkleError('ATTEST_MERKLE_RANGE', 'cannot append while truncate() runs: await it first');
    const index = this.#range.size;
    this.#range.append(hash, this.#sink);
    if (this.pendingLeaves >= this.#flushLeaves && this.#writing === undefined && this.#backgroundError === undefined) {
      // A background write. When it fails, the nodes stay queued and background writes pause; the
      // next flush()/sync() writes them again and throws if that fails too.
      this.#startWrite().catch((error: unknown) => {
        this.#backgroundError = error;
      });
    }
    return index;
  }

  /** Queues a completed node for its level file. */
  #queue(level: number, hash: Buffer): void {
    const state = this.#level(level);
    const end = (state.pending + 1) * HASH_SIZE;
    if (end > state.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(state.buffer.length * 2, 64 * HASH_SIZE));
      state.buffer.copy(grown, 0, 0, state.pending * HASH_SIZE);
      state.buffer = grown;
    }
    hash.copy(state.buffer, state.pending * HASH_SIZE);
    state.pending++;
  }

  /** MTH of the current tree (from the right edge in memory: no reads). */
  root(): Buffer {
    return this.#range.root();
  }

  /** MTH of the first `size` leaves, for any size up to the current one: O(log n) reads. */
  async rootAt(size: number): Promise<Buffer> {
    this.#assertOpen();
    if (size === this.size) return this.root();
    const [root] = await this.#resolve(planRoot(size, this.size));
    return root ?? emptyRoot();
  }

  async leafHash(index: number): Promise<Buffer> {
    this.#assertOpen();
    if (!isTreeInteger(index) || index >= this.size) throw new MerkleError('ATTEST_MERKLE_RANGE', `leaf index ${String(index)} is not in a tree of size ${this.size}`);
    const [hash] = await this.#readNodes([{ level: 0, index }]);
    return hash as Buffer;
  }

  /** RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the tree of `size` leaves (default: the current size). */
  async inclusionProof(index: number, size = this.size): Promise<Buffer[]> {
    this.#assertOpen();
    return this.#resolve(planInclusion(index, size, this.size));
  }

  /** RFC 9162 §2.1.4.1 consistency proof from size m to size n (default: the current size), 0 < m ≤ n. */
  async consistencyProof(m: number, n = this.size): Promise<Buffer[]> {
    this.#assertOpen();
    return this.#resolve(planConsistency(m, n, this.size));
  }

  /**
   * Compares the stored root at `size` with one known to be right (a verified checkpoint's, or one
   * recomputed from the log). Throws ATTEST_MERKLE_CORRUPT on a mismatch.
   */
  async checkRoot(size: number, root: Uint8Array): Promise<void> {
    const stored = await this.rootAt(size);
    if (!equalBytes(stored, root)) {
      throw new MerkleError('ATTEST_MERKLE_CORRUPT', `the Merkle store in ${this.#dir} has root ${base64Of(stored)} at size ${size}, not ${base64Of(root)}: rebuild it from the log (open with { reset: true } and append every event)`);
    }
  }

  /** Writes every pending node (no fsync). Resolves once what was appended before the call is in the files. */
  async flush(): Promise<void> {
    this.#assertOpen();
    await this.#flushUpTo(this.size);
  }

  async #flushUpTo(size: number): Promise<void> {
    for (;;) {
      if (this.#writing !== undefined) {
        await this.#writing.then(
          () => undefined,
          () => undefined,
        );
        continue;
      }
      if ((this.#levels[0]?.onDisk ?? 0) >= size) {
        this.#backgroundError = undefined;
        return;
      }
      await this.#startWrite();
    }
  }

  /**
   * Makes every node appended so far durable (write, fdatasync of each written level, directory
   * fsync) and records size and root in HEAD (written to a temporary file, fsynced, renamed).
   */
  async sync(): Promise<void> {
    this.#assertOpen();
    await this.#exclusive(() => this.#sync());
  }

  async #sync(): Promise<void> {
    const size = this.size;
    if (size === this.#syncedSize && this.#levels.every((level) => !level.dirty && level.pending === 0)) return;
    const root = this.root();
    await this.#flushUpTo(size);
    for (const level of this.#levels) {
      if (level.dirty && level.handle !== undefined) {
        level.dirty = false;
        await level.handle.datasync();
      }
    }
    await this.#writeHead(size, root);
  }

  async #writeHead(size: number, root: Buffer): Promise<void> {
    const tmp = join(this.#dir, `${HEAD_FILE}.tmp`);
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(formatCheckpoint({ origin: HEAD_ORIGIN, size, root, extensions: [] }));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(this.#dir, HEAD_FILE));
    await syncDirectory(this.#dir);
    this.#syncedSize = size;
  }

  /** Runs `task` after every sync/truncate/close started before it. */
  async #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(task, task);
    this.#serial = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Cuts the tree back to its first `size` leaves (to re-feed them from the log after verify() named
   * a bad node, or to drop leaves the log does not have), and syncs.
   */
  async truncate(size: number): Promise<void> {
    this.#assertOpen();
    if (!isTreeInteger(size) || size > this.size) throw new MerkleError('ATTEST_MERKLE_RANGE', `cannot truncate a tree of size ${this.size} to ${String(size)}`);
    await this.#exclusive(() => this.#truncate(size));
  }

  async #truncate(size: number): Promise<void> {
    this.#truncating = true;
    try {
      await this.#truncateFiles(size);
    } finally {
      this.#truncating = false;
    }
  }

  async #truncateFiles(size: number): Promise<void> {
    await this.#flushUpTo(this.size);
    // HEAD first: a crash before the files are cut leaves a store larger than its HEAD, which opens.
    await this.#writeHead(size, await this.rootAt(size));
    for (const level of this.#levels) {
      const keep = recordsAt(size, level.number);
      if (level.onDisk > keep) {
        const handle = await this.#handle(level);
        await handle.truncate(keep * HASH_SIZE);
        level.onDisk = keep;
        level.dirty = true;
      }
    }
    this.#range = CompactRange.fromSubtrees(size, size === 0 ? [] : await this.#readNodes(subtreeNodes({ start: 0, end: size })));
    await this.#sync();
  }

  /**
   * Rehashes every stored interior node from its children and compares the root at HEAD's size.
   * O(n) hashes; reads each level once, in 256 KiB chunks. Leaf hashes themselves can only be
   * checked against the log (compare leafHash(i) with the hash of event i's canonical bytes).
   */
  async verify(): Promise<StoreVerifyResult> {
    this.#assertOpen();
    await this.flush();
    const size = this.size;
    let nodesChecked = 0;
    for (let level = 1; recordsAt(size, level) > 0; level++) {
      const parents = this.#levels[level] as Level;
      const children = this.#levels[level - 1] as Level;
      const count = recordsAt(size, level);
      for (let from = 0; from < count; from += SCAN_RECORDS) {
        const n = Math.min(SCAN_RECORDS, count - from);
        const parentBytes = await readRecords(await this.#handle(parents), from, n);
        const childBytes = await readRecords(await this.#handle(children), 2 * from, 2 * n);
        for (let i = 0; i < n; i++) {
          const left = childBytes.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE);
          const right = childBytes.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE);
          nodesChecked++;
          if (!hashChildren(left, right).equals(parentBytes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))) {
            const index = from + i;
            const width = 2 ** level;
            return { ok: false, size, nodesChecked, firstFailure: { level, index, start: index * width, end: (index + 1) * width, reason: `node ${index} of level ${level} is not the hash of its two children in level ${level - 1}` } };
          }
        }
      }
    }
    const head = await readHead(this.#dir);
    if (head !== undefined && head.size <= size) {
      const root = await this.rootAt(head.size);
      if (!equalBytes(root, head.root)) return { ok: false, size, nodesChecked, firstFailure: { level: 0, index: 0, start: 0, end: head.size, reason: `the root at size ${head.size} is ${base64Of(root)}, HEAD recorded ${base64Of(head.root)}` } };
    }
    return { ok: true, size, nodesChecked };
  }

  /** Syncs and closes the files. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#exclusive(() => this.#sync());
    } finally {
      this.#closed = true;
      await this.#closeHandles();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new MerkleError('ATTEST_MERKLE_CLOSED', `the Merkle store in ${this.#dir} is closed`);
  }

  #level(level: number): Level {
    for (let l = this.#levels.length; l <= level; l++) {
      this.#levels.push({ number: l, path: join(this.#dir, levelFileName(l)), handle: undefined, onDisk: 0, buffer: Buffer.alloc(0), pending: 0, dirty: false });
    }
    return this.#levels[level] as Level;
  }

  async #handle(level: Level): Promise<FileHandle> {
    level.handle ??= await open(level.path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
    return level.handle;
  }

  #startWrite(): Promise<void> {
    const write = this.#writePending().finally(() => {
      this.#writing = undefined;
    });
    this.#writing = write;
    return write;
  }

  /** One positional write per level of everything pending; appends during it queue behind. */
  async #writePending(): Promise<void> {
    const batches = this.#levels
      .filter((level) => level.pending > 0)
      .map((level) => ({ level, count: level.pending, bytes: level.buffer.subarray(0, level.pending * HASH_SIZE) }));
    // allSettled: the write ends only once every level's write has, so none overlaps the next batch.
    const results = await Promise.allSettled(
      batches.map(async ({ level, count, bytes }) => {
        const handle = await this.#handle(level);
        let written = 0;
        while (written < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, level.onDisk * HASH_SIZE + written);
          written += bytesWritten;
        }
        // Appends may have grown the buffer meanwhile; what was written is its first `count` records either way.
        level.buffer.copy(level.buffer, 0, count * HASH_SIZE, level.pending * HASH_SIZE);
        level.pending -= count;
        level.onDisk += count;
        level.dirty = true;
      }),
    );
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  async #readNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    return Promise.all(
      ids.map(async ({ level, index }) => {
        const state = this.#levels[level];
        if (state === undefined || index >= state.onDisk + state.pending) {
          throw new MerkleError('ATTEST_MERKLE_RANGE', `no complete node at level ${level}, index ${index} in a tree of size ${this.size}`);
        }
        if (index >= state.onDisk) {
          const at = (index - state.onDisk) * HASH_SIZE;
          return Buffer.from(state.buffer.subarray(at, at + HASH_SIZE));
        }
        const hash = Buffer.allocUnsafe(HASH_SIZE);
        const { bytesRead } = await (await this.#handle(state)).read(hash, 0, HASH_SIZE, index * HASH_SIZE);
        if (bytesRead !== HASH_SIZE) throw new MerkleError('ATTEST_MERKLE_CORRUPT', `${state.path} ends before node ${index} (it was truncated while open): rebuild the store from the log`);
        return hash;
      }),
    );
  }

  async #resolve(plan: ProofPlan): Promise<Buffer[]> {
    return assembleProof(plan, await this.#readNodes(plan.nodes));
  }

  async #recover(found: ReadonlyMap<number, number>, head: StoredHead | undefined): Promise<void> {
    let tornBytes = 0;
    let droppedNodes = 0;
    let rebuiltNodes = 0;
    const size = Math.floor((found.get(0) ?? 0) / HASH_SIZE);
    const top = Math.max(-1, ...found.keys());
    for (let level = 0; level <= top || recordsAt(size, level) > 0; level++) {
      const state = this.#level(level);
      const bytes = found.get(level);
      const have = Math.floor((bytes ?? 0) / HASH_SIZE);
      const want = recordsAt(size, level);
      const keep = Math.min(have, want);
      if (bytes !== undefined && bytes !== keep * HASH_SIZE) {
        // A partial record (a write cut short), or records above what the leaves support.
        tornBytes += bytes % HASH_SIZE;
        droppedNodes += have - keep;
        await (await this.#handle(state)).truncate(keep * HASH_SIZE);
        state.dirty = true;
      }
      state.onDisk = keep;
      if (keep < want) rebuiltNodes += await this.#rebuildLevel(state, want);
    }
    const subtrees = size === 0 ? [] : await this.#readNodes(subtreeNodes({ start: 0, end: size }));
    this.#range = CompactRange.fromSubtrees(size, subtrees);
    this.#recovery = { size, syncedSize: head?.size, tornBytes, droppedNodes, rebuiltNodes };
    if (head !== undefined) {
      if (head.size > size) {
        throw new MerkleError('ATTEST_MERKLE_CORRUPT', `the Merkle store in ${this.#dir} holds ${size} leaves but its last sync recorded ${head.size}: synced nodes were lost; rebuild it from the log (open with { reset: true } and append every event)`);
      }
      const root = await this.rootAt(head.size);
      if (!equalBytes(root, head.root)) {
        throw new MerkleError('ATTEST_MERKLE_CORRUPT', `the Merkle store in ${this.#dir} has root ${base64Of(root)} at size ${head.size}, but its last sync recorded ${base64Of(head.root)}: its nodes were altered; rebuild it from the log (open with { reset: true } and append every event)`);
      }
    }
  }

  /** Recomputes records [onDisk, want) of a level from the level below (already repaired) and writes them. */
  async #rebuildLevel(state: Level, want: number): Promise<number> {
    const below = this.#levels[state.number - 1] as Level;
    const handle = await this.#handle(state);
    const belowHandle = await this.#handle(below);
    let rebuilt = 0;
    while (state.onDisk < want) {
      const n = Math.min(SCAN_RECORDS, want - state.onDisk);
      const children = await readRecords(belowHandle, 2 * state.onDisk, 2 * n);
      const out = Buffer.allocUnsafe(n * HASH_SIZE);
      for (let i = 0; i < n; i++) {
        hashChildren(children.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE), children.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE)).copy(out, i * HASH_SIZE);
      }
      await handle.write(out, 0, out.length, state.onDisk * HASH_SIZE);
      state.onDisk += n;
      state.dirty = true;
      rebuilt += n;
    }
    return rebuilt;
  }

  async #closeHandles(): Promise<void> {
    for (const level of this.#levels) {
      const handle = level.handle;
      level.handle = undefined;
      if (handle !== undefined) await handle.close();
    }
  }
}

export interface StoredHead {
  readonly size: number;
  readonly root: Buffer;
}

export async function readHead(dir: string): Promise<StoredHead | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, HEAD_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const head = parseCheckpoint(text);
    if (head.origin !== HEAD_ORIGIN) throw new Error(`origin ${JSON.stringify(head.origin)} is not ${JSON.stringify(HEAD_ORIGIN)}`);
    return { size: head.size, root: head.root };
  } catch (cause) {
    throw new MerkleError('ATTEST_MERKLE_CORRUPT', `${join(dir, HEAD_FILE)} is not a Merkle store head (${(cause as Error).message}): rebuild the store from the log (open with { reset: true })`, { cause });
  }
}

/** Level number → file length in bytes. */
async function scanDirectory(dir: string): Promise<Map<number, number>> {
  const found = new Map<number, number>();
  for (const name of await readdir(dir)) {
    const match = LEVEL_FILE.exec(name);
    if (match === null) continue;
    const level = Number(match[1]);
    if (level >= MAX_LEVELS) throw new MerkleError('ATTEST_MERKLE_CORRUPT', `${join(dir, name)} is beyond the deepest level a tree can have (${MAX_LEVELS - 1})`);
    found.set(level, (await stat(join(dir, name))).size);
  }
  return found;
}

async function removeStoreFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (LEVEL_FILE.test(name) || name === HEAD_FILE || name === `${HEAD_FILE}.tmp`) await rm(join(dir, name), { force: true });
  }
  await syncDirectory(dir);
}

async function readRecords(handle: FileHandle, from: number, count: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(count * HASH_SIZE);
  let read = 0;
  while (read < bytes.length) {
    const { bytesRead } = await handle.read(bytes, read, bytes.length - read, from * HASH_SIZE + read);
    if (bytesRead === 0) throw new MerkleError('ATTEST_MERKLE_CORRUPT', `a level file ends before record ${from + Math.floor(read / HASH_SIZE)}: rebuild the store from the log`);
    read += bytesRead;
  }
  return bytes;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

