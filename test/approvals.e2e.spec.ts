/**
 * Approvals through the real gateway and the real fixture upstream: a `hold` rule stops a call,
 * a person grants or denies it over the approvals API (or the CLI), or nobody does in time. The
 * fixture's journal is the ground truth for what reached the upstream and when; the log must
 * tell each call's story in order, with the approver's identity and reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey, serveStdio } from '#gateway';
import { openFileLog } from '#eventlog';
import { newEventId, nowIso, SCHEMA_VERSION } from '#schemas';
import type { AttestEvent, PolicyBundleInput, Principal } from '#schemas';
import { parseJournal } from './fixtures/upstream/journal.ts';
import type { JournalEntry } from './fixtures/upstream/journal.ts';
import { ACCEPT_BOTH, errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import type { RawResponse } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { runCli } from './harness/cli.ts';
import { stdioAgent } from './support/stdio-agent.ts';
import { testLogger } from './harness/log.ts';
import type { CliResult } from './harness/cli.ts';

const KEYS = {
  agent: 'atk_agent_key_0123456789',
  lead: 'atk_lead_key_0123456789',
  approver: 'atk_approver_key_0123456789',
  admin: 'atk_admin_key_0123456789',
  outsider: 'atk_outsider_key_0123456789',
} as const;
type Who = keyof typeof KEYS;

const POLICY: PolicyBundleInput = {
  defaultEffect: 'deny',
  rules: [
    { id: 'expire-fast', effect: 'hold', when: "tool == 'echo' && args.text == 'expire'", approval: { timeoutMs: 400, approverRoles: ['payments-lead'] } },
    { id: 'adds-need-approval', effect: 'hold', when: "tool == 'add'", approval: { timeoutMs: 30_000, approverRoles: ['payments-lead'] } },
    { id: 'echo', effect: 'allow', when: "tool == 'echo'" },
  ],
  // Charged only when a call is finally allowed: the agent's denied, expired and withdrawn calls spend nothing.
  budgets: [{ id: 'agent-adds', scope: 'key', period: 'day', maxCalls: 2, match: "tool == 'add'" }],
  loopGuard: null,
};

function gatewayKeys(): { id: string; hash: string; tenant: string; roles: string[] }[] {
  return [
    { id: 'agent', hash: hashApiKey(KEYS.agent), tenant: 't1', roles: ['dev'] },
    { id: 'lead', hash: hashApiKey(KEYS.lead), tenant: 't1', roles: ['payments-lead'] },
    { id: 'approver', hash: hashApiKey(KEYS.approver), tenant: 't1', roles: ['payments-lead'] },
    { id: 'admin', hash: hashApiKey(KEYS.admin), tenant: 'ops', roles: ['attest:admin'] },
    { id: 'outsider', hash: hashApiKey(KEYS.outsider), tenant: 't1', roles: ['dev'] },
  ];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Pending {
  id: string;
  tool: string;
  ruleId: string;
  arguments?: unknown;
  agent: { id: string };
  approverRoles: string[];
  expiresAt: string;
}

describe('approvals through the gateway', () => {
  let base: string;
  let journal: string;
  let gw: TestGateway;
  let mcp: string;

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'attest-approvals-'));
    journal = path.join(base, 'journal.jsonl');
    gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream({ env: { FIXTURE_JOURNAL: journal } }) }, keys: gatewayKeys(), logDir: path.join(base, 'log'), policy: POLICY });
    mcp = `${gw.url}/mcp`;
  });
  after(async () => {
    await gw.close();
    await rm(base, { recursive: true, force: true });
  });

  async function session(who: Who): Promise<{ call: (id: number, name: string, args: Record<string, unknown>) => Promise<RawResponse>; headers: Record<string, string> }> {
    const auth = { authorization: `Bearer ${KEYS[who]}` };
    const { sessionId, result } = await rawInitialize(mcp, auth);
    const headers = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    return { headers, call: (id, name, args) => rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: `fixture__${name}`, arguments: args } }, headers) };
  }

  async function admin(who: Who, method: 'GET' | 'POST', route: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${gw.url}/admin/v1/approvals${route}`, {
      method,
      headers: { authorization: `Bearer ${KEYS[who]}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** The pending approval whose arguments match, as `who` sees it; waits for it (bounded). */
  async function pendingFor(who: Who, match: (p: Pending) => boolean): Promise<Pending> {
    for (let i = 0; i < 200; i++) {
      const listed = await admin(who, 'GET', '');
      assert.equal(listed.status, 200, JSON.stringify(listed.json));
      const found = (listed.json['approvals'] as Pending[]).find(match);
      if (found !== undefined) return found;
      await sleep(50);
    }
    throw new Error('the held call never appeared in the pending list');
  }

  async function journalCalls(): Promise<JournalEntry[]> {
    const text = await readFile(journal, 'utf8').catch(() => '');
    return parseJournal(text).filter((e) => e.method === 'tools/call');
  }

  async function eventsOf(callId: string): Promise<AttestEvent[]> {
    return (await gw.events()).filter((e) => e.callId === callId);
  }

  it('granted: the call waits, is forwarded only after the grant, and the log tells it in order', { timeout: 60_000 }, async () => {
    const agent = await session('agent');
    const answer = agent.call(1, 'add', { a: 2, b: 3 });
    const pending = await pendingFor('approver', (p) => JSON.stringify(p.arguments) === JSON.stringify({ a: 2, b: 3 }));
    assert.equal(pending.tool, 'add');
    assert.equal(pending.ruleId, 'adds-need-approval');
    assert.equal(pending.agent.id, 'agent');
    assert.deepEqual(pending.approverRoles, ['payments-lead']);
    await sleep(200);
    assert.equal((await journalCalls()).filter((e) => e.tool === 'add').length, 0, 'nothing reaches the upstream before the grant');

    const outsider = await admin('outsider', 'GET', '');
    assert.equal(outsider.status, 403, 'a key without an approver role cannot even list');
    const seenByAdmin = await admin('admin', 'GET', '');
    assert.ok((seenByAdmin.json['approvals'] as Pending[]).some((p) => p.id === pending.id), 'an admin sees every pending approval');
    const adminGrant = await admin('admin', 'POST', `/${pending.id}/grant`, { reason: 'admin is not in approverRoles' });
    assert.equal(adminGrant.status, 403, 'the rule names who may approve: admins are not among them here');
    const noReason = await admin('approver', 'POST', `/${pending.id}/grant`, {});
    assert.equal(noReason.status, 400, 'a decision needs a reason');

    const granted = await admin('approver', 'POST', `/${pending.id}/grant`, { reason: 'checked the amounts' });
    assert.equal(granted.status, 200, JSON.stringify(granted.json));
    assert.equal(granted.json['outcome'], 'granted');
    const result = (await answer).messages.find((m) => m['id'] === 1)?.['result'] as { structuredContent?: { sum: number } } | undefined;
    assert.deepEqual(result?.structuredContent, { sum: 5 });
    const again = await admin('approver', 'POST', `/${pending.id}/grant`, { reason: 'twice' });
    assert.equal(again.status, 404, 'an approval settles once');
    assert.equal((again.json['error'] as { data: { errorCode: string } }).data.errorCode, 'ATTEST_NOT_FOUND');

    const reached = (await journalCalls()).filter((e) => e.tool === 'add' && JSON.stringify(e.arguments) === JSON.stringify({ a: 2, b: 3 }));
    assert.equal(reached.length, 1);
    const events = await eventsOf(pending.id);
    assert.deepEqual(events.map((e) => e.type), ['RequestReceived', 'ApprovalRequested', 'ApprovalGranted', 'DecisionMade', 'ResultReturned']);
    const [request, requested, grant, decision] = events;
    assert.equal(request?.actor.id, 'agent');
    assert.ok(requested?.type === 'ApprovalRequested' && requested.data.ruleId === 'adds-need-approval' && requested.data.timeoutMs === 30_000 && /^sha256:/.test(requested.data.argumentsDigest));
    assert.ok(grant?.type === 'ApprovalGranted' && grant.actor.id === 'approver' && grant.data.reason === 'checked the amounts');
    assert.equal(granted.json['eventId'], grant.id, 'the API answers with the event that recorded the grant');
    assert.ok(decision?.type === 'DecisionMade' && decision.data.decision === 'allow' && decision.data.stage === 'approval' && decision.data.route === 'forward' && decision.data.enforcement !== undefined);
    assert.ok(Date.parse(reached[0]?.time ?? '') >= Date.parse(grant.occurredAt), 'the upstream received the call after the grant was recorded');
  });

  it('denied: the agent gets -32024 with the approver and reason; the upstream never sees the call', { timeout: 60_000 }, async () => {
    const agent = await session('agent');
    const answer = agent.call(2, 'add', { a: 7, b: 7 });
    const pending = await pendingFor('approver', (p) => JSON.stringify(p.arguments) === JSON.stringify({ a: 7, b: 7 }));
    const denied = await admin('approver', 'POST', `/${pending.id}/deny`, { reason: 'not today' });
    assert.equal(denied.status, 200);
    const error = errorOf(await answer, 2);
    assert.equal(error.code, -32024);
    assert.equal(error.data?.['errorCode'], 'ATTEST_APPROVAL_DENIED');
    assert.equal(error.data?.['approver'], 'approver');
    assert.match(error.message, /not today/);
    await sleep(200);
    assert.equal((await journalCalls()).filter((e) => JSON.stringify(e.arguments) === JSON.stringify({ a: 7, b: 7 })).length, 0);
    const events = await eventsOf(pending.id);
    assert.deepEqual(events.map((e) => e.type), ['RequestReceived', 'ApprovalRequested', 'ApprovalDenied', 'DecisionMade', 'ErrorReturned']);
    assert.ok(events[2]?.actor.id === 'approver' && events[2].type === 'ApprovalDenied' && events[2].data.reason === 'not today');
    assert.ok(events[3]?.type === 'DecisionMade' && events[3].data.decision === 'deny' && events[3].data.stage === 'approval');
  });

  it('timed out: nobody decides, the call is denied with -32025 (fail closed)', { timeout: 60_000 }, async () => {
    const agent = await session('agent');
    const started = Date.now();
    const error = errorOf(await agent.call(3, 'echo', { text: 'expire' }), 3);
    assert.equal(error.code, -32025);
    assert.equal(error.data?.['errorCode'], 'ATTEST_APPROVAL_EXPIRED');
    assert.ok(Date.now() - started >= 350, 'it waited for the rule\'s timeout');
    assert.equal((await journalCalls()).filter((e) => e.tool === 'echo' && JSON.stringify(e.arguments) === JSON.stringify({ text: 'expire' })).length, 0);
    const callId = String(error.data?.['approvalId']);
    const events = await eventsOf(callId);
    assert.deepEqual(events.map((e) => e.type), ['RequestReceived', 'ApprovalRequested', 'ApprovalExpired', 'DecisionMade', 'ErrorReturned']);
    assert.equal(events[2]?.actor.kind, 'system');
    const late = await admin('approver', 'POST', `/${callId}/grant`, { reason: 'too late' });
    assert.equal(late.status, 404, 'a grant after the deadline finds nothing to grant');
  });

  it('an agent cannot approve its own call, even holding an approver role', { timeout: 60_000 }, async () => {
    const lead = await session('lead');
    const answer = lead.call(4, 'add', { a: 40, b: 2 });
    const pending = await pendingFor('approver', (p) => JSON.stringify(p.arguments) === JSON.stringify({ a: 40, b: 2 }));
    const ownList = await admin('lead', 'GET', '');
    assert.ok(!(ownList.json['approvals'] as Pending[]).some((p) => p.id === pending.id), 'the list shows only what the caller may decide: not its own calls');
    const self = await admin('lead', 'POST', `/${pending.id}/grant`, { reason: 'trust me' });
    assert.equal(self.status, 403);
    assert.match(String((self.json['error'] as { message: string }).message), /cannot approve its own call/);
    const rejected = (await gw.events()).filter((e) => e.type === 'RequestRejected' && e.actor.id === 'lead' && e.data.errorCode === 'ATTEST_FORBIDDEN');
    assert.equal(rejected.length, 1, 'the refused self-approval is recorded');
    assert.equal((await admin('approver', 'POST', `/${pending.id}/grant`, { reason: 'second pair of eyes' })).status, 200);
    assert.ok((await answer).messages.find((m) => m['id'] === 4)?.['result']);
    const grant = (await eventsOf(pending.id)).find((e) => e.type === 'ApprovalGranted');
    assert.equal(grant?.actor.id, 'approver');
  });

  it('the agent is told it waits (progress) and may withdraw the call by cancelling it', { timeout: 60_000 }, async () => {
    const agent = await session('agent');
    const controller = new AbortController();
    const response = await fetch(mcp, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: ACCEPT_BOTH, ...agent.headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'fixture__add', arguments: { a: 5, b: 5 }, _meta: { progressToken: 'wait-5' } } }),
      signal: controller.signal,
    });
    try {
      assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = response.body?.getReader();
      assert.ok(reader !== undefined);
      const first = await reader.read();
      const text = new TextDecoder().decode(first.value as Uint8Array);
      assert.match(text, /notifications\/progress/);
      assert.match(text, /wait-5/);
      assert.match(text, /waiting for approval/);
      const pending = await pendingFor('approver', (p) => JSON.stringify(p.arguments) === JSON.stringify({ a: 5, b: 5 }));
      const cancelled = await rawPost(mcp, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 5, reason: 'changed my mind' } }, agent.headers);
      assert.equal(cancelled.status, 202);
      let events: AttestEvent[] = [];
      for (let i = 0; i < 100 && !events.some((e) => e.type === 'ErrorReturned'); i++) {
        await sleep(50);
        events = await eventsOf(pending.id);
      }
      assert.deepEqual(events.filter((e) => e.type !== 'NotificationRelayed').map((e) => e.type), ['RequestReceived', 'ApprovalRequested', 'ApprovalWithdrawn', 'DecisionMade', 'ErrorReturned']);
      assert.ok(events.some((e) => e.type === 'ApprovalWithdrawn' && /changed my mind/.test(e.data.reason)));
      assert.equal((await admin('approver', 'POST', `/${pending.id}/grant`, { reason: 'x' })).status, 404, 'a withdrawn call cannot be granted');
      assert.equal((await journalCalls()).filter((e) => JSON.stringify(e.arguments) === JSON.stringify({ a: 5, b: 5 })).length, 0);
    } finally {
      controller.abort();
    }
  });

  it('the CLI lists and grants held calls on the running gateway', { timeout: 90_000 }, async () => {
    const agent = await session('agent');
    const answer = agent.call(6, 'add', { a: 4, b: 4 });
    const pending = await pendingFor('approver', (p) => JSON.stringify(p.arguments) === JSON.stringify({ a: 4, b: 4 }));
    const env = { ATTEST_ADMIN_KEY: KEYS.approver };
    const listed = await cli(['approvals', 'list', '--url', gw.url], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${pending.id}  t1/agent  fixture__add  rule adds-need-approval`, 'm'));
    const usage = await cli(['approvals', 'grant', pending.id, '--url', gw.url], env);
    assert.equal(usage.code, 2, 'a decision without --reason is a usage error');
    const forbidden = await cli(['approvals', 'list', '--url', gw.url], { ATTEST_ADMIN_KEY: KEYS.outsider });
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /HTTP 403, ATTEST_FORBIDDEN/);
    const granted = await cli(['approvals', 'grant', pending.id, '--reason', 'via the CLI', '--url', gw.url], env);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, new RegExp(`^granted ${pending.id}`));
    assert.ok((await answer).messages.find((m) => m['id'] === 6)?.['result']);
    const grant = (await eventsOf(pending.id)).find((e) => e.type === 'ApprovalGranted');
    assert.ok(grant?.type === 'ApprovalGranted' && grant.actor.id === 'approver' && grant.data.reason === 'via the CLI');
  });

  it('limits are charged once, on the grant: only the two granted adds spent the agent\'s budget, and a call the limits refuse is never held', { timeout: 60_000 }, async () => {
    const agent = await session('agent');
    const error = errorOf(await agent.call(7, 'add', { a: 9, b: 9 }), 7);
    assert.equal(error.code, -32021, JSON.stringify(error));
    assert.equal(error.data?.['limitId'], 'agent-adds');
    const events = await gw.events();
    const charged = events.filter((e) => e.type === 'DecisionMade' && e.data.decision === 'allow' && e.data.stage === 'approval' && e.actor.id === 'agent');
    assert.equal(charged.length, 2, 'granted (2+3) and the CLI grant (4+4); denied, withdrawn and refused calls are not charged');
    const refusedCall = events.find((e) => e.type === 'DecisionMade' && e.data.enforcement?.trip?.limitId === 'agent-adds');
    assert.ok(refusedCall !== undefined && !events.some((e) => e.type === 'ApprovalRequested' && e.callId === refusedCall.callId), 'nobody is asked to approve a call the limits refuse');
  });
});

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli(args, { env, timeoutMs: 60_000 });
}

describe('approvals across a gateway stop', () => {
  it('a clean stop withdraws held calls; a start expires approvals a crashed instance left pending', { timeout: 90_000 }, async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'attest-approvals-restart-'));
    const logDir = path.join(base, 'log');
    try {
      // What a crash leaves behind: a held call with no outcome, requested by this instance (gw-1).
      const crashed = newEventId();
      const agent: Principal = { kind: 'apiKey', id: 'agent', tenant: 't1', roles: ['dev'] };
      const envelope = { schemaVersion: SCHEMA_VERSION, tenant: 't1', stream: 'session-crashed', actor: agent, callId: crashed };
      const log = await openFileLog({ dir: logDir, segmentBytes: 1 << 20, appendTimeoutMs: 5000, maxBatchEvents: 100, fsync: true });
      await log.append([
        { ...envelope, id: newEventId(), occurredAt: nowIso(), type: 'RequestReceived', data: { from: 'agent', method: 'tools/call', jsonrpcId: 1, upstream: 'fixture', target: 'add', params: { recording: 'digest', digest: `sha256:${'0'.repeat(64)}`, bytes: 2 } } },
        { ...envelope, id: newEventId(), occurredAt: nowIso(), type: 'ApprovalRequested', data: { upstream: 'fixture', target: 'add', argumentsDigest: `sha256:${'0'.repeat(64)}`, ruleId: 'adds-need-approval', reason: 'held', approverRoles: ['payments-lead'], timeoutMs: 3_600_000, expiresAt: new Date(Date.now() + 3_600_000).toISOString(), instance: 'gw-1' } },
      ]);
      await log.close();

      const first = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: gatewayKeys(), logDir, policy: POLICY });
      let closedFirst = false;
      try {
        const expired = (await first.events()).filter((e) => e.callId === crashed).map((e) => e.type);
        assert.deepEqual(expired, ['RequestReceived', 'ApprovalRequested', 'ApprovalExpired', 'DecisionMade', 'ErrorReturned'], 'no dangling request after a restart');

        const auth = { authorization: `Bearer ${KEYS.agent}` };
        const { sessionId, result } = await rawInitialize(`${first.url}/mcp`, auth);
        const headers = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
        const held = rawPost(`${first.url}/mcp`, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'fixture__add', arguments: { a: 1, b: 2 } } }, headers).catch(() => undefined);
        let requested: AttestEvent | undefined;
        for (let i = 0; i < 200 && requested === undefined; i++) {
          await sleep(50);
          requested = (await first.events()).find((e) => e.type === 'ApprovalRequested' && e.callId !== crashed);
        }
        assert.ok(requested !== undefined, 'the call was held');
        await first.close();
        closedFirst = true;
        await held;

        const second = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: gatewayKeys(), logDir, policy: POLICY });
        try {
          const events = await second.events();
          const story = events.filter((e) => e.callId === requested.callId).map((e) => e.type);
          assert.deepEqual(story, ['RequestReceived', 'ApprovalRequested', 'ApprovalWithdrawn', 'DecisionMade', 'ErrorReturned'], 'a clean stop withdraws the held call');
          const sessionEvents = events.filter((e) => e.stream === requested.stream).map((e) => e.type);
          assert.ok(sessionEvents.indexOf('ApprovalWithdrawn') < sessionEvents.indexOf('SessionClosed'), 'withdrawn before the session closed');
          assert.equal(events.filter((e) => e.type === 'ApprovalExpired').length, 1, 'nothing left to expire on the second start');
        } finally {
          await second.close();
        }
      } finally {
        if (!closedFirst) await first.close();
      }
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});

describe('approvals on a stdio gateway', () => {
  it('a hold is refused at once with -32023: no approvals API could grant it', { timeout: 60_000 }, async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'attest-approvals-stdio-'));
    const agent = stdioAgent();
    const gateway = await serveStdio(
      { log: { backend: 'file', dir: path.join(base, 'log') }, auth: { keys: gatewayKeys() }, upstreams: { fixture: fixtureStdioUpstream() }, policy: POLICY },
      { stdin: agent.stdin, stdout: agent.stdout, env: { ATTEST_API_KEY: KEYS.agent }, logger: testLogger() },
    );
    try {
      await agent.initialize();
      agent.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__add', arguments: { a: 1, b: 1 } } });
      const error = (await agent.answer(2))['error'] as { code: number; data: Record<string, unknown> } | undefined;
      assert.equal(error?.code, -32023);
      assert.equal(error.data['errorCode'], 'ATTEST_APPROVAL_REQUIRED');
      assert.equal(error.data['ruleId'], 'adds-need-approval');
    } finally {
      await gateway.close('test done');
      await rm(base, { recursive: true, force: true });
    }
  });
});
