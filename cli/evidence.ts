/**
 * The evidence commands (docs/evidence.md): `attest prove`, `attest export`, and the two evidence
 * modes of `attest verify` — `--bundle FILE` (offline: no config, no network) and `--checkpoint
 * FILE` (the live log and tree against a checkpoint kept from before). Every read of the tree goes
 * through MerkleStoreReader: no lock, nothing written, so they run beside a gateway that writes it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { AttestConfig } from '#schemas';
import { MerkleStoreReader, exportBundle, findEventLeaf, openEventLogReader, parseVerifierKey, proveConsistency, proveInclusion, readCheckpointFile, readCheckpointFiles, verifyBundle, verifyEvidence } from '#eventlog';
import type { BundleTrust, CheckpointTrust, EvidenceVerifyResult, ProofTarget } from '#eventlog';
import { loadCheckpointKeys } from '#gateway';

export class EvidenceUsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;

/** Trust options: the log's origin and its verifier keys, given out of band (repeat --key for old keys). */
export const TRUST_OPTIONS = { origin: { type: 'string' }, key: { type: 'string', multiple: true } } as const satisfies NonNullable<ParseArgsConfig['options']>;

function text(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function keys(values: Values): string[] | undefined {
  const value = values['key'];
  return Array.isArray(value) && value.length > 0 ? value : undefined;
}

/** parseConfig resolves it (default `<state.dir>/merkle`). */
function evidenceDir(config: AttestConfig): string {
  return config.evidence.dir ?? join(config.state.dir ?? '', 'merkle');
}

/**
 * The checkpoints' trust: --origin and --key when given (an auditor's own copy of them), else what
 * the config implies (evidence.origin, the signing key's verifier and evidence.previousVerifierKeys:
 * gateway/evidence/checkpoint-keys.ts; the signer key is read, never printed).
 */
async function configTrust(config: AttestConfig, values: Values): Promise<CheckpointTrust> {
  const origin = text(values, 'origin');
  const verifierKeys = keys(values);
  if (origin !== undefined && verifierKeys !== undefined) return { origin, verifiers: verifierKeys.map((key) => parseVerifierKey(key)) };
  const { trust } = await loadCheckpointKeys(config);
  return { origin: origin ?? trust.origin, verifiers: verifierKeys?.map((key) => parseVerifierKey(key)) ?? trust.verifiers };
}

function integer(value: string, name: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(value) || !Number.isSafeInteger(Number(value))) throw new EvidenceUsageError(`${name} must be a tree size or leaf index (a non-negative integer), or a checkpoint file; got ${JSON.stringify(value)}`);
  return Number(value);
}

/** A size (digits) or a checkpoint file (anything else), opened with the trust. */
async function target(value: string, name: string, trust: () => Promise<CheckpointTrust>): Promise<ProofTarget> {
  if (/^[0-9]+$/.test(value)) return { size: integer(value, name) };
  const stored = await readCheckpointFile(value, await trust());
  return { checkpoint: stored.checkpoint, note: stored.note };
}

async function withLogAndTree<T>(config: AttestConfig, task: (tree: MerkleStoreReader, openReader: () => ReturnType<typeof openEventLogReader>) => Promise<T>): Promise<T> {
  const tree = await MerkleStoreReader.open(evidenceDir(config));
  const readers: { close(): Promise<void> }[] = [];
  try {
    return await task(tree, async () => {
      const reader = await openEventLogReader(config.log);
      readers.push(reader);
      return reader;
    });
  } finally {
    for (const reader of readers) await reader.close();
    await tree.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const PROVE_USAGE = [
  'attest prove inclusion --config FILE (--index N | --event ID) [--size M | --checkpoint FILE] [--origin O --key K]',
  '       attest prove consistency --config FILE --from SIZE|CHECKPOINT_FILE [--to SIZE|CHECKPOINT_FILE] [--origin O --key K]',
  '  JSON on stdout; hashes are standard base64 (hashEncoding). Without --size/--to: the tree as last synced.',
  '  --event reads the log from the start up to the event (receipts carry the leaf index: --index is O(log n)).',
  '  A checkpoint file is verified first: by --origin and --key when given, else by the config\'s evidence keys.',
].join('\n');

export const PROVE_OPTIONS = { config: { type: 'string', short: 'c' }, index: { type: 'string' }, event: { type: 'string' }, size: { type: 'string' }, checkpoint: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, ...TRUST_OPTIONS } as const;

export async function runProve(config: AttestConfig, values: Values, action: string | undefined): Promise<number> {
  const trust = (): Promise<CheckpointTrust> => configTrust(config, values);
  if (action === 'inclusion') {
    const index = text(values, 'index');
    const event = text(values, 'event');
    if ((index === undefined) === (event === undefined)) throw new EvidenceUsageError('inclusion needs exactly one of --index N and --event ID');
    const size = text(values, 'size');
    const checkpoint = text(values, 'checkpoint');
    if (size !== undefined && checkpoint !== undefined) throw new EvidenceUsageError('give --size or --checkpoint, not both');
    const against = size !== undefined ? await target(size, '--size', trust) : checkpoint === undefined ? undefined : await target(checkpoint, '--checkpoint', trust);
    const proof = await withLogAndTree(config, async (tree, openReader) => {
      const leaf = index !== undefined ? integer(index, '--index') : await findEventLeaf(await openReader(), event as string);
      return proveInclusion(tree, leaf, against, event);
    });
    print(proof);
    return 0;
  }
  if (action === 'consistency') {
    const from = text(values, 'from');
    if (from === undefined) throw new EvidenceUsageError('consistency needs --from SIZE|CHECKPOINT_FILE');
    const to = text(values, 'to');
    const older = await target(from, '--from', trust);
    const newer = to === undefined ? undefined : await target(to, '--to', trust);
    print(await withLogAndTree(config, (tree) => proveConsistency(tree, older, newer)));
    return 0;
  }
  throw new EvidenceUsageError('prove needs a kind: inclusion | consistency');
}

export const EXPORT_USAGE = [
  'attest export --config FILE --from TIME --to TIME [--tenant T] --out FILE [--origin O --key K]',
  '  Writes the evidence bundle of events with FROM ≤ occurredAt < TO (ISO-8601): the events (other tenants\' as leaf',
  '  hashes with --tenant), the signed checkpoints covering them, the proofs, the origin and verifier keys (docs/evidence.md).',
  '  Refuses a period the latest checkpoint does not cover yet, and an existing --out file. Reads the log from the start.',
].join('\n');

export const EXPORT_OPTIONS = { config: { type: 'string', short: 'c' }, from: { type: 'string' }, to: { type: 'string' }, tenant: { type: 'string' }, out: { type: 'string', short: 'o' }, ...TRUST_OPTIONS } as const;

export async function runExport(config: AttestConfig, values: Values): Promise<number> {
  const from = text(values, 'from');
  const to = text(values, 'to');
  const out = text(values, 'out');
  if (from === undefined || to === undefined || out === undefined) throw new EvidenceUsageError('export needs --from TIME, --to TIME and --out FILE');
  const trust = await configTrust(config, values);
  const tenant = text(values, 'tenant');
  const bundle = await withLogAndTree(config, async (tree, openReader) => exportBundle({
    reader: await openReader(),
    tree,
    checkpoints: await readCheckpointFiles(evidenceDir(config), trust),
    origin: trust.origin,
    verifierKeys: trust.verifiers.map((verifier) => verifier.key),
    from,
    to,
    ...(tenant !== undefined && { tenant }),
  }));
  await writeFile(out, `${JSON.stringify(bundle)}\n`, { flag: 'wx' });
  const withheld = bundle.leaves.filter((leaf) => 'withheld' in leaf).length;
  process.stdout.write(`wrote ${out}: leaves ${bundle.range.start}–${bundle.range.end - 1} (${bundle.leaves.length - withheld} events, ${withheld} withheld), ${bundle.checkpoints.length} checkpoints, covered by the checkpoint of size ${bundle.coverage.size}\n`);
  return 0;
}

async function readInput(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new EvidenceUsageError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

/** `attest verify --bundle FILE [--checkpoint KEPT]`: offline, nothing but the bundle (and, when given, the trusted origin, keys and kept checkpoint). */
export async function runVerifyBundle(file: string, values: Values): Promise<number> {
  const origin = text(values, 'origin');
  const verifierKeys = keys(values);
  const previousFile = text(values, 'checkpoint');
  const previous = previousFile === undefined ? undefined : await readInput(previousFile, 'the checkpoint');
  const trust: BundleTrust = { ...(origin !== undefined && { origin }), ...(verifierKeys !== undefined && { verifierKeys }), ...(previous !== undefined && { previous }) };
  const bundleText = await readInput(file, 'the bundle');
  try {
    const report = verifyBundle(bundleText, trust);
    if (values['json'] === true) print({ ok: true, ...report });
    else {
      process.stdout.write(`ok: ${file}: leaves ${report.range.start}–${report.range.end - 1} of ${report.origin} (${report.events} events in ${report.streams} streams, ${report.withheld} withheld), proven in the checkpoint of size ${report.coveredBy}; checkpoints ${report.checkpoints.join(', ')} verified\n`);
      process.stdout.write(report.keysFrom === 'pinned' ? `  signed by a trusted key: ${report.keys.join(', ')}\n` : `  trusted: the keys the bundle names (${report.keys.join(', ')}): compare them with the verifier key the log's operator published, or pass --origin and --key\n`);
    }
    return 0;
  } catch (error) {
    const { reason, where } = error as { reason?: string; where?: object };
    if (reason === undefined) throw error;
    if (values['json'] === true) print({ ok: false, reason, where, message: (error as Error).message });
    else process.stdout.write(`FAILED: ${file}: ${(error as Error).message}\n`);
    return 1;
  }
}

function describeResult(result: EvidenceVerifyResult): string {
  if (result.ok) return `ok: ${result.logSize} events, tree of ${result.treeSize} leaves agrees with the log; checkpoints ${result.checkpoints.join(', ') || '(none)'} match it and chain\n`;
  const f = result.firstFailure;
  const lines = [`FAILED: ${f?.reason ?? 'unknown failure'}`];
  if (f !== undefined) lines.push(`  at leaf ${f.index}${f.end === undefined ? '' : `–${f.end - 1}`}${f.eventId === undefined ? '' : `, event ${f.eventId}`}${f.checkpointFile === undefined ? '' : `, checkpoint ${f.checkpointFile}`}`);
  for (const other of result.failures.slice(1, 6)) lines.push(`  also: ${other.reason}`);
  return `${lines.join('\n')}\n`;
}

/** `attest verify --config FILE [--checkpoint FILE]`: chains, the tree against the log, every checkpoint, and the one kept from before. */
export async function runVerifyCheckpoint(config: AttestConfig, file: string | undefined, values: Values): Promise<number> {
  const trust = await configTrust(config, values);
  const earlier = file === undefined ? undefined : await readCheckpointFile(file, trust);
  const result = await withLogAndTree(config, async (tree, openReader) => verifyEvidence({ reader: await openReader(), tree, checkpoints: await readCheckpointFiles(evidenceDir(config), trust), ...(earlier !== undefined && { earlier }), trust }));
  if (values['json'] === true) print(result);
  else process.stdout.write(describeResult(result));
  return result.ok ? 0 : 1;
}
