/**
 * Start-up from a snapshot on a real log written by a real gateway run: the state resumed from a
 * snapshot plus the tail equals the state folded from the whole log (projections and chain heads),
 * the resumed writer continues every chain, and whatever does not check out (a damaged snapshot,
 * one of another policy, a log that no longer holds its cursor) falls back to the whole log, saying
 * why. Also the guard of a resumed writer: it refuses to restart a stream it does not know.
 */
import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePolicy } from '../policy/compile-policy.ts';
import { createLogger } from '../logger.ts';
import { GATEWAY_VERSION } from '../version.ts';
import { GatewayStateFold } from './gateway-state.ts';
import { SnapshotStore } from './snapshot-store.ts';
import { openWithState } from './startup.ts';
import { InvalidEventError, openFileLogReader, sampleDraft } from '#eventlog';
import type { EventLog } from '#eventlog';
import { hashApiKey } from '#gateway';
import { parsePolicyBundle } from '#schemas';
import type { LogConfig } from '#schemas';
import { fixtureStdioUpstream, startTestGateway } from '../../test/support/gateway.ts';
import { rawInitialize, rawPost } from '../../test/support/raw-mcp.ts';

const KEY = 'atk_state_key_0123456789abcdef';
const POLICY = {
  defaultEffect: 'allow',
  rules: [{ id: 'no-fail', effect: 'deny', when: "tool == 'fail'" }],
  rateLimits: [{ id: 'add-per-key', scope: 'key', match: "tool == 'add'", capacity: 50, refillPerSecond: 0.01 }],
  budgets: [{ id: 'daily-echo', scope: 'tenant', period: 'day', maxCalls: 1000, match: "tool == 'echo'" }],
  loopGuard: { maxRepeats: 100, windowMs: 600_000 },
} as const;
const compiled = compilePolicy(parsePolicyBundle(POLICY).bundle);
const logger = createLogger('silent');

describe('gateway start-up from a snapshot, on a log written by a real gateway', () => {
  let dir = '';
  let original = '';
  let total = 0;

  before(async () => {
    // A real run: three sessions calling tools (allowed, denied, metered); the first two closed by
    // the agent, the third by the gateway's close. A snapshot in the middle holds open sessions.
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: [{ id: 'k1', hash: hashApiKey(KEY), tenant: 't1' }], policy: POLICY });
    dir = path.dirname(gw.logDir);
    original = gw.logDir;
    const headers = { authorization: `Bearer ${KEY}` };
    for (let s = 0; s < 3; s++) {
      const { sessionId, result } = await rawInitialize(`${gw.url}/mcp`, headers);
      const h = { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      for (let i = 0; i < 12; i++) {
        const name = ['fixture__echo', 'fixture__add', 'fixture__fail'][i % 3];
        await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name, arguments: name === 'fixture__add' ? { a: s, b: i } : { text: `s${s}-${i}` } } }, h);
      }
      if (s < 2) await fetch(`${gw.url}/mcp`, { method: 'DELETE', headers: h });
    }
    await gw.gateway.close('test run done');
    total = (await (await openFileLogReader(gw.logDir)).size());
    // The gateway's own snapshots are not used below: each case makes the one it needs.
    await rm(`${gw.logDir}.state`, { recursive: true, force: true });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Each case works on its own copy of the run's log (some append to it), with its own snapshot store. */
  let logConfig: LogConfig;
  let snapshotStore: SnapshotStore;
  async function given(name: string): Promise<SnapshotStore> {
    const copy = path.join(dir, `${name}-log`);
    await cp(original, copy, { recursive: true });
    logConfig = { backend: 'file', dir: copy, segmentBytes: 64 * 1024, appendTimeoutMs: 5000, maxBatchEvents: 256, maxQueuedBytes: 256 * 1024 * 1024, fsync: true };
    snapshotStore = new SnapshotStore({ dir: path.join(dir, `${name}-state`), instance: 'gw-1', log: logConfig, gatewayVersion: GATEWAY_VERSION });
    return snapshotStore;
  }

  async function foldOf(count: number): Promise<GatewayStateFold> {
    const reader = await openFileLogReader(logConfig.backend === 'file' ? logConfig.dir : '');
    const fold = new GatewayStateFold(compiled.limits, compiled.hash);
    try {
      for await (const entry of reader.entries()) {
        if (fold.size === count) break;
        fold.push(entry);
      }
    } finally {
      await reader.close();
    }
    return fold;
  }

  async function start(snapshots: SnapshotStore | undefined, policyHash: string = compiled.hash): Promise<Awaited<ReturnType<typeof openWithState>>> {
    return openWithState({ log: logConfig, logger, limits: compiled.limits, policyHash, store: snapshots, openOptions: {} });
  }

  async function heads(log: EventLog, streams: readonly string[]): Promise<Record<string, unknown>> {
    return Object.fromEntries(streams.map((stream) => [stream, log.head(stream)]));
  }

  it('resumed from a snapshot plus the tail: the same state as folding the whole log, and the writer continues every chain', async () => {
    assert.ok(total > 100, `the run wrote ${total} events`);
    const snapshots = await given('mid');
    const full = await start(undefined);
    const expected = full.fold.toJson();
    const openStreams = expected.heads.map(([stream]) => stream);
    const fullHeads = await heads(full.log, openStreams);
    await full.log.close();
    assert.equal(full.read, total);
    assert.ok(expected.projections.limits !== null && expected.projections.limits.buckets.length > 0, 'the run left limits state to compare');

    const mid = Math.floor(total / 2);
    await snapshots.write((await foldOf(mid)).toJson());
    const resumed = await start(snapshots);
    try {
      assert.match(resumed.resumedFrom ?? '', /snapshot-0+\d+\.json$/);
      assert.equal(resumed.read, total - mid, 'only the tail after the snapshot was read');
      assert.deepEqual(resumed.fold.toJson(), expected);
      assert.deepEqual(await heads(resumed.log, openStreams), fullHeads, 'the resumed writer knows every open chain head');
      assert.equal(resumed.log.size(), total);
      const [next] = await resumed.log.append([{ ...sampleDraft('system-gw-1', 0), stream: 'system-gw-1' }]);
      assert.equal(next?.event.seq, (fullHeads['system-gw-1'] as { seq: number }).seq + 1);
    } finally {
      await resumed.log.close();
    }
  });

  it('a resumed writer refuses to begin a stream it does not know with anything but an opener (a pruned, closed session)', async () => {
    const snapshots = await given('guard');
    await snapshots.write((await foldOf(total)).toJson());
    const resumed = await start(snapshots);
    try {
      assert.ok(resumed.resumedFrom !== undefined);
      await assert.rejects(resumed.log.append([sampleDraft('session-closed-long-ago', 0)]), (error: unknown) => error instanceof InvalidEventError && /does not know/.test(error.message));
      const opener = { ...sampleDraft('session-new', 0), type: 'SessionOpened', data: { transport: 'streamable-http', endpoint: '/mcp', upstreams: ['fixture'], instance: 'gw-1' } } as unknown as Parameters<EventLog['append']>[0][number];
      const [opened] = await resumed.log.append([opener]);
      assert.equal(opened?.event.seq, 1);
    } finally {
      await resumed.log.close();
    }
  });

  it('falls back to the whole log, saying why: a damaged snapshot, one of another policy', async () => {
    const damaged = await given('damaged');
    const expected = (await foldOf(total)).toJson();
    const file = await damaged.write((await foldOf(40)).toJson());
    await writeFile(file, (await readFile(file, 'utf8')).replace('"size":40', '"size":41'));
    const fromDamaged = await start(damaged);
    try {
      assert.equal(fromDamaged.resumedFrom, undefined);
      assert.equal(fromDamaged.fullReadBecause, 'no snapshot passed its checks');
      assert.deepEqual(fromDamaged.fold.toJson(), expected);
    } finally {
      await fromDamaged.log.close();
    }
    const other = await given('other-policy');
    await other.write((await foldOf(40)).toJson());
    const fromOther = await start(other, `sha256:${'0'.repeat(64)}`);
    try {
      assert.match(fromOther.fullReadBecause ?? '', /taken under policy sha256:[0-9a-f]{64}, the policy now is sha256:0{64}/);
      assert.equal(fromOther.read, total);
    } finally {
      await fromOther.log.close();
    }
  });

  it('falls back to the whole log when the log no longer holds the snapshot’s cursor (it was replaced)', async () => {
    const snapshots = await given('replaced');
    const fold = await foldOf(30);
    const body = fold.toJson();
    // The same position, another event: as if the log had been restored from another copy.
    const cursor = String(body.cursor);
    await snapshots.write({ ...body, cursor: `${cursor.slice(0, -1)}${cursor.endsWith('0') ? '1' : '0'}` });
    const started = await start(snapshots);
    try {
      assert.equal(started.resumedFrom, undefined);
      assert.match(started.fullReadBecause ?? '', /does not match the log/);
      assert.equal(started.read, total);
    } finally {
      await started.log.close();
    }
    assert.deepEqual((await readdir(path.join(dir, 'replaced-state'))).length, 1);
  });
});
