/**
 * Cost of the Merkle tree (eventlog/merkle): CPU per appended leaf, proof generation from the file
 * store at 1 M and 10 M leaves, bytes on disk per leaf. Not a test; bounded by --max-seconds for
 * the large build. Results go to BENCHMARKS.md ("Merkle tree").
 *
 *   node --conditions=attest-source bench/merkle.ts [--leaves 200000] [--big 10000000] [--proofs 2000] [--max-seconds 600] [--dir /tmp/x] [--keep]
 *
 * 1. Per leaf (600-byte leaves, like a sealed event): hashLeaf + CompactRange alone, then
 *    MerkleStore.append with its background writes (1024 leaves a batch) and a final flush, then the
 *    same with sync() every 1024 leaves. CPU = process.cpuUsage() (user + system, all threads, so
 *    the libuv writes count) over the run / leaves; best of 3 runs, each on a fresh store.
 * 2. Stores of 1 M and --big leaves built from synthetic leaf hashes (random bytes, appendLeafHash),
 *    timed; then --proofs inclusion and consistency proofs for random indexes and sizes, one at a
 *    time (await each), at the full size and at a past size: wall time per proof (p50, p99, mean),
 *    CPU per proof, stored nodes read per proof. The page cache is warm (the store was just written);
 *    a cold read costs one disk seek per node on top.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CompactRange, MerkleStore, hashLeaf, verifyConsistency, verifyInclusion } from '../eventlog/merkle/index.ts';
import { planConsistency, planInclusion } from '../eventlog/merkle/proof-plan.ts';
import { randomInt, seededRandom } from '../eventlog/merkle/spec-support.ts';

const { values } = parseArgs({
  options: {
    leaves: { type: 'string', default: '200000' },
    big: { type: 'string', default: '10000000' },
    proofs: { type: 'string', default: '2000' },
    'max-seconds': { type: 'string', default: '600' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const LEAVES = Number(values.leaves);
const BIG = Number(values.big);
const PROOFS = Number(values.proofs);
const MAX_SECONDS = Number(values['max-seconds']);
const LEAF_BYTES = 600;

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const cpuMicros = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return used.user + used.system;
};
const fmt = (value: number, digits = 2): string => value.toFixed(digits);

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

// 4096 distinct 600-byte leaves, cycled: hashing cost does not depend on the content.
const pool = Array.from({ length: 4096 }, () => randomBytes(LEAF_BYTES));

async function perLeaf(base: string): Promise<void> {
  out(`\n### Per appended leaf (${LEAF_BYTES}-byte leaves, ${LEAVES.toLocaleString('en')} leaves, best of 3)\n`);
  out('| path | CPU µs / leaf | wall µs / leaf |');
  out('|---|---:|---:|');
  const best = async (run: () => Promise<void>): Promise<[number, number]> => {
    let cpu = Infinity;
    let wall = Infinity;
    for (let round = 0; round < 3; round++) {
      const started = process.hrtime.bigint();
      const usage = process.cpuUsage();
      await run();
      cpu = Math.min(cpu, cpuMicros(usage) / LEAVES);
      wall = Math.min(wall, Number(process.hrtime.bigint() - started) / 1000 / LEAVES);
    }
    return [cpu, wall];
  };
  const [rangeCpu, rangeWall] = await best(async () => {
    const range = new CompactRange();
    for (let i = 0; i < LEAVES; i++) range.append(hashLeaf(pool[i % pool.length] as Buffer));
    range.root();
  });
  out(`| hashLeaf + CompactRange (memory only) | ${fmt(rangeCpu)} | ${fmt(rangeWall)} |`);
  for (const [label, syncEvery] of [['MerkleStore.append, background writes, final flush', 0], ['MerkleStore.append + sync() every 1024 leaves', 1024]] as const) {
    const [cpu, wall] = await best(async () => {
      const dir = await mkdtemp(join(base, 'leaf-'));
      const store = await MerkleStore.open(dir);
      for (let i = 0; i < LEAVES; i++) {
        store.append(pool[i % pool.length] as Buffer);
        if (syncEvery > 0 && i % syncEvery === syncEvery - 1) await store.sync();
      }
      await store.flush();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    out(`| ${label} | ${fmt(cpu)} | ${fmt(wall)} |`);
  }
}

interface Built {
  readonly store: MerkleStore;
  readonly dir: string;
  readonly seconds: number;
}

async function build(base: string, size: number): Promise<Built> {
  const dir = await mkdtemp(join(base, `store-${size}-`));
  const store = await MerkleStore.open(dir, { flushLeaves: 8192 });
  const chunk = Buffer.allocUnsafe(32 * 65_536);
  const started = process.hrtime.bigint();
  const usage = process.cpuUsage();
  while (store.size < size) {
    randomFillSync(chunk);
    const n = Math.min(65_536, size - store.size);
    for (let i = 0; i < n; i++) store.appendLeafHash(chunk.subarray(32 * i, 32 * i + 32));
    // Bounded memory: wait for the background write before hashing the next chunk.
    await store.flush();
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    if (elapsed > MAX_SECONDS) throw new Error(`building the ${size.toLocaleString('en')}-leaf store took over ${MAX_SECONDS} s (at ${store.size.toLocaleString('en')} leaves); raise --max-seconds`);
  }
  await store.sync();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = await directoryBytes(dir);
  out(`| ${size.toLocaleString('en')} | ${fmt(seconds, 1)} | ${fmt(cpuMicros(usage) / size)} | ${fmt(bytes / 1e6, 1)} | ${fmt(bytes / (size / 1e6) / 1e6, 2)} |`);
  return { store, dir, seconds };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function proofs(store: MerkleStore, n: number, label: string): Promise<void> {
  const random = seededRandom(n);
  const root = await store.rootAt(n);
  for (const kind of ['inclusion', 'consistency'] as const) {
    const times: number[] = [];
    let nodes = 0;
    let hashes = 0;
    const usage = process.cpuUsage();
    const started = process.hrtime.bigint();
    for (let k = 0; k < PROOFS; k++) {
      const t = process.hrtime.bigint();
      if (kind === 'inclusion') {
        const i = randomInt(random, 0, n - 1);
        const proof = await store.inclusionProof(i, n);
        times.push(Number(process.hrtime.bigint() - t) / 1000);
        nodes += planInclusion(i, n, n).nodes.length;
        hashes += proof.length;
        if (k < 20) verifyInclusion(await store.leafHash(i), i, n, proof, root);
      } else {
        const m = randomInt(random, 1, n - 1);
        const proof = await store.consistencyProof(m, n);
        times.push(Number(process.hrtime.bigint() - t) / 1000);
        nodes += planConsistency(m, n, n).nodes.length;
        hashes += proof.length;
        if (k < 20) verifyConsistency(m, n, await store.rootAt(m), root, proof);
      }
    }
    const wall = Number(process.hrtime.bigint() - started) / 1000 / PROOFS;
    const cpu = cpuMicros(usage) / PROOFS;
    times.sort((a, b) => a - b);
    out(`| ${label} | ${kind} | ${fmt(hashes / PROOFS, 1)} | ${fmt(nodes / PROOFS, 1)} | ${fmt(percentile(times, 50), 0)} | ${fmt(percentile(times, 99), 0)} | ${fmt(wall, 0)} | ${fmt(cpu, 0)} |`);
  }
}

async function verifyCost(store: MerkleStore, n: number): Promise<void> {
  const random = seededRandom(7);
  const cases = await Promise.all(
    Array.from({ length: 200 }, async () => {
      const i = randomInt(random, 0, n - 1);
      return { i, leaf: await store.leafHash(i), proof: await store.inclusionProof(i, n) };
    }),
  );
  const root = await store.rootAt(n);
  const usage = process.cpuUsage();
  const rounds = 20;
  for (let r = 0; r < rounds; r++) for (const { i, leaf, proof } of cases) verifyInclusion(leaf, i, n, proof, root);
  out(`\nverifyInclusion at ${n.toLocaleString('en')} leaves: ${fmt(cpuMicros(usage) / (rounds * cases.length), 1)} µs CPU per proof (${cases[0]?.proof.length} hashes).`);
}

const base = values.dir ?? (await mkdtemp(join(tmpdir(), 'attest-bench-merkle-')));
out(`# Merkle tree benchmark (${new Date().toISOString()}, node ${process.version})`);
try {
  await perLeaf(base);
  out('\n### Stores built from synthetic leaf hashes (appendLeafHash, 8192-leaf batches, sync at the end)\n');
  out('| leaves | build s | CPU µs / leaf | on disk MB | MB per million leaves |');
  out('|---:|---:|---:|---:|---:|');
  const million = await build(base, 1_000_000);
  const big = BIG > 1_000_000 ? await build(base, BIG) : undefined;
  out(`\n### Proofs from the store (${PROOFS.toLocaleString('en')} each, sequential, warm page cache)\n`);
  out('| tree | proof | hashes / proof | nodes read / proof | p50 µs | p99 µs | mean wall µs | CPU µs / proof |');
  out('|---|---|---:|---:|---:|---:|---:|---:|');
  await proofs(million.store, 1_000_000, '1 M store, size 1 M');
  if (big !== undefined) {
    await proofs(big.store, BIG, `${BIG / 1e6} M store, size ${BIG / 1e6} M`);
    await proofs(big.store, Math.floor(BIG / 2) + 12_345, `${BIG / 1e6} M store, past size ${(Math.floor(BIG / 2) + 12_345).toLocaleString('en')}`);
    await verifyCost(big.store, BIG);
  }
  await million.store.close();
  await big?.store.close();
} finally {
  if (values.keep !== true) await rm(base, { recursive: true, force: true });
  else out(`\nstores kept in ${base}`);
}
