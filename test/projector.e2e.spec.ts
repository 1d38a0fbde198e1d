/**
 * The projector on a recorded workload from a real gateway run (real MCP clients over Streamable
 * HTTP, the fixture upstream over stdio, a policy that denies and charges), into the real
 * ClickHouse server (18.16 in CI): every table's totals equal the totals computed straight from the
 * log; a replay changes nothing; a `kill -9` of a real `attest projector` mid-run and a restart
 * leave the same totals; bad records are quarantined and the projection goes on; a migration from
 * version 1 to 2 fills the new tables. Each test projects into its own database, dropped after it.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SCHEMA_VERSION, eventHash } from '#schemas';
import type { AttestEvent, ClickHouseReadModelConfig } from '#schemas';
import { openFileLog, openFileLogReader } from '#eventlog';
import { hashApiKey } from '#gateway';
import { ClickHouseReadModel, NO_CHECKPOINT, Projector } from '#projector';
import type { ReadModelTotals } from '#projector';
import { CLICKHOUSE_MIGRATIONS } from '#schemas';
import { appendFrames } from '../eventlog/file/spec-support.ts';
import { clickhouseQuery, testDatabase } from '../projector/spec-support.ts';
import { connectClient } from './harness/client.ts';
import { CLI_SCRIPT, runCli } from './harness/cli.ts';
import { spawnNode, stopAllProcesses, stopProcess } from './harness/processes.ts';
import { fileLogEvents, fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';

const KEY = 'atk_projector_key_0123456789';
/** A tenant an auditor's filter will name: it must come back as data, never run as SQL. */
const HOSTILE_TENANT = "acme'; DROP TABLE tool_calls; --\\ ünï";
const CALLS_PER_CLIENT = 60;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface Expected {
  readonly events: number;
  readonly eventsByType: Record<string, number>;
  readonly toolCalls: number;
  readonly toolCallsByStatus: Record<string, number>;
  readonly cost: number;
  readonly decisions: number;
  readonly rejections: number;
  readonly configChanges: number;
}

/** The totals straight from the log, computed here without the projector's fold. */
function expectedFrom(events: readonly AttestEvent[]): Expected {
  const eventsByType: Record<string, number> = {};
  const requested = new Set<string>();
  const denied = new Set<string>();
  const outcome = new Map<string, string>();
  let cost = 0;
  for (const event of events) {
    eventsByType[event.type] = (eventsByType[event.type] ?? 0) + 1;
    const callId = event.callId ?? '';
    if (event.type === 'RequestReceived' && callId !== '') requested.add(callId);
    if (event.type === 'DecisionMade') {
      cost += event.data.enforcement?.cost ?? 0;
      if (event.data.decision === 'deny') denied.add(callId);
    }
    if (event.type === 'ResultReturned') outcome.set(callId, event.data.isError ? 'tool_error' : 'ok');
    if (event.type === 'ErrorReturned') outcome.set(callId, 'error');
    if (event.type === 'OutcomeUnknown') outcome.set(callId, 'unknown');
  }
  const toolCallsByStatus: Record<string, number> = {};
  for (const callId of requested) {
    const found = outcome.get(callId);
    const status = denied.has(callId) && (found === undefined || found === 'error') ? 'denied' : (found ?? 'pending');
    toolCallsByStatus[status] = (toolCallsByStatus[status] ?? 0) + 1;
  }
  const count = (...types: string[]): number => types.reduce((n, type) => n + (eventsByType[type] ?? 0), 0);
  return {
    events: events.length,
    eventsByType,
    toolCalls: requested.size,
    toolCallsByStatus,
    cost,
    decisions: count('DecisionMade'),
    rejections: count('RequestRejected'),
    configChanges: count('GatewayStarted', 'GatewayStopped', 'ConfigApplied', 'ConfigRejected', 'KeyIssued', 'KeyRevoked'),
  };
}

function assertTotals(totals: ReadModelTotals, expected: Expected): void {
  const { quarantined: _quarantined, cost, ...rest } = totals;
  const { cost: expectedCost, ...expectedRest } = expected;
  assert.deepEqual(rest, expectedRest);
  assert.ok(Math.abs(cost - expectedCost) < 1e-9, `cost ${cost} = ${expectedCost}`);
}


async function project(dir: string, config: ClickHouseReadModelConfig, batchEvents = 50): Promise<ClickHouseReadModel> {
  const model = new ClickHouseReadModel(config);
  await model.migrate();
  const reader = await openFileLogReader(dir);
  try {
    await new Projector(reader, model, { batchEvents, flushMs: 50, logger: silent }).catchUp();
  } finally {
    await reader.close();
  }
  return model;
}

describe('projector: a real gateway run into the real ClickHouse', () => {
  let root = '';
  let logDir = '';
  let events: AttestEvent[] = [];
  let expected: Expected;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'attest-projector-'));
    logDir = path.join(root, 'log');
    const gw = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      keys: [{ id: 'agent-key', hash: hashApiKey(KEY), tenant: HOSTILE_TENANT, team: 'ops', agent: 'bot-7' }],
      logDir,
      policy: {
        defaultEffect: 'allow',
        rules: [{ id: 'no-secrets', effect: 'deny', when: "tool == 'echo' && args.text.contains('secret')" }],
        costs: { fixture__add: 2.5 },
        budgets: [{ id: 'tenant-day', scope: 'tenant', period: 'day', maxCalls: 1_000_000 }],
        loopGuard: null,
      },
    });
    try {
      const run = async (client: number): Promise<void> => {
        const agent = await connectClient({ transport: 'streamable-http', url: `${gw.url}/mcp`, headers: { authorization: `Bearer ${KEY}` } }, { name: `projector-agent-${client}` });
        try {
          for (let i = 0; i < CALLS_PER_CLIENT; i++) {
            if (i % 10 === 3) await agent.client.callTool({ name: 'fixture__echo', arguments: { text: `secret ${client}-${i}` } }).catch(() => undefined);
            else if (i % 7 === 5) await agent.client.callTool({ name: 'fixture__fail', arguments: {} });
            else if (i % 2 === 0) await agent.client.callTool({ name: 'fixture__add', arguments: { a: i, b: client } });
            else await agent.client.callTool({ name: 'fixture__echo', arguments: { text: `hello ${client}-${i}` } });
          }
        } finally {
          await agent.close();
        }
      };
      await Promise.all([run(1), run(2)]);
      // An input refused before it became a request (no valid key): a RequestRejected.
      const refused = await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { authorization: 'Bearer atk_wrong', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
      assert.equal(refused.status, 401);
      await refused.text();
    } finally {
      await gw.close();
    }
    events = await fileLogEvents(logDir);
    expected = expectedFrom(events);
    assert.ok(expected.toolCalls >= 2 * CALLS_PER_CLIENT, `${expected.toolCalls} calls recorded`);
    assert.ok((expected.toolCallsByStatus['denied'] ?? 0) > 0 && (expected.toolCallsByStatus['tool_error'] ?? 0) > 0 && expected.rejections > 0, JSON.stringify(expected));
  });

  after(async () => {
    await stopAllProcesses({ signal: 'SIGKILL' });
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it('projects every event and one row per call, with the totals of the log', { timeout: 120_000 }, async (t) => {
    const config = await testDatabase(t);
    await using model = await project(logDir, config);
    assertTotals(await model.totals(), expected);
    assert.equal((await model.checkpoint()).processed, events.length);

    // One call, every column it should have, from its events.
    const request = events.find((e) => e.type === 'RequestReceived' && e.data.method === 'tools/call' && e.data.target === 'add');
    assert.ok(request?.type === 'RequestReceived' && request.callId !== undefined);
    const decision = events.find((e) => e.type === 'DecisionMade' && e.callId === request.callId);
    const result = events.find((e) => e.type === 'ResultReturned' && e.callId === request.callId);
    assert.ok(decision?.type === 'DecisionMade' && result?.type === 'ResultReturned');
    const row = await model.toolCall(request.callId);
    assert.ok(row !== undefined);
    assert.equal(row.status, 'ok');
    assert.deepEqual(
      { tenant: row['tenant'], principal: row['principal'], team: row['team'], agent: row['agent'], upstream: row['upstream'], tool: row['tool'], method: row['method'], decision: row['decision'], stage: row['stage'], rule_id: row['rule_id'], cost: row['cost'], latency_ms: row['latency_ms'], request_event_id: row['request_event_id'], outcome_event_id: row['outcome_event_id'], result_digest: row['result_digest'], recording: row['recording'] },
      { tenant: HOSTILE_TENANT, principal: 'agent-key', team: 'ops', agent: 'bot-7', upstream: 'fixture', tool: 'add', method: 'tools/call', decision: 'allow', stage: decision.data.stage, rule_id: decision.data.ruleId, cost: 2.5, latency_ms: result.data.durationMs, request_event_id: request.id, outcome_event_id: result.id, result_digest: result.data.result.digest, recording: request.data.params.recording },
    );
    assert.equal(row['policy_hash'], decision.data.policyHash);
    assert.equal(row['arguments_digest'], decision.data.enforcement?.argumentsDigest);
    assert.match(String(row['trace_id']), /^[0-9a-f]{32}$|^$/);
    const denied = events.find((e) => e.type === 'DecisionMade' && e.data.decision === 'deny');
    assert.ok(denied?.callId !== undefined);
    const deniedRow = await model.toolCall(denied.callId);
    assert.deepEqual([deniedRow?.status, deniedRow?.['rule_id']], ['denied', 'no-secrets']);

    // The reports' first question, filtered by the hostile tenant: its calls, as data.
    const perDay = await model.callsPerToolPerDay({ tenant: HOSTILE_TENANT });
    const callsOf = (tool: string): number => events.filter((e) => e.type === 'RequestReceived' && e.data.method === 'tools/call' && e.data.target === tool).length;
    assert.deepEqual(perDay.map((r) => [r.upstream, r.tool]).sort(), [['fixture', 'add'], ['fixture', 'echo'], ['fixture', 'fail']].filter(([, tool]) => perDay.some((r) => r.tool === tool)));
    for (const tool of ['add', 'echo', 'fail']) assert.equal(perDay.filter((r) => r.tool === tool).reduce((n, r) => n + r.calls, 0), callsOf(tool), tool);
    assert.equal(perDay.reduce((n, r) => n + r.denied, 0), expected.toolCallsByStatus['denied']);
    for (const hostile of ["x' OR '1'='1", "'; DROP TABLE tool_calls; --", 'acme\\', `${HOSTILE_TENANT}\u0000`]) {
      assert.deepEqual(await model.callsPerToolPerDay({ tenant: hostile }), [], hostile);
    }
    assert.equal((await model.totals()).toolCalls, expected.toolCalls, 'tool_calls survived the hostile filters');
  });

  it('is idempotent: projecting the same log again from zero changes no total', { timeout: 120_000 }, async (t) => {
    const config = await testDatabase(t);
    await using model = await project(logDir, config, 37);
    const first = await model.totals();
    await model.advance(NO_CHECKPOINT);
    await (await project(logDir, config, 101)).close();
    const raw = await clickhouseQuery(config.url, `SELECT count() FROM ${config.database}.events`);
    assert.ok(Number(raw) >= events.length, `every event written twice before merges: ${raw.trim()} rows`);
    assert.deepEqual(await model.totals(), first);
    assertTotals(first, expected);
  });

  it('survives kill -9 of a real `attest projector` mid-run: after a restart every total equals the log', { timeout: 180_000 }, async (t) => {
    const config = await testDatabase(t, { batchEvents: 10, flushMs: 20 });
    const configFile = path.join(root, `projector-${config.database}.yaml`);
    await writeFile(configFile, [
      `log: { backend: file, dir: ${JSON.stringify(logDir)} }`,
      `upstreams: { fixture: { transport: stdio, command: ${JSON.stringify(process.execPath)} } }`,
      'readModel:',
      '  backend: clickhouse',
      `  url: ${config.url}`,
      `  database: ${config.database}`,
      '  password: ${ATTEST_TEST_CLICKHOUSE_PASSWORD:-}',
      '  batchEvents: 10',
      '  flushMs: 20',
      '',
    ].join('\n'));
    const model = new ClickHouseReadModel(config);
    t.after(() => model.close());
    const start = () => spawnNode(CLI_SCRIPT, { nodeArgs: ['--conditions=attest-source'], args: ['projector', '--config', configFile] });

    const first = start();
    await first.waitForStdoutLine(/^attest projector following the file log/, 60_000);
    let seen = NO_CHECKPOINT;
    for (const deadline = Date.now() + 60_000; seen.processed === 0 && Date.now() < deadline; ) {
      seen = await model.checkpoint().catch(() => NO_CHECKPOINT);
      if (seen.processed === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const killed = await stopProcess(first, { signal: 'SIGKILL' });
    assert.equal(killed.signal, 'SIGKILL');
    const atKill = await model.checkpoint();
    assert.ok(atKill.processed > 0 && atKill.processed < events.length, `killed mid-run: ${atKill.processed} of ${events.length} checkpointed`);

    const second = start();
    await second.waitForStdoutLine(new RegExp(`from index ${atKill.index}$`), 60_000);
    for (const deadline = Date.now() + 120_000; (await model.checkpoint()).processed < events.length; ) {
      assert.ok(Date.now() < deadline, 'the restarted projector did not catch up within 120 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const status = await runCli(['projector', 'status', '--config', configFile]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`projected: +${events.length} of ${events.length} records`));
    assert.match(status.stdout, /lag: +0 events, 0\.0 s behind the head/);
    assert.match(status.stdout, /quarantined: 0/);
    const stopped = await stopProcess(second, { signal: 'SIGTERM', graceMs: 20_000 });
    assert.deepEqual(stopped, { code: 0, signal: null }, second.stderr());
    assertTotals(await model.totals(), expected);
  });

  it('quarantines what it cannot read, with the reason, counts it, and goes on', { timeout: 120_000 }, async (t) => {
    const dir = path.join(root, `quarantine-${Date.now()}`);
    await cp(logDir, dir, { recursive: true });
    const template = events[0] as unknown as Record<string, unknown>;
    const seal = (stream: string, fields: Record<string, unknown>): Record<string, unknown> => {
      const unsealed: Record<string, unknown> = { ...template, id: crypto.randomUUID(), stream, seq: 1, prevHash: null, ...fields };
      delete unsealed['hash'];
      return { ...unsealed, hash: eventHash(unsealed) };
    };
    const bad = [
      seal('q-type', { schemaVersion: '2.7', type: 'ToolSummoned', data: { spell: 'x' } }),
      seal('q-version', { schemaVersion: '3.0' }),
      seal('q-shape', { type: 'RequestReceived', callId: 'c-broken', data: { not: 'a request' } }),
    ];
    await appendFrames(dir, bad);
    // A good event after the bad ones, by a real writer: the projection must reach it.
    const log = await openFileLog({ dir });
    const opened = events.find((e) => e.type === 'SessionOpened');
    assert.ok(opened !== undefined);
    const { seq: _seq, prevHash: _prevHash, hash: _hash, ...draft } = opened;
    const appended = await log.append([{ ...draft, id: crypto.randomUUID(), stream: 'after-quarantine', schemaVersion: SCHEMA_VERSION }]).finally(() => log.close());
    const good = appended[0];
    assert.ok(good !== undefined);

    const config = await testDatabase(t);
    await using model = await project(dir, config);
    const { recent: quarantined } = await model.quarantined(10);
    assert.deepEqual(quarantined.map((q) => [q.eventId, q.problem]), bad.map((b, i) => [b['id'], ['type', 'version', 'shape'][i]]));
    assert.match(quarantined[0]?.reason ?? '', /ToolSummoned/);
    assert.match(quarantined[1]?.reason ?? '', /3\.0/);
    assert.match(quarantined[2]?.reason ?? '', /RequestReceived/);
    const totals = await model.totals();
    assert.equal(totals.quarantined, 3);
    assert.equal(totals.events, expected.events + 1, 'the good event after the bad ones is projected');
    assert.equal((await model.checkpoint()).processed, events.length + 4);
  });

  it('migrates a version-1 read model to version 2 and fills the new tables from the log', { timeout: 120_000 }, async (t) => {
    const config = await testDatabase(t);
    const v1 = new ClickHouseReadModel(config, { migrations: CLICKHOUSE_MIGRATIONS.slice(0, 1) });
    t.after(() => v1.close());
    assert.deepEqual(await v1.migrate(), { applied: [1], version: 1, reproject: false });
    const reader = await openFileLogReader(logDir);
    t.after(() => reader.close());
    await new Projector(reader, v1, { batchEvents: 100, flushMs: 50, logger: silent }).catchUp();
    await assert.rejects(clickhouseQuery(config.url, `SELECT count() FROM ${config.database}.decisions`), /decisions/);

    const v2 = new ClickHouseReadModel(config);
    t.after(() => v2.close());
    assert.deepEqual(await v2.migrate(), { applied: [2], version: 2, reproject: true });
    assert.equal((await v2.checkpoint()).processed, 0, 'the checkpoint starts over to fill the new tables');
    await new Projector(reader, v2, { batchEvents: 100, flushMs: 50, logger: silent }).catchUp();
    assertTotals(await v2.totals(), expected);
    assert.deepEqual(await v2.migrate(), { applied: [], version: 2, reproject: false }, 'a re-run applies nothing');
    assert.equal(await clickhouseQuery(config.url, `SELECT version, name FROM ${config.database}.schema_migrations FINAL ORDER BY version FORMAT TSV`), '1\tevents-tool-calls\n2\tdecisions-rejections-config-history\n');

    // A released migration edited afterwards, or a database newer than the code: refused, naming why.
    const edited = CLICKHOUSE_MIGRATIONS.map((m) => (m.version === 1 ? { ...m, statements: [...m.statements, 'SELECT 1'] } : m));
    await using editedModel = new ClickHouseReadModel(config, { migrations: edited });
    await assert.rejects(editedModel.migrate(), /migration 1 \(events-tool-calls\).*differs/);
    await using olderModel = new ClickHouseReadModel(config, { migrations: CLICKHOUSE_MIGRATIONS.slice(0, 1) });
    await assert.rejects(olderModel.migrate(), /read-model version 2 .*newer than this projector knows \(1\)/);
  });
});

