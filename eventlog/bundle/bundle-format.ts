/**
 * The evidence bundle, version 1 (docs/evidence.md "Bundle format"): one JSON document an auditor
 * re-checks offline with nothing else — the events of a period (or only the leaf hashes of those
 * kept out), the signed checkpoints that cover them, the proofs that tie them together, the log's
 * origin and its verifier keys.
 *
 *   format        "attest-evidence-bundle/v1"
 *   hashEncoding  "base64": every hash is the standard base64 of its 32 bytes
 *   origin        the log's checkpoint origin line
 *   verifierKeys  note verifier keys (`<name>+<key id>+<base64>`) the checkpoints are signed with
 *   period        { from, to }: the ISO-8601 times asked for (events with from ≤ occurredAt < to)
 *   tenant        present when the bundle is scoped to one tenant
 *   range         { start, end }: the leaves [start, end) of the tree the bundle holds, contiguous
 *   leaves        end − start entries, leaf start + i first: { event } (the record as written,
 *                 `hash` included) or { leafHash, withheld } for a leaf kept out (withheld says why)
 *   rightEdge     the complete subtrees of leaves [0, start), left to right (one per set bit of
 *                 start): with the leaves they give the root of size `end` (a range proof)
 *   checkpoints   signed checkpoints (note text), ascending by size, each with `consistency`, the
 *                 RFC 9162 proof from the previous one in the list (empty for the first)
 *   coverage      { size, consistency }: the proof from size `end` to `size`, the size of a listed
 *                 checkpoint ≥ end — it ties the leaves to a signed root
 *
 * Parsing (here) checks the shape only, naming the JSON path of the first thing wrong; the
 * verifier (verify-bundle.ts) checks signatures, proofs and hashes.
 */
import { BundleError } from './bundle-error.ts';

export const BUNDLE_FORMAT = 'attest-evidence-bundle/v1';

export type BundleLeaf =
  | { readonly event: Readonly<Record<string, unknown>> }
  | { readonly leafHash: string; readonly withheld: string };

export interface BundleCheckpoint {
  /** The signed note text. */
  readonly note: string;
  /** Base64 hashes: the consistency proof from the previous checkpoint of the list. */
  readonly consistency: readonly string[];
}

export interface EvidenceBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly hashEncoding: 'base64';
  readonly origin: string;
  readonly verifierKeys: readonly string[];
  readonly period: { readonly from: string; readonly to: string };
  readonly tenant?: string;
  readonly range: { readonly start: number; readonly end: number };
  readonly leaves: readonly BundleLeaf[];
  readonly rightEdge: readonly string[];
  readonly checkpoints: readonly BundleCheckpoint[];
  readonly coverage: { readonly size: number; readonly consistency: readonly string[] };
}

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(path: string, what: string): BundleError {
  return new BundleError('malformed', `${path} ${what}`, { path });
}

function field(object: Json, key: string, path: string): unknown {
  if (!(key in object)) throw malformed(`${path}.${key}`, 'is missing');
  return object[key];
}

function string(object: Json, key: string, path: string): string {
  const value = field(object, key, path);
  if (typeof value !== 'string' || value.length === 0) throw malformed(`${path}.${key}`, 'must be a non-empty string');
  return value;
}

function count(object: Json, key: string, path: string): number {
  const value = field(object, key, path);
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw malformed(`${path}.${key}`, 'must be a non-negative integer');
  return value as number;
}

function strings(value: unknown, path: string): string[] {
  if (!Array.isArray(value)) throw malformed(path, 'must be an array of strings');
  value.forEach((item, i) => { if (typeof item !== 'string') throw malformed(`${path}[${i}]`, 'must be a string'); });
  return value as string[];
}

function object(value: unknown, path: string): Json {
  if (!isObject(value)) throw malformed(path, 'must be an object');
  return value;
}

const KNOWN_KEYS = new Set(['format', 'hashEncoding', 'origin', 'verifierKeys', 'period', 'tenant', 'range', 'leaves', 'rightEdge', 'checkpoints', 'coverage']);

/** Parses a bundle's text: JSON, then its shape (not its proofs). Throws BundleError ('not-json', 'unsupported-format', 'malformed'). */
export function parseBundle(text: string): EvidenceBundle {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new BundleError('not-json', `the bundle is not complete JSON (${(error as Error).message}): it was truncated or corrupted`, { cause: error });
  }
  const root = object(parsed, '$');
  const format = field(root, 'format', '$');
  if (format !== BUNDLE_FORMAT) throw new BundleError('unsupported-format', `the bundle's format is ${JSON.stringify(format)}, this verifier reads ${JSON.stringify(BUNDLE_FORMAT)}`, { path: '$.format' });
  for (const key of Object.keys(root)) if (!KNOWN_KEYS.has(key)) throw malformed(`$.${key}`, 'is not a field of the bundle format');
  if (field(root, 'hashEncoding', '$') !== 'base64') throw malformed('$.hashEncoding', 'must be "base64"');
  const period = object(field(root, 'period', '$'), '$.period');
  const range = object(field(root, 'range', '$'), '$.range');
  const start = count(range, 'start', '$.range');
  const end = count(range, 'end', '$.range');
  if (end < start) throw malformed('$.range', `ends (${end}) before it starts (${start})`);
  const leavesValue = field(root, 'leaves', '$');
  if (!Array.isArray(leavesValue)) throw malformed('$.leaves', 'must be an array');
  if (leavesValue.length !== end - start) throw malformed('$.leaves', `holds ${leavesValue.length} entries, the range [${start}, ${end}) has ${end - start}: the bundle was cut or padded`);
  const leaves = leavesValue.map((value, i): BundleLeaf => {
    const path = `$.leaves[${i}]`;
    const leaf = object(value, path);
    if ('event' in leaf) return { event: object(leaf['event'], `${path}.event`) };
    return { leafHash: string(leaf, 'leafHash', path), withheld: string(leaf, 'withheld', path) };
  });
  const checkpointsValue = field(root, 'checkpoints', '$');
  if (!Array.isArray(checkpointsValue)) throw malformed('$.checkpoints', 'must be an array');
  const checkpoints = checkpointsValue.map((value, i): BundleCheckpoint => {
    const path = `$.checkpoints[${i}]`;
    const checkpoint = object(value, path);
    return { note: string(checkpoint, 'note', path), consistency: strings(field(checkpoint, 'consistency', path), `${path}.consistency`) };
  });
  const coverage = object(field(root, 'coverage', '$'), '$.coverage');
  const tenant = root['tenant'];
  if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length === 0)) throw malformed('$.tenant', 'must be a non-empty string when present');
  return {
    format: BUNDLE_FORMAT,
    hashEncoding: 'base64',
    origin: string(root, 'origin', '$'),
    verifierKeys: strings(field(root, 'verifierKeys', '$'), '$.verifierKeys'),
    period: { from: string(period, 'from', '$.period'), to: string(period, 'to', '$.period') },
    ...(tenant !== undefined && { tenant }),
    range: { start, end },
    leaves,
    rightEdge: strings(field(root, 'rightEdge', '$'), '$.rightEdge'),
    checkpoints,
    coverage: { size: count(coverage, 'size', '$.coverage'), consistency: strings(field(coverage, 'consistency', '$.coverage'), '$.coverage.consistency') },
  };
}
