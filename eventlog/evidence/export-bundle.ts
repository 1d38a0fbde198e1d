/**
 * `attest export`: the evidence bundle of a period (eventlog/bundle/bundle-format.ts), built from
 * the log (the events), a read-only view of the tree (right edge, proofs) and the signed
 * checkpoints. It refuses to write a bundle that would not verify: an event whose leaf is not the
 * tree's, a checkpoint whose root is not the tree's, a period whose events no checkpoint covers yet.
 *
 * Cost: the period is found by reading the log from the start (there is no index by time), and
 * the events from the period's first leaf to the covering checkpoint are held in memory; the
 * proofs read O(log n) nodes each.
 */
import { BUNDLE_FORMAT } from '../bundle/index.ts';
import type { BundleCheckpoint, BundleLeaf, EvidenceBundle } from '../bundle/index.ts';
import type { MerkleStoreReader } from '../merkle/index.ts';
import type { EventLogReader, LogEntry } from '../port.ts';
import type { StoredCheckpoint } from './checkpoint-files.ts';
import { EvidenceError } from './evidence-error.ts';
import { leafHashOf } from './leaf.ts';

export interface ExportOptions {
  readonly reader: EventLogReader;
  readonly tree: MerkleStoreReader;
  /** Verified checkpoints, ascending by size (readCheckpointFiles). */
  readonly checkpoints: readonly StoredCheckpoint[];
  readonly origin: string;
  /** Verifier keys (note text form) to state in the bundle. */
  readonly verifierKeys: readonly string[];
  /** ISO-8601 times: events with from ≤ occurredAt < to. */
  readonly from: string;
  readonly to: string;
  /** Keeps every other tenant's events out (their leaf hashes stay). */
  readonly tenant?: string;
}

function written(entry: LogEntry): Readonly<Record<string, unknown>> {
  return entry.written ?? (entry.event as unknown as Readonly<Record<string, unknown>>);
}

function timeOf(text: string, name: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `${name} ${JSON.stringify(text)} is not an ISO-8601 time`);
  return ms;
}

const b64 = (hash: Uint8Array): string => Buffer.from(hash).toString('base64');

/** Builds the bundle; throws EvidenceError when the log, tree and checkpoints cannot give one that verifies. */
export async function exportBundle(options: ExportOptions): Promise<EvidenceBundle> {
  const { reader, tree, origin, verifierKeys, tenant } = options;
  const from = timeOf(options.from, '--from');
  const to = timeOf(options.to, '--to');
  if (to <= from) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `the period is empty: --to (${options.to}) is not after --from (${options.from})`);
  const usable = options.checkpoints.filter(({ checkpoint }) => checkpoint.size <= tree.size);
  const latest = usable.at(-1);
  if (latest === undefined) {
    throw new EvidenceError('ATTEST_EVIDENCE_INVALID', options.checkpoints.length === 0 ? 'there is no signed checkpoint yet: nothing could tie the events to a signed tree' : `every checkpoint is beyond the tree's synced size ${tree.size}: wait for the gateway's next sync`);
  }
  for (const { checkpoint, file } of usable) {
    if (!(await tree.rootAt(checkpoint.size)).equals(checkpoint.root)) {
      throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `the tree's root at size ${checkpoint.size} is not the one ${file} signed: the tree or the log was rewritten after it was signed (run attest verify --checkpoint ${file})`);
    }
  }
  const limit = latest.checkpoint.size;
  let start: number | undefined;
  let end: number | undefined;
  const held: LogEntry[] = [];
  let index = 0;
  for await (const entry of reader.entries()) {
    const record = written(entry);
    const at = Date.parse(String(record['occurredAt']));
    const inPeriod = at >= from && at < to;
    if (index >= limit) {
      if (inPeriod) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `event ${String(record['id'])} at leaf ${index} is in the period, but the latest checkpoint covers ${limit} leaves: export again after the next checkpoint, or end the period earlier`);
      index++;
      continue;
    }
    if (start === undefined && at >= from) start = index;
    if (start !== undefined) held.push(entry);
    if (inPeriod) end = index + 1;
    index++;
  }
  start ??= Math.min(index, limit);
  end ??= start;
  held.length = end - start;
  const stored = end > start ? await tree.leafHashes(start, end - start) : Buffer.alloc(0);
  const leaves = held.map((entry, i): BundleLeaf => {
    const leaf = leafHashOf(entry);
    const record = written(entry);
    if (!leaf.equals(stored.subarray(32 * i, 32 * (i + 1)))) {
      throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `event ${String(record['id'])} at leaf ${start + i} does not have the leaf hash the tree holds: the log or the tree was altered (run attest verify)`);
    }
    return tenant === undefined || record['tenant'] === tenant ? { event: record } : { leafHash: b64(leaf), withheld: 'other-tenant' };
  });

  // The checkpoints: the last one at or before the start (it links to the bundle before this one),
  // every one inside the range, and the first one at or beyond its end (it covers the leaves).
  const coveringAt = usable.findIndex(({ checkpoint }) => checkpoint.size >= end);
  const firstAt = Math.min(coveringAt, Math.max(0, usable.findLastIndex(({ checkpoint }) => checkpoint.size <= start)));
  const chosen = usable.slice(firstAt, coveringAt + 1);
  const covering = usable[coveringAt] as StoredCheckpoint;
  const checkpoints: BundleCheckpoint[] = [];
  for (const [i, { note, checkpoint }] of chosen.entries()) {
    const previous = chosen[i - 1]?.checkpoint.size;
    const proof = previous === undefined || previous === 0 || previous === checkpoint.size ? [] : await tree.consistencyProof(previous, checkpoint.size);
    checkpoints.push({ note, consistency: proof.map(b64) });
  }
  const coverage = end > 0 && covering.checkpoint.size > end ? await tree.consistencyProof(end, covering.checkpoint.size) : [];
  return {
    format: BUNDLE_FORMAT,
    hashEncoding: 'base64',
    origin,
    verifierKeys: [...verifierKeys],
    period: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    ...(tenant !== undefined && { tenant }),
    range: { start, end },
    leaves,
    rightEdge: (await tree.rightEdge(start)).map(b64),
    checkpoints,
    coverage: { size: covering.checkpoint.size, consistency: coverage.map(b64) },
  };
}
