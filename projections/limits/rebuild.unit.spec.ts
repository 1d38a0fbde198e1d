import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf, parsePolicyBundle, SCHEMA_VERSION } from '#schemas';
import type { AttestEvent, DecisionEnforcement, Principal } from '#schemas';
import { compileCostModel } from './cost-model.ts';
import { checkLimits, emptyEnforcementState, evolveLimits, snapshotLimits } from './enforcement.ts';
import type { LimitsConfig, MeteredCall } from './enforcement.ts';
import { CallCountedTranslator, LimitsRebuilder, rebuildHorizon, rebuildLimits } from './rebuild.ts';

/** Small deterministic PRNG (mulberry32): a failing seed reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let seq = 0;
/**
 * A sealed-looking event: the rebuild reads envelope and data only, so chain fields are filler.
 * Built loosely and asserted to AttestEvent because DecisionMade's `enforcement` is the field
 * proposed for events.ts and not in its type yet.
 */
function event(type: 'RequestReceived' | 'DecisionMade', at: number, actor: Principal, callId: string, data: Record<string, unknown>): AttestEvent {
  seq += 1;
  return {
    id: `00000000-0000-7000-8000-${String(seq).padStart(12, '0')}`,
    schemaVersion: SCHEMA_VERSION,
    type,
    occurredAt: new Date(at).toISOString(),
    tenant: actor.tenant,
    stream: `session-${actor.id}`,
    callId,
    actor,
    seq,
    prevHash: null,
    hash: '0'.repeat(64),
    data,
  } as unknown as AttestEvent;
}

function request(at: number, actor: Principal, callId: string, upstream: string, tool: string, args: unknown, method = 'tools/call', from = 'agent'): AttestEvent {
  const params = { name: `${upstream}__${tool}`, arguments: args, _meta: { traceparent: `00-${callId.padStart(32, '0')}-00f067aa0ba902b7-01` } };
  return event('RequestReceived', at, actor, callId, { from, method, jsonrpcId: 1, upstream, target: tool, params: { recording: 'digest', digest: digestOf(params), bytes: 10 } });
}

/** `hold` is the proposed third decision (approval); the rebuild must already wait for the decision after it. */
function decision(at: number, actor: Principal, callId: string, verdict: 'allow' | 'deny' | 'hold', route: 'forward' | 'local', enforcement?: DecisionEnforcement): AttestEvent {
  return event('DecisionMade', at, actor, callId, { decision: verdict, stage: 'limits', ruleId: 'r', reason: 'r', route, ...(enforcement !== undefined && { enforcement }) });
}

const principals: readonly Principal[] = [
  { kind: 'apiKey', id: 'a1', tenant: 'acme', team: 'eng', roles: [] },
  { kind: 'apiKey', id: 'a2', tenant: 'acme', team: 'eng', roles: [] },
  { kind: 'apiKey', id: 'b1', tenant: 'acme', team: 'ops', roles: [] },
  { kind: 'jwt', id: 'solo', tenant: 'acme', roles: [] },
  { kind: 'apiKey', id: 'z1', tenant: 'zeta', team: 'eng', roles: [] },
];
const tools = [['fs', 'read_file'], ['fs', 'write_file'], ['search', 'web']] as const;

const config: LimitsConfig = parsePolicyBundle({
  rateLimits: [
    { id: 'key-rate', scope: 'key', capacity: 3, refillPerSecond: 1 },
    { id: 'team-rate', scope: 'team', capacity: 4, refillPerSecond: 1.2 },
    { id: 'tenant-rate', scope: 'tenant', capacity: 5, refillPerSecond: 1.9 },
    { id: 'write-rate', scope: 'tool', capacity: 2, refillPerSecond: 0.7, match: 'tool == "write_file"' },
  ],
  budgets: [
    { id: 'key-hour', scope: 'key', period: 'hour', maxCalls: 25 },
    { id: 'team-day', scope: 'team', period: 'day', maxCost: 90 },
    { id: 'tenant-month', scope: 'tenant', period: 'month', maxCalls: 40, maxCost: 200, match: 'upstream == "search"' },
  ],
  costs: { 'search__*': 3, 'fs__write_file': 2, 'fs__read_file': 0.5 },
  loopGuard: { maxRepeats: 3, windowMs: 4000 },
}).bundle;

/**
 * Plays a random sequence through the live path (check, then count when allowed) and records
 * the events the gateway would append, in the order it would append them.
 */
function simulate(seed: number, calls: number) {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const costs = compileCostModel(config.costs);
  const live = emptyEnforcementState();
  const events: AttestEvent[] = [];
  let now = Date.parse('2025-01-31T23:20:00.000Z'); // crosses an hour, a day and a month
  let counted = 0;
  let refused = 0;
  const tripped = new Set<string>();
  for (let i = 0; i < calls; i += 1) {
    now += random() < 0.05 ? Math.floor(random() * 20 * 60_000) : Math.floor(random() * 700);
    const actor = pick(principals);
    const [upstream, tool] = pick(tools);
    const args = { path: pick(['/a', '/b']) };
    const callId = `call-${seed}-${i}`;
    const method = random() < 0.1 ? 'resources/read' : 'tools/call';
    events.push(request(now, actor, callId, upstream, tool, args, method));
    if (method !== 'tools/call') {
      events.push(decision(now, actor, callId, 'allow', 'forward'));
      continue;
    }
    if (random() < 0.1) {
      events.push(decision(now, actor, callId, 'deny', 'local')); // refused by policy
      continue;
    }
    if (random() < 0.05) {
      // A server→client request relayed during the call: never metered.
      events.push(request(now, actor, `relay-${callId}`, upstream, tool, {}, 'sampling/createMessage', 'upstream'), decision(now, actor, `relay-${callId}`, 'allow', 'forward'));
    }
    const limits = [...config.rateLimits, ...config.budgets]
      .filter((l) => l.match === undefined || (l.id === 'write-rate' ? tool === 'write_file' : upstream === 'search'))
      .map((l) => l.id);
    const call: MeteredCall = { at: now, principal: actor, upstream, tool, argumentsDigest: digestOf(args), cost: costs.costOf(upstream, tool), limits };
    const verdict = checkLimits(live, config, call);
    // The DecisionMade draft is stamped a little after the check; the count uses its time.
    const decidedAt = now + Math.floor(random() * 3);
    if (verdict.effect === 'deny') {
      refused += 1;
      tripped.add(verdict.trip.limitId);
      events.push(decision(decidedAt, actor, callId, 'deny', 'local', { cost: call.cost, limits, argumentsDigest: call.argumentsDigest, trip: verdict.trip }));
      continue;
    }
    counted += 1;
    evolveLimits(live, config, { type: 'CallCounted', ...call, at: decidedAt });
    events.push(decision(decidedAt, actor, callId, 'allow', 'forward', { cost: call.cost, limits, argumentsDigest: call.argumentsDigest }));
  }
  return { live, events, counted, refused, tripped, end: now };
}

describe('rebuild from the event log', () => {
  it('gives exactly the live state for generated sequences (property over seeds)', () => {
    const tripped = new Set<string>();
    for (let seed = 1; seed <= 25; seed += 1) {
      const run = simulate(seed, 400);
      assert.ok(run.counted > 50 && run.refused > 10, `seed ${seed}: the sequence exercises both outcomes (${run.counted} counted, ${run.refused} refused)`);
      assert.deepEqual(snapshotLimits(rebuildLimits(run.events, config)), snapshotLimits(run.live), `seed ${seed}`);
      for (const id of run.tripped) tripped.add(id);
    }
    // The generator is only worth something if every limit, of every kind and scope, tripped somewhere.
    assert.deepEqual([...tripped].sort(), ['key-hour', 'key-rate', 'loop-guard', 'team-day', 'team-rate', 'tenant-month', 'tenant-rate', 'write-rate']);
  });

  it('decides the next call the same way after a restart as without one', () => {
    const { live, events, end } = simulate(99, 400);
    const rebuilt = rebuildLimits(events, config);
    for (const [principal, [upstream, tool]] of principals.flatMap((p) => tools.map((t) => [p, t] as const))) {
      const call: MeteredCall = { at: end + 1, principal, upstream, tool, argumentsDigest: digestOf({ path: '/a' }), cost: 1, limits: ['key-rate', 'team-rate', 'key-hour', 'team-day'] };
      assert.deepEqual(checkLimits(rebuilt, config, call), checkLimits(live, config, call));
    }
  });

  it('never resets a spent budget: a restart refuses what the live gateway refused', () => {
    const budget = parsePolicyBundle({ budgets: [{ id: 'day', scope: 'key', period: 'day', maxCalls: 2 }], loopGuard: null }).bundle;
    const [p] = principals;
    assert.ok(p !== undefined);
    const t = Date.parse('2025-05-05T10:00:00.000Z');
    const enforcement = (path: string): DecisionEnforcement => ({ cost: 1, limits: ['day'], argumentsDigest: digestOf({ path }) });
    const log = [
      request(t, p, 'c1', 'fs', 'read_file', { path: '/1' }), decision(t, p, 'c1', 'allow', 'forward', enforcement('/1')),
      request(t + 1, p, 'c2', 'fs', 'read_file', { path: '/2' }), decision(t + 1, p, 'c2', 'allow', 'forward', enforcement('/2')),
    ];
    const state = rebuildLimits(log, budget);
    const verdict = checkLimits(state, budget, { at: t + 2, principal: p, upstream: 'fs', tool: 'read_file', argumentsDigest: digestOf({}), cost: 1, limits: ['day'] });
    assert.ok(verdict.effect === 'deny' && verdict.trip.kind === 'budget' && verdict.trip.spent === 2);
  });

  it('falls back for decisions recorded without enforcement: cost model, unconditional limits, params digest', () => {
    const [p] = principals;
    assert.ok(p !== undefined);
    const t = Date.parse('2025-05-05T10:00:00.000Z');
    const translator = new CallCountedTranslator(config);
    const req = request(t, p, 'old', 'search', 'web', { q: 'x' });
    assert.equal(translator.translate(req), undefined);
    assert.equal(translator.pending.size, 1);
    const counted = translator.translate(decision(t + 3, p, 'old', 'allow', 'forward'));
    assert.deepEqual(counted, {
      type: 'CallCounted',
      at: t + 3,
      principal: { id: 'a1', tenant: 'acme', team: 'eng' },
      upstream: 'search',
      tool: 'web',
      argumentsDigest: req.type === 'RequestReceived' ? req.data.params.digest : '',
      cost: 3,
      limits: ['key-rate', 'team-rate', 'tenant-rate', 'key-hour', 'team-day'],
    });
    assert.equal(translator.pending.size, 0);
  });

  it('counts only allowed, forwarded agent calls of the metered methods (a held call once it is allowed)', () => {
    const [p] = principals;
    assert.ok(p !== undefined);
    const t = Date.parse('2025-05-05T10:00:00.000Z');
    const translator = new CallCountedTranslator(config, { methods: ['tools/call', 'prompts/get'] });
    const outcomes = [
      [request(t, p, 'denied', 'fs', 'read_file', {}), decision(t, p, 'denied', 'deny', 'local')],
      [request(t, p, 'local', 'fs', 'read_file', {}), decision(t, p, 'local', 'allow', 'local')],
      [request(t, p, 'list', 'fs', 'read_file', {}, 'tools/list'), decision(t, p, 'list', 'allow', 'forward')],
      [request(t, p, 'relay', 'fs', 'read_file', {}, 'tools/call', 'upstream'), decision(t, p, 'relay', 'allow', 'forward')],
      [decision(t, p, 'orphan', 'allow', 'forward')],
      [request(t, p, 'prompt', 'fs', 'greet', {}, 'prompts/get'), decision(t, p, 'prompt', 'allow', 'forward')],
      [request(t, p, 'granted', 'fs', 'write_file', {}), decision(t, p, 'granted', 'hold', 'local'), decision(t + 5000, p, 'granted', 'allow', 'forward')],
      [request(t, p, 'rejected', 'fs', 'write_file', {}), decision(t, p, 'rejected', 'hold', 'local'), decision(t + 5000, p, 'rejected', 'deny', 'local')],
    ].map((events) => events.map((e) => translator.translate(e)).filter((c) => c !== undefined).length);
    assert.deepEqual(outcomes, [0, 0, 0, 0, 0, 1, 1, 0]);
    assert.equal(translator.pending.size, 0);
  });

  it('streams: pushing events one by one gives the batch result', () => {
    const { events } = simulate(7, 200);
    const rebuilder = new LimitsRebuilder(config);
    for (const e of events) rebuilder.push(e);
    assert.deepEqual(snapshotLimits(rebuilder.state), snapshotLimits(rebuildLimits(events, config)));
  });

  it('names the earliest time that can still matter', () => {
    const now = Date.parse('2025-03-10T12:34:56.000Z');
    assert.equal(new Date(rebuildHorizon(config, now)).toISOString(), '2025-03-01T00:00:00.000Z');
    const short = parsePolicyBundle({ rateLimits: [{ id: 'r', scope: 'key', capacity: 10, refillPerSecond: 2 }], loopGuard: { maxRepeats: 2, windowMs: 1000 } }).bundle;
    assert.equal(rebuildHorizon(short, now), now - 5000);
  });
});
