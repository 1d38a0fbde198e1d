/**
 * The governance's enforcement state changes only by decisions made durable: a charge is
 * speculative until its append resolves (confirm) and undone when the log refuses it (cancel), so
 * the state after refusals equals the fold of what the log holds. And it stays bounded: a million
 * distinct calls leave only what can still change a decision.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyBundle } from '#schemas';
import type { AttestEvent, EventDraft, Principal } from '#schemas';
import { LimitsRebuilder, PRUNE_EVERY_COUNTED, snapshotLimits } from '#projections';
import { Governance } from './governance.ts';
import { draft } from './recorder.ts';

const AGENT: Principal = { kind: 'apiKey', id: 'bot', tenant: 't1', roles: [] };
const session = { tenant: 't1', stream: 'session-g', actor: AGENT };

function governance(policy: unknown): Governance {
  return new Governance(parsePolicyBundle(policy).bundle);
}

/** The drafts a session records for an allowed tools/call, sealed as the log would (seq/hash do not matter to the limits fold). */
function callDrafts(callId: string, tool: string, args: unknown, enforcement: object): EventDraft[] {
  return [
    draft(session, 'RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 1, upstream: 'fx', target: tool, params: { recording: 'digest', digest: `sha256:${'0'.repeat(64)}`, bytes: 2 } }, { callId }),
    draft(session, 'DecisionMade', { decision: 'allow', stage: 'policy', ruleId: 'r', reason: 'ok', route: 'forward', enforcement: enforcement as never }, { callId }),
  ];
}

const sealed = (drafts: readonly EventDraft[]): AttestEvent[] => drafts.map((d, i) => ({ ...d, seq: i + 1, prevHash: null, hash: '0'.repeat(64) }));

describe('governance: enforcement state only from durable decisions', () => {
  const POLICY = {
    defaultEffect: 'allow',
    rateLimits: [{ id: 'per-key', scope: 'key', capacity: 100, refillPerSecond: 1 }],
    budgets: [{ id: 'daily', scope: 'tenant', period: 'day', maxCalls: 10 }],
    loopGuard: { maxRepeats: 50, windowMs: 60_000 },
  };

  it('given appends the log refuses, then the state is the fold of what the log holds, and refused calls spent no budget', () => {
    const g = governance(POLICY);
    const log: AttestEvent[] = [];
    let allowed = 0;
    for (let i = 0; i < 30 && allowed < 20; i++) {
      const verdict = g.check(AGENT, 'fx', 'read', { n: i }, Date.now());
      if (verdict.effect !== 'allow') break;
      const drafts = callDrafts(`c${i}`, 'read', { n: i }, verdict.enforcement);
      const charge = g.charge(verdict.meter, drafts[1] as EventDraft);
      // Every third append is refused by the log (ATTEST_LOG_BUSY, say): nothing of it is written.
      if (i % 3 === 1) {
        charge.cancel();
        continue;
      }
      log.push(...sealed(drafts));
      charge.confirm();
      allowed++;
    }
    assert.equal(allowed, 10, 'the daily budget of 10 is spent by the 10 recorded calls only');
    const rebuilt = new LimitsRebuilder(g.policy.limits);
    for (const event of log) rebuilt.push(event);
    const state = g.inspect();
    assert.deepEqual(state.durable, snapshotLimits(rebuilt.state), 'the enforcement state equals the log’s fold');
    assert.deepEqual(state.speculative, state.durable, 'nothing left in flight');
    assert.equal(state.reserved, 0);
  });

  it('given charges in flight, then later decisions see them (no overshoot), and a cancel gives the budget back', () => {
    const g = governance({ defaultEffect: 'allow', budgets: [{ id: 'two', scope: 'tenant', period: 'day', maxCalls: 2 }] });
    const now = Date.now();
    const first = g.check(AGENT, 'fx', 'read', { n: 1 }, now);
    const second = g.check(AGENT, 'fx', 'read', { n: 2 }, now);
    assert.ok(first.effect === 'allow' && second.effect === 'allow');
    const a = g.charge(first.meter, callDrafts('a', 'read', {}, first.enforcement)[1] as EventDraft);
    const b = g.charge(second.meter, callDrafts('b', 'read', {}, second.enforcement)[1] as EventDraft);
    assert.equal(g.check(AGENT, 'fx', 'read', { n: 3 }, now).effect, 'deny', 'two charges in flight spend the budget');
    a.cancel();
    assert.equal(g.check(AGENT, 'fx', 'read', { n: 3 }, now).effect, 'allow', 'the refused one gave its call back');
    b.confirm();
    assert.equal(g.inspect().reserved, 0);
    a.confirm(); // after a cancel: nothing
    assert.deepEqual(g.inspect().durable.budgets.map(([, counter]) => (counter as { calls: number }).calls), [1]);
  });

  it('a million distinct calls leave bounded state: loop windows, buckets and past periods are pruned', { timeout: 120_000 }, () => {
    const g = governance({
      defaultEffect: 'allow',
      rateLimits: [{ id: 'per-key', scope: 'key', capacity: 1_000_000, refillPerSecond: 1_000 }],
      budgets: [{ id: 'hourly', scope: 'tenant', period: 'hour', maxCalls: 10_000_000 }],
      loopGuard: { maxRepeats: 3, windowMs: 10_000 },
    });
    const start = Date.parse('2026-12-01T00:00:00.000Z');
    const calls = 1_000_000;
    let peakLoops = 0;
    for (let i = 0; i < calls; i++) {
      // One distinct call every 2 ms (5 s per 2,500 calls): only the last 10 s of windows can matter.
      const at = start + i * 2;
      const meter = { at, principal: AGENT, upstream: 'fx', tool: 'read', argumentsDigest: `sha256:${i.toString(16).padStart(64, '0')}`, cost: 1, limits: ['per-key', 'hourly'] };
      const decision = { ...draft(session, 'DecisionMade', { decision: 'allow', stage: 'policy', ruleId: 'r', reason: 'ok', route: 'forward' }, { callId: `c${i}` }), occurredAt: new Date(at).toISOString() } as EventDraft;
      g.charge(meter, decision).confirm();
      if (i % 50_000 === 0) peakLoops = Math.max(peakLoops, g.inspect().durable.loops.length);
    }
    const state = g.inspect().durable;
    // 10 s of windows is 5,000 calls, plus at most PRUNE_EVERY_COUNTED between two prunes.
    assert.ok(peakLoops <= 5_000 + PRUNE_EVERY_COUNTED, `loop windows stayed bounded: peak ${peakLoops}`);
    assert.ok(state.loops.length <= 5_000 + PRUNE_EVERY_COUNTED, `${state.loops.length} loop windows at the end`);
    assert.ok(state.budgets.length <= 2, 'one counter per period in progress (and the one just ended)');
  });
});
