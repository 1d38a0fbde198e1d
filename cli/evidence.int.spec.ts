/**
 * The evidence commands as an operator and an auditor run them, each a real `attest` process, on
 * the log and tree of a real gateway run: prove, export, `verify --checkpoint`, and `verify
 * --bundle` in a separate process given only the bundle (its own empty directory, no config).
 * The checkpoints are the gateway's own (signed every 5 events with the config's key file).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MerkleStoreReader, generateNoteKey, verifyConsistency, verifyInclusion } from '#eventlog';
import { fixtureStdioUpstream, startTestGateway } from '../test/support/gateway.ts';
import { rawInitialize, rawPost } from '../test/support/raw-mcp.ts';
import { runCli } from '../test/harness/cli.ts';

const ORIGIN = 'example.com/attest/cli-test';

void describe('attest prove / export / verify --bundle / verify --checkpoint', () => {
  void it('work on a real gateway run, and the bundle verifies alone in another process', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-cli-evidence-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const logDir = path.join(dir, 'log');
    const merkleDir = path.join(dir, 'merkle');
    // The operator's key file and origin: the gateway signs checkpoints with them every 5 events, and the commands take their trust from the same config.
    const key = generateNoteKey(ORIGIN);
    const keyFile = path.join(dir, 'ckpt.key');
    await writeFile(keyFile, `${key.signerKey}\n`, { mode: 0o600 });
    const started = new Date(Date.now() - 1000).toISOString();
    let callsDone: string | undefined;
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, evidence: { enabled: true, dir: merkleDir, origin: ORIGIN, keyFile, checkpointEveryEvents: 5 } });
    try {
      const { sessionId, result } = await rawInitialize(`${gw.url}/mcp`, gw.headers);
      const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      for (let i = 0; i < 5; i++) await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `e${i}` } } }, headers);
      await new Promise((resolve) => setTimeout(resolve, 20));
      callsDone = new Date().toISOString();
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await gw.close();
    }

    // The checkpoints the gateway signed (<evidence dir>/checkpoints/<size>.ckpt).
    const sizes = (await readdir(path.join(merkleDir, 'checkpoints'))).map((name) => Number(name.replace('.ckpt', ''))).sort((a, b) => a - b);
    assert.ok(sizes.length >= 3, `the gateway signed checkpoints at ${sizes.join(', ')}`);
    const half = sizes[0] as number;
    const size = sizes.at(-1) as number;
    const tree = await MerkleStoreReader.open(merkleDir);
    const treeSize = tree.size;
    assert.ok(treeSize >= size);
    const root = tree.root();
    await tree.close();
    const configFile = path.join(dir, 'attest.yaml');
    await writeFile(configFile, ['log: { backend: file, dir: log }', `evidence: { enabled: true, dir: merkle, origin: ${JSON.stringify(ORIGIN)}, keyFile: ckpt.key }`, 'upstreams:', `  fixture: { transport: stdio, command: ${JSON.stringify(process.execPath)} }`, ''].join('\n'));
    const trust = ['--origin', ORIGIN, '--key', key.verifierKey];

    const inclusion = await runCli(['prove', 'inclusion', '--config', configFile, '--index', '3', '--checkpoint', path.join(merkleDir, 'checkpoints', `${half}.ckpt`)]);
    assert.equal(inclusion.code, 0, inclusion.stderr);
    const proof = JSON.parse(inclusion.stdout) as { hashEncoding: string; leafIndex: number; leafHash: string; treeSize: number; rootHash: string; proof: string[] };
    assert.equal(proof.hashEncoding, 'base64');
    assert.equal(proof.treeSize, half);
    verifyInclusion(Buffer.from(proof.leafHash, 'base64'), 3, half, proof.proof.map((h) => Buffer.from(h, 'base64')), Buffer.from(proof.rootHash, 'base64'));
    const consistency = await runCli(['prove', 'consistency', '--config', configFile, '--from', String(half)]);
    assert.equal(consistency.code, 0, consistency.stderr);
    const c = JSON.parse(consistency.stdout) as { fromSize: number; toSize: number; fromRoot: string; toRoot: string; proof: string[] };
    assert.equal(c.toRoot, root.toString('base64'));
    verifyConsistency(c.fromSize, c.toSize, Buffer.from(c.fromRoot, 'base64'), Buffer.from(c.toRoot, 'base64'), c.proof.map((h) => Buffer.from(h, 'base64')));
    const missing = await runCli(['prove', 'inclusion', '--config', configFile, '--event', '01900000-0000-7000-8000-000000000000']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no event with id 01900000-0000-7000-8000-000000000000 in the log/);

    const bundleFile = path.join(dir, 'period.bundle.json');
    const exported = await runCli(['export', '--config', configFile, '--from', started, '--to', callsDone ?? '', '--out', bundleFile]);
    assert.equal(exported.code, 0, exported.stderr);
    const [, last, events] = /leaves 0–(\d+) \((\d+) events, 0 withheld\)/.exec(exported.stdout) ?? [];
    assert.equal(Number(events), Number(last) + 1, exported.stdout);
    assert.ok(Number(events) > 20, `${events} events in the period`);

    // The auditor: a fresh directory holding only the bundle; no config, no log, no tree.
    const auditor = await mkdtemp(path.join(os.tmpdir(), 'attest-auditor-'));
    t.after(() => rm(auditor, { recursive: true, force: true }));
    await copyFile(bundleFile, path.join(auditor, 'bundle.json'));
    const offline = await runCli(['verify', '--bundle', path.join(auditor, 'bundle.json'), ...trust]);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    assert.match(offline.stdout, new RegExp(`^ok: .*leaves 0–${last} of ${ORIGIN} \\(${events} events`));
    assert.match(offline.stdout, /signed by a trusted key/);
    const stranger = await runCli(['verify', '--bundle', path.join(auditor, 'bundle.json'), '--key', generateNoteKey(ORIGIN).verifierKey]);
    const otherLog = await runCli(['verify', '--bundle', path.join(auditor, 'bundle.json'), '--origin', 'example.com/other', '--key', key.verifierKey]);
    assert.equal(otherLog.code, 1);
    assert.match(otherLog.stdout, /FAILED: .*not of the trusted origin "example.com\/other"/);
    assert.equal(stranger.code, 1);
    assert.match(stranger.stdout, /FAILED: .*checkpoint 1 of the bundle \(size \d+\) is refused: unknown-key/);
    const text = await readFile(path.join(auditor, 'bundle.json'), 'utf8');
    await writeFile(path.join(auditor, 'cut.json'), text.slice(0, Math.floor(text.length / 2)));
    const cut = await runCli(['verify', '--bundle', path.join(auditor, 'cut.json')]);
    assert.equal(cut.code, 1);
    assert.match(cut.stdout, /not complete JSON/);

    // The live log against the checkpoint kept from before: passes, then fails once the log's tail is cut.
    const kept = path.join(auditor, 'kept.ckpt');
    await copyFile(path.join(merkleDir, 'checkpoints', `${size}.ckpt`), kept);
    const live = await runCli(['verify', '--config', configFile, '--checkpoint', kept]);
    assert.equal(live.code, 0, live.stdout + live.stderr);
    assert.match(live.stdout, new RegExp(`^ok: \\d+ events, tree of ${treeSize} leaves agrees with the log; checkpoints ${sizes.join(', ')} match it and chain`));
    const plain = await runCli(['verify', '--config', configFile]);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stdout, new RegExp(`every chain verified\nok: \\d+ events, tree of ${treeSize} leaves agrees with the log; checkpoints ${sizes.join(', ')} match it and chain`));
    const segment = path.join(logDir, '00000000000000000000.seg');
    const bytes = await readFile(segment);
    // Cut the log back to one record less than the latest checkpoint: find that frame by walking the length headers.
    let cutAt = 0;
    for (let at = 0, index = 0; index < size - 1; at += 8 + bytes.readUInt32BE(at), index++) cutAt = at + 8 + bytes.readUInt32BE(at);
    await truncate(segment, cutAt);
    const truncated = await runCli(['verify', '--config', configFile, '--checkpoint', kept, ...trust]);
    assert.equal(truncated.code, 1);
    assert.match(truncated.stdout, new RegExp(`FAILED: the tree holds ${treeSize} leaves but the log only ${size - 1} events`));
    assert.match(truncated.stdout, new RegExp(`checkpoint of size ${size} \\(${kept.replaceAll('/', '\\/')}\\) was signed over ${size} events but the log holds ${size - 1}`));
    // Without the kept checkpoint, the evidence directory's own checkpoint of that size catches it too.
    const plainCut = await runCli(['verify', '--config', configFile]);
    assert.equal(plainCut.code, 1);
    assert.match(plainCut.stdout, /every chain verified\nFAILED: the tree holds/);
  });
});
