/**
 * The evidence commands as an operator and an auditor run them, each a real `attest` process, on
 * the log and tree of a real gateway run: prove, export, `verify --checkpoint`, and `verify
 * --bundle` in a separate process given only the bundle (its own empty directory, no config).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MerkleStoreReader, generateNoteKey, signCheckpoint, verifyConsistency, verifyInclusion } from '#eventlog';
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
    const started = new Date(Date.now() - 1000).toISOString();
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, evidence: { enabled: true, dir: merkleDir } });
    try {
      const { sessionId, result } = await rawInitialize(`${gw.url}/mcp`, gw.headers);
      const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      for (let i = 0; i < 5; i++) await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `e${i}` } } }, headers);
    } finally {
      await gw.close();
    }
    const ended = new Date(Date.now() + 1000).toISOString();

    // Checkpoints as the gateway signs them (<evidence dir>/checkpoints/<size>.ckpt), with a test key.
    const key = generateNoteKey(ORIGIN);
    const tree = await MerkleStoreReader.open(merkleDir);
    const size = tree.size;
    assert.ok(size > 10, `the run wrote ${size} events`);
    const half = Math.floor(size / 2);
    await mkdir(path.join(merkleDir, 'checkpoints'));
    for (const at of [half, size]) await writeFile(path.join(merkleDir, 'checkpoints', `${at}.ckpt`), signCheckpoint({ origin: ORIGIN, size: at, root: await tree.rootAt(at), extensions: [] }, key.signer));
    const root = tree.root();
    await tree.close();
    const configFile = path.join(dir, 'attest.yaml');
    // The operator's config names the origin and the key file: the commands take their trust from it.
    await writeFile(path.join(dir, 'ckpt.key'), `${key.signerKey}\n`, { mode: 0o600 });
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
    const exported = await runCli(['export', '--config', configFile, '--from', started, '--to', ended, '--out', bundleFile]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, new RegExp(`leaves 0–${size - 1} \\(${size} events, 0 withheld\\)`));

    // The auditor: a fresh directory holding only the bundle; no config, no log, no tree.
    const auditor = await mkdtemp(path.join(os.tmpdir(), 'attest-auditor-'));
    t.after(() => rm(auditor, { recursive: true, force: true }));
    await copyFile(bundleFile, path.join(auditor, 'bundle.json'));
    const offline = await runCli(['verify', '--bundle', path.join(auditor, 'bundle.json'), ...trust]);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    assert.match(offline.stdout, new RegExp(`^ok: .*leaves 0–${size - 1} of ${ORIGIN} \\(${size} events`));
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
    assert.match(live.stdout, new RegExp(`^ok: ${size} events, tree of ${size} leaves agrees with the log; checkpoints ${half}, ${size}`));
    const plain = await runCli(['verify', '--config', configFile]);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stdout, new RegExp(`every chain verified\nok: ${size} events, tree of ${size} leaves agrees with the log; checkpoints ${half}, ${size}`));
    const segment = path.join(logDir, '00000000000000000000.seg');
    const bytes = await readFile(segment);
    // Cut the last record: find the start of the last frame by walking the length headers.
    let last = 0;
    for (let at = 0; at < bytes.length; at += 8 + bytes.readUInt32BE(at)) last = at;
    await truncate(segment, last);
    const truncated = await runCli(['verify', '--config', configFile, '--checkpoint', kept, ...trust]);
    assert.equal(truncated.code, 1);
    assert.match(truncated.stdout, new RegExp(`FAILED: the tree holds ${size} leaves but the log only ${size - 1} events`));
    assert.match(truncated.stdout, new RegExp(`checkpoint of size ${size} \\(${kept.replaceAll('/', '\\/')}\\) was signed over ${size} events but the log holds ${size - 1}`));
    // Without the kept checkpoint, the evidence directory's own checkpoint of that size catches it too.
    const plainCut = await runCli(['verify', '--config', configFile]);
    assert.equal(plainCut.code, 1);
    assert.match(plainCut.stdout, /every chain verified\nFAILED: the tree holds/);
  });
});
