/**
 * The switch of governance during a reload, on a real file log: a call decided under the old
 * policy while the new one is being rebuilt from the log (its DecisionMade not yet durable, so
 * the rebuild cannot read it) still counts against a limit id the new policy keeps.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openFileLog } from '#eventlog';
import type { EventLog } from '#eventlog';
import { parseConfig, SYSTEM_PRINCIPAL } from '#schemas';
import type { Principal } from '#schemas';
import { ApiKeyStore } from './auth/api-keys.ts';
import { Governance } from './governance.ts';
import { LiveConfig } from './live-config.ts';
import { createLogger } from './logger.ts';
import { draft, Recorder } from './recorder.ts';
import { ConfigReloader } from './reload.ts';

const AGENT: Principal = { kind: 'apiKey', id: 'agent', tenant: 't1', roles: [] };

function configWith(dir: string, rules: unknown[]) {
  return parseConfig({
    log: { backend: 'file', dir },
    upstreams: { fx: { transport: 'stdio', command: 'node' } },
    policy: { defaultEffect: 'allow', rules, budgets: [{ id: 'daily', scope: 'tenant', period: 'day', maxCalls: 2 }] },
  });
}

describe('reload: limits across the switch', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('replays a charge made under the old governance that the rebuild could not read', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-reload-int-'));
    dirs.push(dir);
    const log = await openFileLog({ dir, segmentBytes: 1 << 20, appendTimeoutMs: 5000, maxBatchEvents: 100, fsync: true });
    let reading: () => void = () => undefined;
    const readStarted = new Promise<void>((resolve) => (reading = resolve));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The rebuild's read waits at the gate: the window in which a call is decided under the old policy.
    const gated = new Proxy(log, {
      get(target, property, receiver) {
        if (property === 'read') {
          return async function* read() {
            reading();
            await gate;
            yield* target.read();
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as EventLog;
    try {
      const first = configWith(dir, []);
      const policy = first.config.policy;
      assert.ok(policy !== undefined);
      const old = new Governance(policy);
      const live = new LiveConfig({ config: first.config, configHash: first.configHash, keys: new ApiKeyStore([]), governance: old });
      const context = { tenant: SYSTEM_PRINCIPAL.tenant, stream: 'system-test', actor: SYSTEM_PRINCIPAL };
      const reloader = new ConfigReloader({ live, recorder: new Recorder(gated), log: gated, systemContext: context, logger: createLogger('silent'), load: () => configWith(dir, [{ id: 'changed', effect: 'allow', when: "tool == 'rate'" }]) });

      const reloading = reloader.reload('admin');
      await readStarted;
      const verdict = old.check(AGENT, 'fx', 'rate', {}, Date.now());
      assert.equal(verdict.effect, 'allow');
      if (verdict.effect === 'allow') old.charge(verdict.meter, draft({ tenant: 't1', stream: 'session-x', actor: AGENT }, 'DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'default', reason: 'test', route: 'forward' }, { callId: 'c1' }));
      release();
      const outcome = await reloading;
      assert.equal(outcome.applied, true);

      const next = live.current.governance;
      assert.ok(next !== undefined && next !== old, 'a changed policy gets a new governance');
      const second = next.check(AGENT, 'fx', 'rate', {}, Date.now());
      assert.equal(second.effect, 'allow', 'one of two calls spent');
      if (second.effect === 'allow') next.charge(second.meter, draft({ tenant: 't1', stream: 'session-x', actor: AGENT }, 'DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'changed', reason: 'test', route: 'forward' }, { callId: 'c2' }));
      const third = next.check(AGENT, 'fx', 'rate', {}, Date.now());
      assert.equal(third.effect, 'deny', 'the call decided during the rebuild still counts');
      assert.equal(third.effect === 'deny' ? third.error.code : '', 'ATTEST_BUDGET_EXHAUSTED');
      assert.equal(old.onCharge, undefined, 'the old governance is no longer tapped');
    } finally {
      await log.close();
    }
  });
});
