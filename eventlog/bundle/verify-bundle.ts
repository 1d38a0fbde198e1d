/**
 * The offline verifier of an evidence bundle (bundle-format.ts, docs/evidence.md): pure — no
 * files, no network, no clock, no configuration — and it imports only the Merkle library and the
 * canonical JSON of #schemas, so an auditor can run it on their own machine with the bundle alone.
 *
 * Trusted: the origin and the verifier keys the auditor passes (`trust`), or, when they pass
 * none, the ones the bundle states (the report says which; compare the key with the one the log's
 * operator published); SHA-256, Ed25519 and RFC 8785. Everything else in the bundle is checked:
 *   1. every checkpoint is signed by a trusted key and is of the trusted origin, none is smaller
 *      than the one before it, and each extends the previous by its consistency proof (RFC 9162);
 *   2. every event's hash matches its content, and events of one stream chain (seq, prevHash);
 *   3. the leaves, hashed from the events (SHA-256(0x00 ‖ canonical bytes)) or taken as given for
 *      withheld ones, placed after the right edge of [0, start), give the signed root of every
 *      listed checkpoint inside the range, and extend to the covering checkpoint by its proof.
 * The first failure throws a BundleError naming the event (leaf index, id) or checkpoint (size).
 */
import { canonicalize, sha256Hex } from '#schemas';
import { CheckpointError, CompactRange, NoteError, ProofError, decodeBase64, hashLeaf, openCheckpoint, parseVerifierKey, popCount, verifyCheckpointChain, verifyConsistency } from '../merkle/index.ts';
import type { Checkpoint, CheckpointTrust, NoteVerifier } from '../merkle/index.ts';
import { BundleError } from './bundle-error.ts';
import { parseBundle } from './bundle-format.ts';
import type { EvidenceBundle } from './bundle-format.ts';

/** What the auditor trusts, given out of band. Each part omitted is taken from the bundle itself. */
export interface BundleTrust {
  readonly origin?: string;
  readonly verifierKeys?: readonly string[];
  /**
   * A signed checkpoint the auditor kept from before (an earlier bundle's `latestCheckpoint`): the
   * bundle must hold a checkpoint of its size with its root, and none smaller than it at its end.
   */
  readonly previous?: string;
}

export interface BundleReport {
  readonly origin: string;
  /** Where the trusted keys came from: the auditor (`pinned`) or the bundle itself (`bundle`). */
  readonly keysFrom: 'pinned' | 'bundle';
  /** The keys trusted, `<name>+<key id>`. */
  readonly keys: readonly string[];
  readonly range: { readonly start: number; readonly end: number };
  readonly events: number;
  readonly withheld: number;
  readonly streams: number;
  /** Sizes of the checkpoints verified, ascending. */
  readonly checkpoints: readonly number[];
  /** The size of the checkpoint the leaves are proven in. */
  readonly coveredBy: number;
  /** The largest checkpoint's signed note: keep it, and check the next bundle or the live log against it. */
  readonly latestCheckpoint: string;
}

interface StreamHead { readonly seq: number; readonly hash: string; readonly index: number }

function hashAt(text: string, path: string): Buffer {
  const bytes = decodeBase64(text);
  if (bytes === undefined || bytes.length !== 32) throw new BundleError('bad-hash', `${path} is not the base64 of a 32-byte hash`, { path });
  return bytes;
}

function hashesAt(texts: readonly string[], path: string): Buffer[] {
  return texts.map((text, i) => hashAt(text, `${path}[${i}]`));
}

function trustOf(bundle: EvidenceBundle, trust: BundleTrust): { trust: CheckpointTrust; keysFrom: 'pinned' | 'bundle' } {
  if (trust.origin !== undefined && trust.origin !== bundle.origin) {
    throw new BundleError('origin-mismatch', `the bundle is of log ${JSON.stringify(bundle.origin)}, not of the trusted origin ${JSON.stringify(trust.origin)}`, { path: '$.origin' });
  }
  const keysFrom = trust.verifierKeys === undefined ? 'bundle' : 'pinned';
  const texts = trust.verifierKeys ?? bundle.verifierKeys;
  const verifiers: NoteVerifier[] = texts.map((text, i) => {
    try {
      return parseVerifierKey(text);
    } catch (error) {
      const path = keysFrom === 'bundle' ? `$.verifierKeys[${i}]` : `trusted key ${i + 1}`;
      throw new BundleError('bad-key', `${path} is not a note verifier key (${(error as Error).message})`, { path, cause: error });
    }
  });
  if (verifiers.length === 0) throw new BundleError('bad-key', keysFrom === 'bundle' ? 'the bundle names no verifier key' : 'no trusted verifier key was given', { path: '$.verifierKeys' });
  return { trust: { origin: trust.origin ?? bundle.origin, verifiers }, keysFrom };
}

/** Opens and chains the checkpoints (step 1). */
function verifyCheckpoints(bundle: EvidenceBundle, trust: CheckpointTrust): Checkpoint[] {
  if (bundle.checkpoints.length === 0) throw new BundleError('not-covered', 'the bundle holds no checkpoint: nothing ties its events to a signed tree', { path: '$.checkpoints' });
  const opened: Checkpoint[] = [];
  bundle.checkpoints.forEach(({ note, consistency }, i) => {
    const path = `$.checkpoints[${i}]`;
    const previous = opened[i - 1];
    try {
      const proof = hashesAt(consistency, `${path}.consistency`);
      if (previous === undefined && proof.length !== 0) throw new BundleError('malformed', `${path}.consistency must be empty: it is the first checkpoint`, { path });
      opened.push(previous === undefined ? openCheckpoint(note, trust).checkpoint : verifyCheckpointChain(previous, note, proof, trust).checkpoint);
    } catch (error) {
      if (!(error instanceof NoteError || error instanceof CheckpointError)) throw error;
      const size = /^[^\n]*\n(\d+)\n/.exec(note)?.[1];
      throw new BundleError('checkpoint', `checkpoint ${i + 1} of the bundle${size === undefined ? '' : ` (size ${size})`} is refused: ${error.reason}: ${error.message}`, { path, ...(size !== undefined && { checkpointSize: Number(size) }), cause: error });
    }
  });
  return opened;
}

/** The bundle against a checkpoint kept from before: same size, same root; the bundle not ending before it. */
function checkPrevious(previous: string, checkpoints: readonly Checkpoint[], trust: CheckpointTrust): void {
  let kept: Checkpoint;
  try {
    kept = openCheckpoint(previous, trust).checkpoint;
  } catch (error) {
    if (!(error instanceof NoteError || error instanceof CheckpointError)) throw error;
    throw new BundleError('checkpoint', `the checkpoint kept from before is refused: ${error.reason}: ${error.message}`, { cause: error });
  }
  const latest = checkpoints.at(-1) as Checkpoint;
  if (latest.size < kept.size) {
    throw new BundleError('checkpoint', `the bundle's checkpoints end at size ${latest.size}, smaller than the one kept from before (size ${kept.size}): size-regressed: the log was cut short, or is being shown as it was`, { checkpointSize: latest.size });
  }
  const same = checkpoints.find((checkpoint) => checkpoint.size === kept.size);
  if (same === undefined) {
    throw new BundleError('not-covered', `the bundle holds no checkpoint of size ${kept.size} (the one kept from before), so it cannot be shown to extend it: export a period that reaches it`, { checkpointSize: kept.size });
  }
  if (!same.root.equals(kept.root)) {
    throw new BundleError('checkpoint', `the bundle's checkpoint of size ${kept.size} has another root than the one kept from before: fork: the log was rewritten, or is shown differently to different people`, { checkpointSize: kept.size });
  }
}

function eventName(event: Readonly<Record<string, unknown>>, index: number): string {
  return `event ${String(event['id'])} (stream ${String(event['stream'])}, seq ${String(event['seq'])}) at leaf ${index}`;
}

/** Verifies a bundle's text; returns what was verified, or throws the first failure as a BundleError. */
export function verifyBundle(text: string, trusted: BundleTrust = {}): BundleReport {
  const bundle = parseBundle(text);
  const { trust, keysFrom } = trustOf(bundle, trusted);
  const checkpoints = verifyCheckpoints(bundle, trust);
  if (trusted.previous !== undefined) checkPrevious(trusted.previous, checkpoints, trust);
  const { start, end } = bundle.range;
  const edge = hashesAt(bundle.rightEdge, '$.rightEdge');
  if (edge.length !== popCount(start)) throw new BundleError('malformed', `$.rightEdge holds ${edge.length} hashes; leaves [0, ${start}) split into ${popCount(start)} complete subtrees`, { path: '$.rightEdge' });
  const range = CompactRange.fromSubtrees(start, edge);
  const bySize = new Map(checkpoints.map((checkpoint) => [checkpoint.size, checkpoint]));
  let checkedUpTo = start;
  const checkRoot = (): void => {
    const checkpoint = bySize.get(range.size);
    if (checkpoint === undefined) return;
    if (!range.root().equals(checkpoint.root)) {
      const where = range.size === start ? `the bundle's right edge of [0, ${start})` : `an event among leaves ${checkedUpTo}–${range.size - 1} was changed, removed, added or reordered${checkedUpTo === start ? ", or the bundle's right edge is wrong" : ''}`;
      throw new BundleError('root-mismatch', `the leaves up to ${range.size} do not give the root the checkpoint of size ${range.size} signed: ${where}`, { checkpointSize: range.size, leafIndex: checkedUpTo });
    }
    checkedUpTo = range.size;
  };
  checkRoot();

  const streams = new Map<string, StreamHead>();
  let events = 0;
  let lastWithheld = -1;
  bundle.leaves.forEach((leaf, i) => {
    const index = start + i;
    const path = `$.leaves[${i}]`;
    if ('event' in leaf) {
      const { event } = leaf;
      const { hash, stream, seq, prevHash, id } = event;
      if (typeof hash !== 'string' || typeof stream !== 'string' || typeof id !== 'string' || !Number.isSafeInteger(seq) || (prevHash !== null && typeof prevHash !== 'string')) {
        throw new BundleError('malformed', `${path}.event lacks the envelope of an event (id, stream, seq, prevHash, hash)`, { path, leafIndex: index });
      }
      const name = eventName(event, index);
      // One canonical form serves both: the chain hash (hex SHA-256) and the leaf (SHA-256(0x00 ‖ it)).
      const canonical = canonicalize(Object.fromEntries(Object.entries(event).filter(([key]) => key !== 'hash')));
      if (sha256Hex(canonical) !== hash) throw new BundleError('event-altered', `${name}: its hash does not match its content (the event was altered)`, { path, leafIndex: index, eventId: id });
      const previous = streams.get(stream);
      const n = seq as number;
      const broken = (why: string): BundleError => new BundleError('chain-broken', `${name}: ${why}`, { path, leafIndex: index, eventId: id });
      if (previous === undefined) {
        if (n === 1 && prevHash !== null) throw broken('it is seq 1 but its prevHash is not null');
      } else if (n === previous.seq + 1) {
        if (prevHash !== previous.hash) throw broken(`its prevHash is not the hash of seq ${previous.seq} at leaf ${previous.index}`);
      } else if (n <= previous.seq) {
        throw broken(`it comes after seq ${previous.seq} of its stream (leaf ${previous.index}): events were reordered or duplicated`);
      } else if (lastWithheld < previous.index) {
        throw broken(`it follows seq ${previous.seq} at leaf ${previous.index} and no leaf between them is withheld: seq ${previous.seq + 1}–${n - 1} missing`);
      }
      streams.set(stream, { seq: n, hash, index });
      events++;
      range.append(hashLeaf(Buffer.from(canonical, 'utf8')));
    } else {
      range.append(hashAt(leaf.leafHash, `${path}.leafHash`));
      lastWithheld = index;
    }
    checkRoot();
  });

  const covering = bySize.get(bundle.coverage.size);
  if (covering === undefined || covering.size < end) {
    throw new BundleError('not-covered', `$.coverage.size ${bundle.coverage.size} is not the size of a checkpoint of the bundle at or beyond leaf ${end}`, { path: '$.coverage' });
  }
  const proof = hashesAt(bundle.coverage.consistency, '$.coverage.consistency');
  if (end > 0 && covering.size > end) {
    try {
      verifyConsistency(end, covering.size, range.root(), covering.root, proof);
    } catch (error) {
      if (!(error instanceof ProofError)) throw error;
      throw new BundleError('not-covered', `the leaves [${start}, ${end}) are not proven in the checkpoint of size ${covering.size} (${error.reason}: ${error.message}): an event after leaf ${checkedUpTo - 1} was changed, removed, added or reordered, or the proof is wrong`, { checkpointSize: covering.size, leafIndex: checkedUpTo, cause: error });
    }
  } else if (proof.length !== 0) {
    throw new BundleError('malformed', '$.coverage.consistency must be empty when the covering checkpoint ends at the range', { path: '$.coverage.consistency' });
  }
  const latest = bundle.checkpoints.at(-1) as { note: string };
  return {
    origin: trust.origin,
    keysFrom,
    keys: trust.verifiers.map((verifier) => verifier.label),
    range: { start, end },
    events,
    withheld: end - start - events,
    streams: streams.size,
    checkpoints: checkpoints.map((checkpoint) => checkpoint.size),
    coveredBy: covering.size,
    latestCheckpoint: latest.note,
  };
}
