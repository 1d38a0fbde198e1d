/**
 * A start that repairs something says so in the log, not only on stderr: a GatewayRecovered event
 * on the instance's system stream, before its GatewayStarted, with what was found (an unclean stop
 * of the previous run, a stale lock, a torn tail) and what was done. A clean stop and start record
 * none. Real gateway processes (one killed -9), real file log, the fixture MCP server over stdio.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey } from '#gateway';
import type { AttestEvent, EventOfType } from '#schemas';
import { rawInitialize, rawPost } from './support/raw-mcp.ts';
import { startCliGateway } from './support/cli-gateway.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';

const INSTANCE = 'recovery-test';

function recoveries(events: readonly AttestEvent[]): EventOfType<'GatewayRecovered'>[] {
  return events.filter((e): e is EventOfType<'GatewayRecovered'> => e.type === 'GatewayRecovered');
}

describe('recovery at start is recorded', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-recovery-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('a clean stop and start: no GatewayRecovered', async () => {
    const logDir = path.join(dir, 'clean');
    const first = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, gateway: { instance: INSTANCE } });
    await first.close();
    const second = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, gateway: { instance: INSTANCE } });
    try {
      assert.deepEqual(recoveries(await second.events()), []);
    } finally {
      await second.close();
    }
  });

  it('kill -9 with a session open: the next start records the unclean stop, the stale lock it took over and the session it closed', { timeout: 60_000 }, async () => {
    const logDir = path.join(dir, 'killed');
    const key = 'atk_recovery_key_0123456789';
    const configFile = path.join(dir, 'killed.json');
    const upstreams = { fixture: fixtureStdioUpstream() };
    await writeFile(configFile, JSON.stringify({ gateway: { port: 0, instance: INSTANCE }, log: { backend: 'file', dir: logDir }, auth: { keys: [{ id: 'test', hash: hashApiKey(key), tenant: 't1' }] }, upstreams }));
    const killed = startCliGateway(configFile);
    try {
      const mcp = `${await killed.url}/mcp`;
      const auth = { authorization: `Bearer ${key}` };
      const { sessionId, result } = await rawInitialize(mcp, auth);
      const echoed = await rawPost(mcp, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'before the kill' } } }, { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) });
      assert.match(echoed.text, /before the kill/);
    } finally {
      await killed.kill();
    }
    const t = await startTestGateway({ upstreams, logDir, gateway: { instance: INSTANCE } });
    try {
      const events = await t.events();
      const [recovered, ...more] = recoveries(events);
      assert.ok(recovered !== undefined && more.length === 0, 'one GatewayRecovered');
      const started = events.filter((e) => e.type === 'GatewayStarted');
      assert.equal(started.length, 2);
      assert.deepEqual(recovered.data.uncleanStop, { startedEventId: started[0]?.id, startedAt: started[0]?.occurredAt }, 'the run that never recorded GatewayStopped');
      assert.deepEqual(recovered.data.staleLock, { pid: killed.child.pid ?? null });
      assert.equal(recovered.data.sessionsClosed, 1);
      assert.equal(recovered.data.outcomesUnknown, 0);
      assert.equal(recovered.stream, `system-${INSTANCE}`);
      assert.ok(events.indexOf(recovered) < events.indexOf(started[1] as AttestEvent), 'recorded before the new GatewayStarted');
    } finally {
      await t.close();
    }
  });

  it('a torn tail: the next start records what it cut', async () => {
    const logDir = path.join(dir, 'torn');
    const first = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, gateway: { instance: INSTANCE } });
    await first.close();
    const segments = (await readdir(logDir)).filter((name) => name.endsWith('.seg')).sort();
    const last = path.join(logDir, segments.at(-1) ?? '');
    const end = (await stat(last)).size;
    // Half a frame: a length that promises more bytes than follow, as a write cut short leaves.
    const torn = Buffer.from([0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 0x7b, 0x22]);
    await appendFile(last, torn);
    const t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, logDir, gateway: { instance: INSTANCE } });
    try {
      const [recovered] = recoveries(await t.events());
      assert.ok(recovered !== undefined, 'GatewayRecovered is recorded');
      assert.equal(recovered.data.uncleanStop, undefined, 'the previous run stopped cleanly');
      assert.equal(recovered.data.tornTails?.length, 1);
      assert.equal(recovered.data.tornTails?.[0]?.offset, end);
      assert.equal(recovered.data.tornTails?.[0]?.bytesDropped, torn.length);
      assert.match(recovered.data.tornTails?.[0]?.reason ?? '', /torn tail/);
    } finally {
      await t.close();
    }
  });
});
