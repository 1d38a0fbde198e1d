/**
 * The evidence tree beside a real gateway (HTTP, a stdio upstream): after a run and a clean stop
 * its store holds one leaf per event of the log, with the root built independently from the log's
 * records; a second run resumes it. Off by default: without the section no store is created.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hashLeaf, MemoryTree, MerkleStore, openFileLogReader } from '#eventlog';
import { canonicalize } from '#schemas';
import { fixtureStdioUpstream, startTestGateway } from '../../test/support/gateway.ts';
import { rawInitialize, rawPost } from '../../test/support/raw-mcp.ts';

async function logRoot(logDir: string): Promise<{ size: number; root: Buffer }> {
  const reader = await openFileLogReader(logDir);
  const tree = new MemoryTree();
  for await (const { event } of reader.read()) {
    const { hash: _hash, ...rest } = event as unknown as Record<string, unknown>;
    tree.appendLeafHash(hashLeaf(Buffer.from(canonicalize(rest), 'utf8')));
  }
  await reader.close();
  return { size: tree.size, root: tree.root() };
}

async function run(logDir: string, evidence?: Record<string, unknown>): Promise<void> {
  const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, ...(evidence !== undefined && { evidence }) });
  try {
    const { sessionId, result } = await rawInitialize(`${gw.url}/mcp`, gw.headers);
    const h = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    for (let i = 0; i < 4; i++) await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `e${i}` } } }, h);
  } finally {
    await gw.close();
  }
}

void describe('the evidence tree beside the gateway', () => {
  void it('holds a leaf for every event after a run, and resumes on the next', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-evidence-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const logDir = path.join(dir, 'log');
    const merkleDir = path.join(dir, 'merkle');
    for (let r = 0; r < 2; r++) {
      await run(logDir, { enabled: true, dir: merkleDir });
      const want = await logRoot(logDir);
      const store = await MerkleStore.open(merkleDir);
      assert.equal(store.size, want.size, `run ${r}: one leaf per event`);
      assert.deepEqual(store.root(), want.root, `run ${r}: the root of the log`);
      await store.close();
    }
  });

  void it('is off by default, and kept under state.dir when enabled without a dir', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-evidence-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const off = path.join(dir, 'off-log');
    await run(off);
    await assert.rejects(access(path.join(`${off}.state`, 'merkle')), { code: 'ENOENT' });
    const on = path.join(dir, 'on-log');
    await run(on, { enabled: true });
    await access(path.join(`${on}.state`, 'merkle', 'level-00'));
  });
});
