/**
 * `attest verify --checkpoint FILE`: the live log and its tree against signed checkpoints — the
 * checks the per-stream chains cannot make (tail truncation, a log rewritten from some point on,
 * a log shown differently from what was signed). One pass over the log:
 *   - every chain (verify.ts ChainVerifier);
 *   - every event's leaf (SHA-256(0x00 ‖ canonical bytes)) against the leaf the tree stored for it;
 *   - the root recomputed from the log at the size of every checkpoint against its signed root;
 * then: no checkpoint is larger than the log or the tree (a cut tail), the checkpoints of the
 * evidence directory chain by consistency proofs from the tree, and the latest extends the earlier
 * checkpoint the auditor kept (`earlier`) — a smaller one is 'size-regressed', another root 'fork'.
 * The first failure by leaf index is reported, naming the event or checkpoint and why (a failure
 * at one event before a root mismatch of a range of leaves that holds it).
 */
import { CheckpointError, CompactRange, NoteError, verifyCheckpointChain } from '../merkle/index.ts';
import type { CheckpointTrust, MerkleStoreReader } from '../merkle/index.ts';
import { LogUnavailableError } from '../port.ts';
import type { EventLogReader, LogEntry } from '../port.ts';
import { chainOf } from '../record-decode.ts';
import { ChainVerifier, nameOf } from '../verify.ts';
import type { StoredCheckpoint } from './checkpoint-files.ts';
import { leafHashOf } from './leaf.ts';

export type EvidenceFailureKind = 'chain' | 'leaf' | 'checkpoint' | 'truncated';

export interface EvidenceFailure {
  readonly kind: EvidenceFailureKind;
  /** The first leaf (global log index) the failure concerns. */
  readonly index: number;
  /** When the failure is somewhere in leaves [index, end) (a root that does not match), not at one event. */
  readonly end?: number;
  readonly eventId?: string;
  readonly checkpointSize?: number;
  readonly checkpointFile?: string;
  readonly reason: string;
}

export interface EvidenceVerifyResult {
  readonly ok: boolean;
  readonly logSize: number;
  readonly treeSize: number;
  readonly streams: number;
  /** Sizes of the checkpoints checked against the log, ascending. */
  readonly checkpoints: readonly number[];
  readonly firstFailure?: EvidenceFailure;
  /** Every failure found, by leaf index (the chain check stops at its first). */
  readonly failures: readonly EvidenceFailure[];
}

export interface EvidenceVerifyOptions {
  readonly reader: EventLogReader;
  readonly tree: MerkleStoreReader;
  /** The evidence directory's checkpoints, verified, ascending (readCheckpointFiles). */
  readonly checkpoints: readonly StoredCheckpoint[];
  /** A checkpoint the auditor kept from before: the log must be a consistent extension of it. */
  readonly earlier?: StoredCheckpoint;
  readonly trust: CheckpointTrust;
}

const LEAF_CHUNK = 8192;

function describe(stored: StoredCheckpoint): string {
  return `the checkpoint of size ${stored.checkpoint.size} (${stored.file})`;
}

export async function verifyEvidence(options: EvidenceVerifyOptions): Promise<EvidenceVerifyResult> {
  const { reader, tree, earlier } = options;
  const all = [...options.checkpoints, ...(earlier === undefined ? [] : [earlier])];
  const atSize = new Map<number, StoredCheckpoint[]>();
  for (const stored of all) atSize.set(stored.checkpoint.size, [...(atSize.get(stored.checkpoint.size) ?? []), stored]);
  const failures: EvidenceFailure[] = [];
  const chains = new ChainVerifier();
  const range = new CompactRange();
  let leafFailed = false;
  let lastMatching = 0;
  let treeLeaves: Buffer = Buffer.alloc(0);
  let treeLeavesFrom = 0;

  const checkRoots = (): void => {
    let matching = true;
    for (const stored of atSize.get(range.size) ?? []) {
      if (range.root().equals(stored.checkpoint.root)) continue;
      matching = false;
      failures.push({ kind: 'checkpoint', index: lastMatching, end: range.size, checkpointSize: stored.checkpoint.size, checkpointFile: stored.file, reason: `the log's first ${range.size} events do not give the root ${describe(stored)} signed: an event among leaves ${lastMatching}–${range.size - 1} was changed, removed, added or reordered since it was signed` });
    }
    if (matching && atSize.has(range.size)) lastMatching = range.size;
  };
  checkRoots();

  const compareLeaf = async (entry: LogEntry, index: number, leaf: Buffer): Promise<void> => {
    if (leafFailed || index >= tree.size) return;
    if (index >= treeLeavesFrom + treeLeaves.length / 32) {
      treeLeavesFrom = index;
      treeLeaves = await tree.leafHashes(index, Math.min(LEAF_CHUNK, tree.size - index));
    }
    const at = (index - treeLeavesFrom) * 32;
    if (leaf.equals(treeLeaves.subarray(at, at + 32))) return;
    leafFailed = true;
    const event = chainOf(entry);
    failures.push({ kind: 'leaf', index, eventId: event.id, reason: `${nameOf(event)} at leaf ${index}: its leaf hash is not the one the tree stored for leaf ${index} (the event was changed, removed, inserted or moved after the tree recorded it)` });
  };

  let index = 0;
  try {
    for await (const entry of reader.entries()) {
      chains.check(entry);
      const leaf = leafHashOf(entry);
      await compareLeaf(entry, index, leaf);
      range.append(leaf);
      index++;
      checkRoots();
    }
  } catch (error) {
    if (!(error instanceof LogUnavailableError) || error.code !== 'ATTEST_LOG_CORRUPT') throw error;
    chains.damaged({ index: chains.nextIndex, reason: error.message });
  }
  const chainResult = chains.result();
  if (chainResult.firstFailure !== undefined) {
    const { index: at, eventId, reason } = chainResult.firstFailure;
    failures.push({ kind: 'chain', index: at, ...(eventId !== undefined && { eventId }), reason });
  }
  const logSize = index;
  if (tree.size > logSize) {
    failures.push({ kind: 'truncated', index: logSize, reason: `the tree holds ${tree.size} leaves but the log only ${logSize} events: events ${logSize}–${tree.size - 1} were cut from the log's tail (or the log was replaced)` });
  }
  for (const stored of all) {
    if (stored.checkpoint.size > logSize) {
      failures.push({ kind: 'truncated', index: logSize, checkpointSize: stored.checkpoint.size, checkpointFile: stored.file, reason: `${describe(stored)} was signed over ${stored.checkpoint.size} events but the log holds ${logSize}: the tail of the log was cut after it was signed` });
    }
  }
  await checkChain(options, failures);
  // A failure at one event comes before a root mismatch of the leaves around it: it says where.
  const position = (failure: EvidenceFailure): number => (failure.end === undefined ? failure.index : failure.end - 0.5);
  const order: readonly EvidenceFailureKind[] = ['chain', 'leaf', 'checkpoint', 'truncated'];
  failures.sort((a, b) => position(a) - position(b) || order.indexOf(a.kind) - order.indexOf(b.kind));
  const result = { ok: failures.length === 0, logSize, treeSize: tree.size, streams: chainResult.streams, checkpoints: [...atSize.keys()].sort((a, b) => a - b), failures };
  return failures[0] === undefined ? result : { ...result, firstFailure: failures[0] };
}

/** The checkpoints among themselves: consecutive ones by consistency proofs from the tree, then the latest against the earlier one. */
async function checkChain(options: EvidenceVerifyOptions, failures: EvidenceFailure[]): Promise<void> {
  const { tree, trust, earlier } = options;
  const chained = options.checkpoints.filter((stored) => stored.checkpoint.size <= tree.size);
  const link = async (older: StoredCheckpoint, newer: StoredCheckpoint): Promise<void> => {
    const m = older.checkpoint.size;
    const n = newer.checkpoint.size;
    try {
      const proof = m === 0 || m >= n || n > tree.size ? [] : await tree.consistencyProof(m, n);
      verifyCheckpointChain(older.checkpoint, newer.note, proof, trust);
    } catch (error) {
      if (!(error instanceof CheckpointError || error instanceof NoteError)) throw error;
      const where = m > n ? { index: n } : { index: 0, end: m };
      failures.push({ kind: 'checkpoint', ...where, checkpointSize: n, checkpointFile: newer.file, reason: `${describe(newer)} does not follow ${describe(older)}: ${error.reason}: ${error.message}` });
    }
  };
  for (let i = 1; i < chained.length; i++) await link(chained[i - 1] as StoredCheckpoint, chained[i] as StoredCheckpoint);
  const latest = options.checkpoints.at(-1);
  if (earlier !== undefined && latest !== undefined && latest.checkpoint.size <= tree.size) await link(earlier, latest);
}
