/**
 * Snapshots while a real gateway runs: past `state.snapshotEveryEvents` the snapshot worker (a
 * thread) writes snapshots of the state as the log grows; at close the last one is written; the
 * next start resumes from it and reads nothing of the log but what followed it. A short run that
 * never needed the worker writes its last snapshot itself at close.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger, hashApiKey, startGateway } from '#gateway';
import type { AttestConfigInput } from '#schemas';
import { fixtureStdioUpstream, startTestGateway } from '../../test/support/gateway.ts';
import { rawInitialize, rawPost } from '../../test/support/raw-mcp.ts';

const KEY = 'atk_snapshotter_key_0123456789ab';

async function snapshotsIn(dir: string): Promise<{ name: string; size: number }[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.json')).map((name) => ({ name, size: Number(/snapshot-(\d+)\.json/.exec(name)?.[1]) })).sort((a, b) => a.size - b.size);
}

describe('snapshots while the gateway runs', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('the worker writes snapshots as the log grows, the last one at close, and the next start reads only what followed it', { timeout: 120_000 }, async () => {
    const state = { snapshotEveryEvents: 100, snapshotIntervalMs: 60_000 };
    const first = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: [{ id: 'k1', hash: hashApiKey(KEY), tenant: 't1' }], state });
    dirs.push(path.dirname(first.logDir));
    const stateDir = `${first.logDir}.state`;
    const headers = { authorization: `Bearer ${KEY}` };
    const { sessionId, result } = await rawInitialize(`${first.url}/mcp`, headers);
    const h = { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const atStart = await snapshotsIn(stateDir);
    for (let i = 0; i < 120; i++) await rawPost(`${first.url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `call ${i}` } } }, h);
    const grown = first.gateway.log.size();
    // The worker ticks every second: bounded wait for a snapshot that covers most of what was written.
    const until = Date.now() + 30_000;
    let during = await snapshotsIn(stateDir);
    while ((during.at(-1)?.size ?? 0) < grown - 100 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      during = await snapshotsIn(stateDir);
    }
    assert.ok((during.at(-1)?.size ?? 0) >= grown - 100, `a snapshot near the log's size ${grown} while running (have ${JSON.stringify(during)}, at start ${JSON.stringify(atStart)})`);
    await first.gateway.close('done');
    const finalSize = (await snapshotsIn(stateDir)).at(-1)?.size;
    assert.ok(finalSize !== undefined && finalSize > grown, 'the last snapshot at close covers the whole run');
    assert.ok((await snapshotsIn(stateDir)).length <= 2, 'two snapshots are kept');

    const config: AttestConfigInput = { gateway: { port: 0 }, log: { backend: 'file', dir: first.logDir }, auth: { keys: [{ id: 'k1', hash: hashApiKey(KEY), tenant: 't1' }] }, upstreams: { fixture: fixtureStdioUpstream() }, state };
    const lines: string[] = [];
    const second = await startGateway(config, { port: 0, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
    try {
      const rebuilt = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['msg'] === 'gateway state rebuilt from the log');
      assert.ok(rebuilt !== undefined, 'the start says how it rebuilt its state');
      assert.match(String(rebuilt['resumedFrom']), /snapshot-0+\d+\.json$/);
      assert.equal(rebuilt['readAtStart'], 0, 'nothing followed the last snapshot');
    } finally {
      await second.close('done');
    }
    const snapshot = JSON.parse(await readFile(path.join(stateDir, (await snapshotsIn(stateDir)).at(-1)?.name ?? ''), 'utf8')) as { instance: string; body: { heads: [string, unknown][] } };
    assert.equal(snapshot.instance, 'gw-1');
    assert.ok(!snapshot.body.heads.some(([stream]) => stream === `session-${sessionId}`), 'a closed session’s head is not kept');
  });
});
