import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '#schemas';
import type { Principal } from '#schemas';
import { ApprovalBroker, mayDecide } from './broker.ts';
import type { ApprovalOutcome, PendingApproval } from './broker.ts';

const agent: Principal = { kind: 'apiKey', id: 'bot', tenant: 't1', roles: ['dev', 'payments-lead'] };
const lead: Principal = { kind: 'apiKey', id: 'lead', tenant: 't1', roles: ['payments-lead'] };
const foreignLead: Principal = { kind: 'apiKey', id: 'lead2', tenant: 't2', roles: ['payments-lead'] };
const admin: Principal = { kind: 'apiKey', id: 'root', tenant: 'ops', roles: ['attest:admin', 'payments-lead'] };
const dev: Principal = { kind: 'apiKey', id: 'dev', tenant: 't1', roles: ['dev'] };

function approval(id: string, ms = 60_000): PendingApproval {
  return { id, sessionId: 's', tenant: 't1', agent, upstream: 'u', tool: 'pay', argumentsDigest: `sha256:${'a'.repeat(64)}`, ruleId: 'r', reason: 'held', approverRoles: ['payments-lead'], requestedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + ms).toISOString() };
}

function recording(): { outcomes: ApprovalOutcome[]; settle: (o: ApprovalOutcome) => Promise<string> } {
  const outcomes: ApprovalOutcome[] = [];
  return { outcomes, settle: (o) => (outcomes.push(o), Promise.resolve(`event-${outcomes.length}`)) };
}

describe('who may decide an approval', () => {
  it('needs one of its roles, the agent\'s tenant (admins excepted), and never the agent itself', () => {
    assert.equal(mayDecide(lead, approval('a')), undefined);
    assert.equal(mayDecide(admin, approval('a')), undefined, 'an admin with the role may decide across tenants');
    assert.match(mayDecide(agent, approval('a')) ?? '', /cannot approve its own call/);
    assert.match(mayDecide(dev, approval('a')) ?? '', /needs one of the roles "payments-lead"/);
    assert.match(mayDecide(foreignLead, approval('a')) ?? '', /belongs to tenant "t1"/);
  });
});

describe('ApprovalBroker', () => {
  it('settles once: the first decision wins, a second finds nothing pending', async () => {
    const broker = new ApprovalBroker('gw-1', () => ['payments-lead']);
    const r = recording();
    broker.open(approval('a'), r.settle);
    assert.deepEqual(broker.list(lead).map((a) => a.id), ['a']);
    assert.deepEqual(broker.list(agent), [], 'the agent does not see its own call as something to decide');
    assert.deepEqual(broker.list(dev), []);
    const decided = await broker.decide('a', lead, 'grant', 'ok');
    assert.equal(decided.eventId, 'event-1');
    assert.deepEqual(r.outcomes, [{ kind: 'granted', approver: lead, reason: 'ok' }]);
    await assert.rejects(broker.decide('a', lead, 'deny', 'late'), (e: unknown) => e instanceof GatewayError && e.code === 'ATTEST_NOT_FOUND' && e.httpStatus === 404);
    assert.equal(broker.withdraw('a', 'gone'), undefined);
    assert.equal(broker.size, 0);
  });

  it('refuses a forbidden decider without settling', async () => {
    const broker = new ApprovalBroker('gw-1', () => []);
    const r = recording();
    broker.open(approval('b'), r.settle);
    await assert.rejects(broker.decide('b', agent, 'grant', 'me'), (e: unknown) => e instanceof GatewayError && e.code === 'ATTEST_FORBIDDEN' && /own call/.test(e.message));
    assert.equal(r.outcomes.length, 0);
    assert.equal(broker.size, 1);
    await broker.withdraw('b', 'cancelled');
    assert.deepEqual(r.outcomes, [{ kind: 'withdrawn', reason: 'cancelled' }]);
  });

  it('expires at the deadline (fail closed)', async () => {
    const broker = new ApprovalBroker('gw-1', () => []);
    const r = recording();
    broker.open(approval('c', 30), r.settle);
    for (let i = 0; i < 100 && r.outcomes.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(r.outcomes, [{ kind: 'expired' }]);
    assert.equal(broker.size, 0);
  });

  it('opens the API to attest:approver and to every role a rule names', () => {
    const broker = new ApprovalBroker('gw-1', () => ['payments-lead']);
    assert.deepEqual([...broker.approverRoles].sort(), ['attest:approver', 'payments-lead']);
  });
});
