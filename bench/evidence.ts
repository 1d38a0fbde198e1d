/**
 * Cost of the evidence commands (issue 12; results in BENCHMARKS.md "Evidence proofs and
 * verification"). Not a test; every loop bounded in count, the large build by --max-seconds.
 *
 *   node --conditions=attest-source bench/evidence.ts [--events 100000] [--big 10000000] [--proofs 1000] [--max-seconds 300] [--dir /tmp/x] [--tree-only]
 *
 * 1. Tree maintenance per event: a real file log of --events sample events; CPU (process.cpuUsage,
 *    all threads) of reading it through the reader port alone, and of the evidence follower reading
 *    it and keeping the tree (leaf = SHA-256(0x00 ‖ canonical bytes), MerkleStore append, sync every
 *    1,024 leaves) — the difference per event is what the tree adds. Best of 3, a fresh store each.
 *    The follower runs twice per round: hashing the record's stored canonical bytes (leaf.ts
 *    storedLeafHash, what it does) and, with the stored text withheld, canonicalising each event
 *    again (leafHashOf, what it did before). --tree-only stops after this part.
 * 2. Proofs as `attest prove` makes them, through MerkleStoreReader (read-only open, proof,
 *    verification of the proof before it is printed) on stores of 1 M and --big leaves built from
 *    random leaf hashes: open time, then --proofs inclusion and consistency proofs at random
 *    indexes/sizes, one at a time: wall p50/p99/mean, nodes read per proof. Page cache warm.
 * 3. `attest prove --event ID`: findEventLeaf for the last event of the log (a read from the start).
 * 4. `attest export` of a period of 10 % of the log (checkpoints every 1,000 events) and
 *    `attest verify --bundle` of it (verifyBundle): wall time, bundle bytes.
 */
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EvidenceFollower, MerkleStore, MerkleStoreReader, exportBundle, findEventLeaf, generateNoteKey, leafHashOf, openFileLog, openFileLogReader, proveConsistency, proveInclusion, readCheckpointFiles, sampleDraft, signCheckpoint, storedLeafHash, verifyBundle } from '../eventlog/index.ts';
import type { EventLogReader, LogEntry } from '../eventlog/index.ts';
import type { EventDraft } from '../schemas/index.ts';
import { randomInt, seededRandom } from '../eventlog/merkle/spec-support.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    big: { type: 'string', default: '10000000' },
    proofs: { type: 'string', default: '1000' },
    'max-seconds': { type: 'string', default: '300' },
    dir: { type: 'string' },
    'tree-only': { type: 'boolean', default: false },
  },
});
const EVENTS = Number(values.events);
const BIG = Number(values.big);
const PROOFS = Number(values.proofs);
const MAX_SECONDS = Number(values['max-seconds']);
const BASE_TIME = Date.parse('2026-03-01T00:00:00.000Z');

const out = (line: string): void => { process.stdout.write(`${line}\n`); };
const cpuMicros = (since: NodeJS.CpuUsage): number => { const used = process.cpuUsage(since); return used.user + used.system; };
const seconds = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e9;
const fmt = (value: number, digits = 2): string => value.toFixed(digits);
const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;

function draft(i: number): EventDraft {
  return { ...sampleDraft(`bench-${i % 64}`, Math.floor(i / 64)), occurredAt: new Date(BASE_TIME + i * 10).toISOString() };
}

async function writeLog(dir: string): Promise<void> {
  const log = await openFileLog({ dir });
  for (let i = 0; i < EVENTS; i += 100) await log.append(Array.from({ length: Math.min(100, EVENTS - i) }, (_, k) => draft(i + k)));
  await log.close();
}

/** The reader with each entry's stored text withheld: the follower then canonicalises every event again, as it did before storedLeafHash. */
function withoutStoredText(reader: EventLogReader): EventLogReader {
  return {
    backend: reader.backend,
    read: (options) => reader.read(options),
    follow: (options) => reader.follow(options),
    size: () => reader.size(),
    close: () => reader.close(),
    async *entries(options) {
      for await (const entry of reader.entries(options)) {
        const { storedText: _text, ...rest } = entry as LogEntry & { storedText?: string };
        yield rest;
      }
    },
  };
}

/** What the per-event cost is made of: the leaf hash alone (canonical JSON + SHA-256, or the stored bytes + SHA-256) over events held in memory, and the follower without its periodic syncs. */
async function decomposition(base: string, logDir: string): Promise<void> {
  const reader = await openFileLogReader(logDir);
  const entries = [];
  for await (const entry of reader.entries()) entries.push(entry);
  await reader.close();
  let leaf = Infinity;
  let stored = Infinity;
  for (let run = 0; run < 3; run++) {
    let usage = process.cpuUsage();
    for (const entry of entries) leafHashOf(entry);
    leaf = Math.min(leaf, cpuMicros(usage) / entries.length);
    usage = process.cpuUsage();
    for (const entry of entries) storedLeafHash(entry);
    stored = Math.min(stored, cpuMicros(usage) / entries.length);
  }
  let unsynced = Infinity;
  for (let run = 0; run < 3; run++) {
    const followed = await openFileLogReader(logDir);
    const usage = process.cpuUsage();
    const follower = await EvidenceFollower.open(followed, join(base, `unsynced-${run}`), { syncEveryLeaves: Number.MAX_SAFE_INTEGER });
    await follower.run();
    await follower.close();
    unsynced = Math.min(unsynced, cpuMicros(usage) / follower.size);
    await followed.close();
    await rm(join(base, `unsynced-${run}`), { recursive: true });
  }
  out(`\nof which: leaf hash, events in memory: canonical JSON + SHA-256 (leafHashOf) ${fmt(leaf)} µs/event, stored bytes checked + SHA-256 (storedLeafHash) ${fmt(stored)} µs/event; the follower with one sync at the end instead of every 1,024 leaves ${fmt(unsynced)} µs/event (read included)`);
}

async function follow(reader: EventLogReader, treeDir: string): Promise<number> {
  const usage = process.cpuUsage();
  const follower = await EvidenceFollower.open(reader, treeDir);
  await follower.run();
  await follower.close();
  return cpuMicros(usage) / follower.size;
}

async function maintenance(base: string, logDir: string): Promise<string> {
  let readOnly = Infinity;
  let before = Infinity;
  let withTree = Infinity;
  for (let run = 0; run < 3; run++) {
    const reader = await openFileLogReader(logDir);
    const usage = process.cpuUsage();
    let n = 0;
    for await (const _ of reader.entries()) n++;
    readOnly = Math.min(readOnly, cpuMicros(usage) / n);
    await reader.close();
    const canonicalising = withoutStoredText(await openFileLogReader(logDir));
    before = Math.min(before, await follow(canonicalising, join(base, `before-${run}`)));
    await canonicalising.close();
    await rm(join(base, `before-${run}`), { recursive: true });
    const treeDir = join(base, `follower-${run}`);
    const followed = await openFileLogReader(logDir);
    withTree = Math.min(withTree, await follow(followed, treeDir));
    await followed.close();
    if (run < 2) await rm(treeDir, { recursive: true });
  }
  out(`| ${EVENTS.toLocaleString('en')} events | ${fmt(readOnly)} | ${fmt(before)} → ${fmt(withTree)} | **${fmt(before - readOnly)} → ${fmt(withTree - readOnly)}** |`);
  return join(base, 'follower-2');
}

async function buildStore(base: string, size: number): Promise<string> {
  const dir = await mkdtemp(join(base, `store-${size}-`));
  const store = await MerkleStore.open(dir, { flushLeaves: 8192 });
  const chunk = Buffer.allocUnsafe(32 * 65_536);
  const started = process.hrtime.bigint();
  while (store.size < size) {
    randomFillSync(chunk);
    const n = Math.min(65_536, size - store.size);
    for (let i = 0; i < n; i++) store.appendLeafHash(chunk.subarray(32 * i, 32 * i + 32));
    await store.flush();
    if (seconds(started) > MAX_SECONDS) throw new Error(`building ${size} leaves took over ${MAX_SECONDS} s; raise --max-seconds`);
  }
  await store.close();
  return dir;
}

async function proofTimes(dir: string, size: number): Promise<void> {
  const opened = process.hrtime.bigint();
  const tree = await MerkleStoreReader.open(dir);
  const openMs = seconds(opened) * 1e3;
  const random = seededRandom(size);
  for (const kind of ['inclusion', 'consistency'] as const) {
    const times: number[] = [];
    const before = tree.nodesRead;
    for (let i = 0; i < PROOFS; i++) {
      const started = process.hrtime.bigint();
      if (kind === 'inclusion') await proveInclusion(tree, randomInt(random, 0, size - 1));
      else await proveConsistency(tree, { size: randomInt(random, 1, size) });
      times.push(seconds(started) * 1e6);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    out(`| ${size.toLocaleString('en')} | ${kind} | ${fmt(openMs, 1)} | ${fmt(percentile(times, 50), 0)} | ${fmt(percentile(times, 99), 0)} | ${fmt(mean, 0)} | ${fmt((tree.nodesRead - before) / PROOFS, 1)} |`);
  }
  await tree.close();
}

async function exportAndVerify(logDir: string, treeDir: string): Promise<void> {
  const key = generateNoteKey('bench.example/attest');
  const trust = { origin: 'bench.example/attest', verifiers: [key.signer.verifier] };
  const tree = await MerkleStoreReader.open(treeDir);
  await mkdir(join(treeDir, 'checkpoints'), { recursive: true });
  for (let size = 1000; size <= tree.size; size += 1000) await writeFile(join(treeDir, 'checkpoints', `${size}.ckpt`), signCheckpoint({ origin: trust.origin, size, root: await tree.rootAt(size), extensions: [] }, key.signer));
  const reader = await openFileLogReader(logDir);
  const from = Math.floor(EVENTS * 0.45);
  const to = Math.floor(EVENTS * 0.55);
  let started = process.hrtime.bigint();
  let usage = process.cpuUsage();
  const bundle = await exportBundle({ reader, tree, checkpoints: await readCheckpointFiles(treeDir, trust), origin: trust.origin, verifierKeys: [key.verifierKey], from: new Date(BASE_TIME + from * 10).toISOString(), to: new Date(BASE_TIME + to * 10).toISOString() });
  const exportS = seconds(started);
  const exportCpu = cpuMicros(usage) / 1e6;
  const text = JSON.stringify(bundle);
  started = process.hrtime.bigint();
  usage = process.cpuUsage();
  const report = verifyBundle(text);
  const verifyS = seconds(started);
  const verifyCpu = cpuMicros(usage) / 1e6;
  out(`| ${report.events.toLocaleString('en')} events of ${EVENTS.toLocaleString('en')}, ${report.checkpoints.length} checkpoints | ${fmt(exportS)} (CPU ${fmt(exportCpu)}) | ${fmt(text.length / 1e6, 1)} | ${fmt(verifyS)} (CPU ${fmt(verifyCpu)}; ${fmt((verifyCpu * 1e6) / report.events, 1)} µs/event) |`);
  const lastId = String((bundle.leaves.at(-1) as { event: { id: string } }).event.id);
  started = process.hrtime.bigint();
  usage = process.cpuUsage();
  const index = await findEventLeaf(reader, lastId);
  const findS = seconds(started);
  out(`\nfindEventLeaf for leaf ${index.toLocaleString('en')}: ${fmt(findS)} s wall, ${fmt(cpuMicros(usage) / (index + 1))} µs CPU per event read`);
  await reader.close();
  await tree.close();
}

const base = values.dir ?? (await mkdtemp(join(tmpdir(), 'attest-bench-evidence-')));
try {
  out(`Node ${process.version}; load average at start ${(await import('node:os')).loadavg().map((l) => fmt(l)).join(' ')}\n`);
  const logDir = join(base, 'log');
  await writeLog(logDir);
  out('| log | CPU µs/event, read only | with the tree, canonicalising → stored bytes | tree maintenance, canonicalising → stored bytes |\n|---|---|---|---|');
  const treeDir = await maintenance(base, logDir);
  await decomposition(base, logDir);
  if (!values['tree-only']) {
    out('\n| leaves | proof | open ms | p50 µs | p99 µs | mean µs | nodes read |\n|---|---|---|---|---|---|---|');
    for (const size of [1_000_000, BIG]) {
      const dir = await buildStore(base, size);
      await proofTimes(dir, size);
      await rm(dir, { recursive: true });
    }
    out('\n| export | export s | bundle MB | verifyBundle s |\n|---|---|---|---|');
    await exportAndVerify(logDir, treeDir);
  }
} finally {
  if (values.dir === undefined) await rm(base, { recursive: true, force: true });
}
