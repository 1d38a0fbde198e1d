/**
 * The evidence tree beside a real gateway (HTTP, a stdio upstream): after a run and a clean stop
 * its store holds one leaf per event of the log, with the root built independently from the log's
 * records; a second run resumes it; each receipt's leaf index and hash name the outcome's leaf. Off by default: without the section no store is created.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hashLeaf, MemoryTree, MerkleStore, openFileLogReader, verifyInclusion } from '#eventlog';
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

interface ReceiptEntry { readonly eventId: string; readonly leafIndex?: number; readonly leafHash?: string }

/** A run of four echo calls; returns each call's receipt entry for its outcome event. */
async function run(logDir: string, evidence?: Record<string, unknown>): Promise<ReceiptEntry[]> {
  const outcomes: ReceiptEntry[] = [];
  const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, ...(evidence !== undefined && { evidence }) });
  try {
    const { sessionId, result } = await rawInitialize(`${gw.url}/mcp`, gw.headers);
    const h = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    for (let i = 0; i < 4; i++) {
      const response = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `e${i}` } } }, h);
      const result = response.messages[0]?.['result'] as { _meta?: Record<string, { outcome?: ReceiptEntry }> } | undefined;
      const outcome = result?._meta?.['attest/receipt']?.outcome;
      assert.ok(outcome !== undefined, `call ${i} has a receipt with an outcome: ${response.text}`);
      outcomes.push(outcome);
    }
  } finally {
    await gw.close();
  }
  return outcomes;
}

void describe('the evidence tree beside the gateway', () => {
  void it('holds a leaf for every event after a run, and resumes on the next', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-evidence-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const logDir = path.join(dir, 'log');
    const merkleDir = path.join(dir, 'merkle');
    for (let r = 0; r < 2; r++) {
      const receipts = await run(logDir, { enabled: true, dir: merkleDir });
      const want = await logRoot(logDir);
      const store = await MerkleStore.open(merkleDir);
      assert.equal(store.size, want.size, `run ${r}: one leaf per event`);
      assert.deepEqual(store.root(), want.root, `run ${r}: the root of the log`);
      // Each receipt names its outcome's leaf: the stored leaf there is the one it carries, and its
      // inclusion proof verifies against the tree's root.
      for (const receipt of receipts) {
        assert.ok(receipt.leafIndex !== undefined && receipt.leafHash !== undefined, JSON.stringify(receipt));
        assert.equal((await store.leafHash(receipt.leafIndex)).toString('hex'), receipt.leafHash);
        verifyInclusion(Buffer.from(receipt.leafHash, 'hex'), receipt.leafIndex, store.size, await store.inclusionProof(receipt.leafIndex), store.root());
      }
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
