/**
 * Signed checkpoints from real `attest start` processes on a real file log: emitted by count, by
 * time (and not while only checkpoint events arrive), a last one at a clean stop; every file opens
 * against the log's trust and commits to the root of the log's first `size` events, built here
 * independently; the CheckpointSigned events carry the same notes; the well-known route serves the
 * latest without a credential. Key rotation is recorded and the old checkpoints still open with
 * previousVerifierKeys; an untrusted old key or a malformed key refuses the start with a precise
 * error. The signer key is never in the output nor in the log.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { stringify } from 'yaml';
import { generateNoteKey, leafHashOf, MemoryTree, openCheckpoint, openEventLogReader, openFileLogReader, parseVerifierKey } from '#eventlog';
import type { CheckpointTrust, EventLogReader, GeneratedNoteKey, LogEntry } from '#eventlog';
import { KafkaLogSchema } from '#schemas';
import type { EventOfType } from '#schemas';
import { hashApiKey } from '#gateway';
import { spawnNode, stopAllProcesses, stopProcess } from '../../test/harness/processes.ts';
import type { NodeProcess } from '../../test/harness/processes.ts';
import { CLI_SCRIPT } from '../../test/harness/cli.ts';
import { rawInitialize, rawPost } from '../../test/support/raw-mcp.ts';
import { CHECKPOINT_PATH } from '../http/checkpoint-route.ts';
import { kafkaBrokers } from '../../test/services/index.ts';
import { fixtureStdioUpstream, startTestGateway } from '../../test/support/gateway.ts';

const FIXTURE = path.join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'upstream', 'server.ts');
const KEY = 'atk_checkpoint_test_key_0123456789';
const ORIGIN = 'example.com/attest/checkpoint-test';

after(() => stopAllProcesses());

interface Run {
  readonly dir: string;
  readonly logDir: string;
  readonly evidenceDir: string;
}

async function newRun(t: { after: (fn: () => Promise<void>) => void }): Promise<Run> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-ckpt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, logDir: path.join(dir, 'log'), evidenceDir: path.join(dir, 'evidence') };
}

async function writeKey(run: Run, key: GeneratedNoteKey, name: string): Promise<string> {
  const file = path.join(run.dir, name);
  await writeFile(file, `${key.signerKey}\n`, { mode: 0o600 });
  return file;
}

async function configFile(run: Run, evidence: Record<string, unknown>): Promise<string> {
  const file = path.join(run.dir, 'attest.yaml');
  await writeFile(
    file,
    stringify({
      gateway: { port: 0 },
      log: { backend: 'file', dir: run.logDir },
      evidence: { enabled: true, dir: run.evidenceDir, origin: ORIGIN, ...evidence },
      auth: { keys: [{ id: 'agent', hash: hashApiKey(KEY), tenant: 't1' }] },
      upstreams: { fixture: { transport: 'stdio', command: process.execPath, args: [FIXTURE, '--stdio'] } },
    }),
  );
  return file;
}

/** `attest start` at debug level (so every line the gateway could log is there to search). */
async function start(config: string, env: Record<string, string> = {}): Promise<{ proc: NodeProcess; url: string }> {
  const proc = spawnNode(CLI_SCRIPT, { nodeArgs: ['--conditions=attest-source'], args: ['start', '--config', config], env: { ATTEST_LOG_LEVEL: 'debug', ...env } });
  const match = await proc.waitForStdoutLine(/listening on (http:\/\/\S+) /, 30_000).catch((error: unknown) => {
    throw new Error(`attest start did not listen: ${(error as Error).message}\n${proc.stderr()}`);
  });
  return { proc, url: match[1] as string };
}

async function calls(url: string, count: number): Promise<void> {
  const headers = { authorization: `Bearer ${KEY}` };
  const { sessionId, result } = await rawInitialize(`${url}/mcp`, headers);
  const h = { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
  for (let i = 0; i < count; i++) {
    const response = await rawPost(`${url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `c${i}` } } }, h);
    assert.ok(response.messages[0]?.['result'] !== undefined, response.text);
  }
}

async function logEntries(logDir: string | (() => Promise<EventLogReader>)): Promise<LogEntry[]> {
  const reader = typeof logDir === 'string' ? await openFileLogReader(logDir) : await logDir();
  const out: LogEntry[] = [];
  try {
    for await (const entry of reader.entries()) out.push(entry);
  } finally {
    await reader.close();
  }
  return out;
}

function signedEvents(entries: readonly LogEntry[]): { index: number; event: EventOfType<'CheckpointSigned'> }[] {
  return entries.flatMap((entry, index) => (entry.event?.type === 'CheckpointSigned' ? [{ index, event: entry.event }] : []));
}

/** The root of the log's first `size` events, built here from the records (not from the store). */
function rootOf(entries: readonly LogEntry[], size: number): Buffer {
  const tree = new MemoryTree();
  for (const entry of entries.slice(0, size)) tree.appendLeafHash(leafHashOf(entry));
  return tree.root();
}

const isOwn = (entry: LogEntry | undefined): boolean => entry?.event?.type === 'CheckpointSigned' || entry?.event?.type === 'CheckpointKeyRotated';

/** Checks every published file against the trust and the log; returns the sizes, ascending. */
async function checkFiles(run: Run, trust: CheckpointTrust, entries: readonly LogEntry[]): Promise<number[]> {
  const names = await readdir(path.join(run.evidenceDir, 'checkpoints'));
  const sizes = names.map((name) => Number(/^(\d+)\.ckpt$/.exec(name)?.[1])).sort((a, b) => a - b);
  assert.ok(sizes.every(Number.isSafeInteger), `only <size>.ckpt files: ${names.join(', ')}`);
  const events = new Map(signedEvents(entries).map(({ event }) => [event.data.treeSize, event]));
  for (const size of sizes) {
    const note = await readFile(path.join(run.evidenceDir, 'checkpoints', `${size}.ckpt`), 'utf8');
    const { checkpoint } = openCheckpoint(note, trust);
    assert.equal(checkpoint.size, size);
    assert.deepEqual(checkpoint.root, rootOf(entries, size), `checkpoint ${size} commits to the log's first ${size} events`);
    const event = events.get(size);
    assert.ok(event !== undefined, `a CheckpointSigned event for ${size}`);
    assert.equal(event.data.note, note);
    assert.equal(event.data.rootHash, checkpoint.root.toString('hex'));
    assert.equal(event.data.origin, ORIGIN);
    assert.deepEqual(checkpoint.extensions, [`time ${event.data.signedAt}`]);
  }
  assert.equal(await readFile(path.join(run.evidenceDir, 'checkpoint'), 'utf8'), await readFile(path.join(run.evidenceDir, 'checkpoints', `${sizes.at(-1)}.ckpt`), 'utf8'), 'checkpoint is the latest');
  return sizes;
}

function assertNoKeyMaterial(text: string, key: GeneratedNoteKey, where: string): void {
  const seed = key.signerKey.split('+').slice(4).join('+');
  assert.ok(!text.includes(seed.slice(0, 16)), `no part of the signer key in ${where}`);
  assert.ok(!text.includes('PRIVATE+KEY'), `no signer key in ${where}`);
}

async function logBytes(logDir: string): Promise<string> {
  const names = await readdir(logDir);
  const parts = await Promise.all(names.map((name) => readFile(path.join(logDir, name), 'latin1')));
  return parts.join('');
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

void describe('signed checkpoints of attest start', () => {
  void it('by count: every checkpoint follows at least checkpointEveryEvents events, a last one at stop; files, events and the route agree', { timeout: 120_000 }, async (t) => {
    const run = await newRun(t);
    const key = generateNoteKey(ORIGIN);
    const config = await configFile(run, { keyFile: await writeKey(run, key, 'ckpt.key'), checkpointEveryEvents: 8, checkpointEverySeconds: 3600 });
    const { proc, url } = await start(config);
    const trust = { origin: ORIGIN, verifiers: [parseVerifierKey(key.verifierKey)] };
    const before = await fetch(`${url}${CHECKPOINT_PATH}`);
    assert.equal(before.status, 404);
    assert.match(((await before.json()) as { error: { message: string } }).error.message, /No checkpoint signed yet/);
    await calls(url, 12);
    const served = await until('a checkpoint on the route', async () => {
      const response = await fetch(`${url}${CHECKPOINT_PATH}`);
      return response.status === 200 ? response : undefined;
    });
    assert.equal(served.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(served.headers.get('cache-control'), 'no-cache');
    const servedNote = await served.text();
    assert.equal(openCheckpoint(servedNote, trust).checkpoint.origin, ORIGIN);
    const status = await stopProcess(proc);
    assert.equal(status.code, 0, proc.stderr());

    const entries = await logEntries(run.logDir);
    const sizes = await checkFiles(run, trust, entries);
    const signed = signedEvents(entries);
    assert.ok(signed.length >= 3, `several checkpoints by count, and one at stop: ${sizes.join(', ')}`);
    assert.ok(signed.some(({ event }) => event.data.note === servedNote), 'the route served one of them');
    let previous = 0;
    for (const { event } of signed.slice(0, -1)) {
      const grown = entries.slice(previous, event.data.treeSize).filter((entry) => !isOwn(entry)).length;
      assert.ok(grown >= 8, `checkpoint ${event.data.treeSize} follows ${grown} events since ${previous}, at least 8`);
      previous = event.data.treeSize;
    }
    // The last one is of the final size: every event but checkpoint events, GatewayStopped included.
    const last = signed.at(-1);
    assert.ok(last !== undefined);
    assert.equal(last.index, entries.length - 1, 'the log ends with the last CheckpointSigned');
    assert.ok(entries.slice(last.event.data.treeSize).every(isOwn), `only checkpoint events after ${last.event.data.treeSize}`);
    const stopped = entries.findIndex((entry) => entry.event?.type === 'GatewayStopped');
    assert.ok(stopped >= 0 && stopped < last.event.data.treeSize, 'GatewayStopped is covered');
    assert.deepEqual(last.event.data.signers, [{ name: ORIGIN, keyId: parseVerifierKey(key.verifierKey).keyId.toString(16).padStart(8, '0'), verifierKey: key.verifierKey }]);

    assertNoKeyMaterial(proc.stderr() + proc.stdout(), key, 'the output');
    assertNoKeyMaterial(await logBytes(run.logDir), key, 'the log');
    assert.match(proc.stderr(), /checkpoint signing key loaded/);
  });

  void it('by time: a checkpoint checkpointEverySeconds after growth, none while only its own events arrive', { timeout: 120_000 }, async (t) => {
    const run = await newRun(t);
    const key = generateNoteKey(ORIGIN);
    const config = await configFile(run, { keyFile: await writeKey(run, key, 'ckpt.key'), checkpointEveryEvents: 1_000_000, checkpointEverySeconds: 0.5 });
    const { proc, url } = await start(config);
    const trust = { origin: ORIGIN, verifiers: [parseVerifierKey(key.verifierKey)] };
    const first = await until('the first checkpoint by time', async () => {
      const response = await fetch(`${url}${CHECKPOINT_PATH}`);
      return response.status === 200 ? response.text() : undefined;
    });
    await calls(url, 2);
    // Once a checkpoint covers every event but checkpoint events…
    const second = await until('a checkpoint covering the calls', async () => {
      const response = await fetch(`${url}${CHECKPOINT_PATH}`);
      if (response.status !== 200) return undefined;
      const text = await response.text();
      const entries = await logEntries(run.logDir);
      return entries.slice(openCheckpoint(text, trust).checkpoint.size).every(isOwn) ? text : undefined;
    });
    assert.notEqual(second, first);
    const signedThen = signedEvents(await logEntries(run.logDir)).length;
    // …idle for four intervals: its own CheckpointSigned events are no reason to sign again.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal(await (await fetch(`${url}${CHECKPOINT_PATH}`)).text(), second);
    assert.equal(signedEvents(await logEntries(run.logDir)).length, signedThen, 'no checkpoint while idle');
    assert.equal((await stopProcess(proc)).code, 0, proc.stderr());
    const entries = await logEntries(run.logDir);
    const sizes = await checkFiles(run, trust, entries);
    assert.equal(sizes.length, signedThen + 1, `and the last one at stop: ${sizes.join(', ')}`);
    assert.ok(openCheckpoint(second, trust).checkpoint.size > openCheckpoint(first, trust).checkpoint.size);
  });

  void it('records a key rotation; old checkpoints open with previousVerifierKeys; an untrusted old key, a malformed key or one written in the config refuses the start', { timeout: 180_000 }, async (t) => {
    const run = await newRun(t);
    const oldKey = generateNoteKey(ORIGIN);
    const newKey = generateNoteKey(ORIGIN);
    const oldFile = await writeKey(run, oldKey, 'old.key');
    const newFile = await writeKey(run, newKey, 'new.key');
    const every = { checkpointEveryEvents: 1_000_000, checkpointEverySeconds: 3600 };

    const one = await start(await configFile(run, { keyFile: oldFile, ...every }));
    await calls(one.url, 1);
    assert.equal((await stopProcess(one.proc)).code, 0, one.proc.stderr());
    const lastOld = openCheckpoint(await readFile(path.join(run.evidenceDir, 'checkpoint'), 'utf8'), { origin: ORIGIN, verifiers: [parseVerifierKey(oldKey.verifierKey)] }).checkpoint.size;

    // A new key without the old one trusted: refused before anything is written, naming the fix.
    const refusedConfig = await configFile(run, { keyFile: newFile, ...every });
    const sizeBefore = (await logEntries(run.logDir)).length;
    const refused = spawnNode(CLI_SCRIPT, { nodeArgs: ['--conditions=attest-source'], args: ['start', '--config', refusedConfig], env: { ATTEST_LOG_LEVEL: 'debug' } });
    const refusedStatus = await refused.exited;
    assert.equal(refusedStatus.code, 2, refused.stderr());
    assert.match(refused.stderr(), /evidence\.previousVerifierKeys: the latest checkpoint .*checkpoint is not signed by a trusted key \(no signature is by a known key: signed by example\.com\/attest\/checkpoint-test\+[0-9a-f]{8}; known: .*\)\. The signing key changed: to rotate keys, add the verifier key that signed it/);
    assertNoKeyMaterial(refused.stderr() + refused.stdout(), newKey, 'the refusal');
    assert.equal((await logEntries(run.logDir)).length, sizeBefore, 'nothing recorded by the refused start');

    // A malformed key (from the environment): refused with what is wrong, none of it quoted.
    const mangled = `${newKey.signerKey.slice(0, -8)}AAAAAAA=`;
    const badConfig = await configFile(run, { signingKey: '${ATTEST_CHECKPOINT_KEY}', ...every });
    const bad = spawnNode(CLI_SCRIPT, { nodeArgs: ['--conditions=attest-source'], args: ['start', '--config', badConfig], env: { ATTEST_LOG_LEVEL: 'debug', ATTEST_CHECKPOINT_KEY: mangled } });
    assert.equal((await bad.exited).code, 2, bad.stderr());
    assert.match(bad.stderr(), /evidence\.signingKey: not a note signer key \(the signer key has 31 bytes of Ed25519 key, not 32\); make one with `attest keys note NAME --out FILE`/);
    assertNoKeyMaterial(bad.stderr() + bad.stdout(), newKey, 'the refusal of a malformed key');
    assert.ok(!bad.stderr().includes(mangled.split('+').slice(4).join('+').slice(0, 16)));

    // The key written in the config file itself: refused, the file is not where secrets go.
    const literal = spawnNode(CLI_SCRIPT, { nodeArgs: ['--conditions=attest-source'], args: ['start', '--config', await configFile(run, { signingKey: newKey.signerKey, ...every })], env: { ATTEST_LOG_LEVEL: 'debug' } });
    assert.equal((await literal.exited).code, 2, literal.stderr());
    assert.match(literal.stderr(), /evidence\.signingKey: must be a \$\{ENV\} reference such as \$\{ATTEST_CHECKPOINT_KEY\}/);
    assertNoKeyMaterial(literal.stderr() + literal.stdout(), newKey, 'the refusal of a literal key');

    // The rotation, with the old verifier key trusted.
    const two = await start(await configFile(run, { keyFile: newFile, previousVerifierKeys: [oldKey.verifierKey], ...every }));
    await calls(two.url, 1);
    assert.equal((await stopProcess(two.proc)).code, 0, two.proc.stderr());
    const entries = await logEntries(run.logDir);
    const trust = { origin: ORIGIN, verifiers: [parseVerifierKey(newKey.verifierKey), parseVerifierKey(oldKey.verifierKey)] };
    const sizes = await checkFiles(run, trust, entries);
    const rotations = entries.flatMap((entry, index) => (entry.event?.type === 'CheckpointKeyRotated' ? [{ index, event: entry.event }] : []));
    assert.equal(rotations.length, 1);
    const rotation = rotations[0];
    const keyId = (text: string) => parseVerifierKey(text).keyId.toString(16).padStart(8, '0');
    assert.deepEqual(rotation?.event.data.previousKey, { name: ORIGIN, keyId: keyId(oldKey.verifierKey), verifierKey: oldKey.verifierKey });
    assert.deepEqual(rotation?.event.data.key, { name: ORIGIN, keyId: keyId(newKey.verifierKey), verifierKey: newKey.verifierKey });
    assert.equal(rotation?.event.data.lastTreeSize, lastOld);
    // In the same append as the first checkpoint by the new key; every one before is by the old key.
    const signed = signedEvents(entries);
    assert.equal(entries[(rotation?.index ?? 0) + 1]?.event?.type, 'CheckpointSigned');
    for (const { index, event } of signed) {
      const by: GeneratedNoteKey = index < (rotation?.index ?? 0) ? oldKey : newKey;
      assert.equal(event.data.signers[0]?.verifierKey, by.verifierKey, `checkpoint ${event.data.treeSize}`);
      assert.equal(openCheckpoint(event.data.note, { origin: ORIGIN, verifiers: [parseVerifierKey(by.verifierKey)] }).checkpoint.size, event.data.treeSize);
    }
    assert.ok(sizes.includes(lastOld) && sizes.length === signed.length);
    for (const key of [oldKey, newKey]) {
      assertNoKeyMaterial(one.proc.stderr() + two.proc.stderr(), key, 'the output');
      assertNoKeyMaterial(await logBytes(run.logDir), key, 'the log');
    }
  });

  void it('on Kafka: the checkpoints commit to the events of the topic in offset order', { timeout: 120_000 }, async (t) => {
    const run = await newRun(t);
    const kafka = await kafkaBrokers();
    // A topic of its own, deleted afterwards by a second client (the one-node test broker: RF 1).
    const log = KafkaLogSchema.parse({ backend: 'kafka', brokers: [...kafka.brokers], topic: `attest-checkpoints-${randomUUID()}`, createTopic: true, replicationFactor: 1, minInsyncReplicas: 1 });
    t.after(async () => {
      const admin = new kafkajs.Kafka({ clientId: 'attest-checkpoints-cleanup', brokers: [...kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [log.topic], timeout: 10_000 }).finally(() => admin.disconnect());
      await kafka.stop();
    });
    const key = generateNoteKey(ORIGIN);
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: [{ id: 'agent', hash: hashApiKey(KEY), tenant: 't1' }], log: { ...log }, state: { dir: path.join(run.dir, 'state') }, evidence: { enabled: true, dir: run.evidenceDir, origin: ORIGIN, keyFile: await writeKey(run, key, 'ckpt.key'), checkpointEveryEvents: 5, checkpointEverySeconds: 3600 } });
    try {
      await calls(gw.url, 3);
    } finally {
      await gw.close();
    }
    const entries = await logEntries(() => openEventLogReader(log));
    const sizes = await checkFiles(run, { origin: ORIGIN, verifiers: [parseVerifierKey(key.verifierKey)] }, entries);
    // The follower reads Kafka in batches: one checkpoint may cover many more than 5 events.
    assert.ok(sizes.length >= 2, `checkpoints by count and at stop: ${sizes.join(', ')}`);
    assert.ok(entries.slice(sizes.at(-1)).every(isOwn), 'the last covers every event but checkpoint events');
    assert.ok(entries.findIndex((entry) => entry.event?.type === 'GatewayStopped') < (sizes.at(-1) ?? 0), 'GatewayStopped included');
  });

  void it('with evidence off, the route answers 404 naming the setting; no checkpoint files', { timeout: 60_000 }, async (t) => {
    const run = await newRun(t);
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir: run.logDir });
    try {
      const response = await fetch(`${gw.url}${CHECKPOINT_PATH}`);
      assert.equal(response.status, 404);
      const body = (await response.json()) as { error: { message: string; data: { errorCode: string } } };
      assert.equal(body.error.data.errorCode, 'ATTEST_NOT_FOUND');
      assert.match(body.error.message, /evidence is not enabled on this gateway \(evidence\.enabled\)/);
    } finally {
      await gw.close();
    }
    await assert.rejects(readdir(path.join(`${run.logDir}.state`, 'merkle', 'checkpoints')), { code: 'ENOENT' });
  });
});
