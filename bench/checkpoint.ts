/**
 * Cost of one signed checkpoint as the gateway's checkpointer makes it (gateway/evidence/
 * checkpointer.ts), phase by phase, on a store of --leaves leaves. Not a test. Results go to
 * BENCHMARKS.md ("Checkpoints").
 *
 *   node --conditions=attest-source bench/checkpoint.ts [--leaves 1000000] [--every 1000] [--rounds 200] [--dir /tmp/x]
 *
 * A MerkleStore of --leaves synthetic leaf hashes is built and synced. Then --rounds times:
 * append --every leaf hashes (the default checkpointEveryEvents; not timed), then time
 *   sync     MerkleStore.sync(): write the pending nodes, fdatasync each level, HEAD (fsync, rename, dir fsync)
 *   sign     signCheckpoint (Ed25519 over the note text), CPU
 *   publish  publishCheckpoint: <size>.ckpt and checkpoint, each temp + fdatasync + rename + dir fsync
 *   record   a CheckpointSigned event appended alone to a real file log (its own group commit, fsync)
 * Wall time per phase (p50, p99, mean) and CPU (process.cpuUsage, user + system) per checkpoint.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateNoteKey, MerkleStore, openFileLog, signCheckpoint } from '#eventlog';
import { SYSTEM_PRINCIPAL } from '#schemas';
import { draft } from '../gateway/recorder.ts';
import { publishCheckpoint } from '../gateway/evidence/checkpoint-files.ts';

const { values } = parseArgs({
  options: {
    leaves: { type: 'string', default: '1000000' },
    every: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '200' },
    dir: { type: 'string' },
  },
});
const LEAVES = Number(values.leaves);
const EVERY = Number(values.every);
const ROUNDS = Number(values.rounds);

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const fmt = (value: number, digits = 2): string => value.toFixed(digits);

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'attest-bench-ckpt-')));
try {
  const store = await MerkleStore.open(join(dir, 'merkle'), { reset: true });
  const batch = Array.from({ length: 8192 }, () => randomBytes(32));
  for (let i = 0; i < LEAVES; i++) {
    store.appendLeafHash(batch[i % batch.length] as Buffer);
    if (i % 8192 === 8191) await store.flush();
  }
  await store.sync();
  const log = await openFileLog({ dir: join(dir, 'log') });
  const key = generateNoteKey('bench.example/attest');
  const context = { tenant: SYSTEM_PRINCIPAL.tenant, stream: 'system-bench', actor: SYSTEM_PRINCIPAL };
  const key8 = key.signer.keyId.toString(16).padStart(8, '0');
  const phases = { sync: [] as number[], sign: [] as number[], publish: [] as number[], record: [] as number[], total: [] as number[] };
  const signCpu: number[] = [];
  let cpuTotal = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < EVERY; i++) store.appendLeafHash(batch[(round * EVERY + i) % batch.length] as Buffer);
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const size = store.size;
    const root = store.root();
    await store.sync();
    const t1 = performance.now();
    const signedAt = new Date().toISOString();
    const signStart = process.cpuUsage();
    const note = signCheckpoint({ origin: 'bench.example/attest', size, root, extensions: [`time ${signedAt}`] }, key.signer);
    const signUsed = process.cpuUsage(signStart);
    const t2 = performance.now();
    await publishCheckpoint(join(dir, 'evidence'), size, note);
    const t3 = performance.now();
    await log.append([draft(context, 'CheckpointSigned', { instance: 'bench', origin: 'bench.example/attest', treeSize: size, rootHash: root.toString('hex'), signedAt, signers: [{ name: key.signer.name, keyId: key8, verifierKey: key.verifierKey }], note })]);
    const t4 = performance.now();
    const used = process.cpuUsage(cpu);
    cpuTotal += used.user + used.system;
    signCpu.push(signUsed.user + signUsed.system);
    phases.sync.push(t1 - t0);
    phases.sign.push(t2 - t1);
    phases.publish.push(t3 - t2);
    phases.record.push(t4 - t3);
    phases.total.push(t4 - t0);
  }
  await log.close();
  await store.close();
  out(`checkpoint cost: store of ${LEAVES} leaves, a checkpoint every ${EVERY} appended leaves, ${ROUNDS} rounds, Node ${process.version}, dir ${dir}`);
  out('| phase | p50 ms | p99 ms | mean ms |');
  out('|---|---:|---:|---:|');
  for (const [name, samples] of Object.entries(phases)) {
    const sorted = [...samples].sort((a, b) => a - b);
    out(`| ${name} | ${fmt(quantile(sorted, 0.5), 3)} | ${fmt(quantile(sorted, 0.99), 3)} | ${fmt(samples.reduce((a, b) => a + b, 0) / samples.length, 3)} |`);
  }
  const signSorted = [...signCpu].sort((a, b) => a - b);
  out(`sign CPU per checkpoint: p50 ${fmt(quantile(signSorted, 0.5), 1)} µs; CPU of a whole checkpoint (all phases, all threads): mean ${fmt(cpuTotal / ROUNDS / 1000, 3)} ms`);
} finally {
  if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
}
