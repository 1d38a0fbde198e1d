/**
 * The switch of governance during a reload, on a real file log: a call decided under the old
 * policy while the new one is being rebuilt from the log (its DecisionMade not yet durable, so
 * the rebuild cannot read it) still counts against a limit id the new policy keeps. And a key
 * revoked or issued after the new key store read the log, before the swap, is in the new store.
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
import { ApiKeyStore, generateApiKey, hashApiKey } from './auth/api-keys.ts';
import { Governance } from './governance.ts';
import { LiveConfig } from './live-config.ts';
import { createLogger } from './logger.ts';
import { draft, Recorder } from './recorder.ts';
import { ConfigReloader } from './reload.ts';

const AGENT: Principal = { kind: 'apiKey', id: 'agent', tenant: 't1', roles: [] };

function configWith(dir: string, rules: unknown[], keys: unknown[] = []) {
  return parseConfig({
    log: { backend: 'file', dir },
    auth: { keys },
    upstreams: { fx: { transport: 'stdio', command: 'node' } },
    policy: { defaultEffect: 'allow', rules, budgets: [{ id: 'daily', scope: 'tenant', period: 'day', maxCalls: 2 }] },
  });
}

/** The log with its `nth` read (1-based) held at a gate: `held` resolves when that read starts, `release` lets it go on. */
function gateRead(log: EventLog, nth: number): { readonly log: EventLog; readonly held: Promise<void>; readonly release: () => void } {
  let reads = 0;
  let started: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (started = resolve));
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const gated = new Proxy(log, {
    get(target, property, receiver) {
      if (property === 'read') {
        return async function* read() {
          reads += 1;
          if (reads === nth) {
            started();
            await gate;
          }
          yield* target.read();
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { log: gated, held, release };
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
    // The rebuild's (first) read waits at the gate: the window in which a call is decided under the old policy.
    const { log: gated, held: readStarted, release } = gateRead(log, 1);
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
      // Charged and made durable (the session confirms once its append resolved) while the rebuild reads.
      if (verdict.effect === 'allow') old.charge(verdict.meter, draft({ tenant: 't1', stream: 'session-x', actor: AGENT }, 'DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'default', reason: 'test', route: 'forward' }, { callId: 'c1' })).confirm();
      release();
      const outcome = await reloading;
      assert.equal(outcome.applied, true);

      const next = live.current.governance;
      assert.ok(next !== undefined && next !== old, 'a changed policy gets a new governance');
      const second = next.check(AGENT, 'fx', 'rate', {}, Date.now());
      assert.equal(second.effect, 'allow', 'one of two calls spent');
      if (second.effect === 'allow') next.charge(second.meter, draft({ tenant: 't1', stream: 'session-x', actor: AGENT }, 'DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'changed', reason: 'test', route: 'forward' }, { callId: 'c2' })).confirm();
      const third = next.check(AGENT, 'fx', 'rate', {}, Date.now());
      assert.equal(third.effect, 'deny', 'the call decided during the rebuild still counts');
      assert.equal(third.effect === 'deny' ? third.error.code : '', 'ATTEST_BUDGET_EXHAUSTED');
      assert.equal(typeof old.onCharge, 'function', 'decisions of the old governance still in flight go to the new one when confirmed');
    } finally {
      await log.close();
    }
  });

  it('hands a key revoked or issued after the new store took over the run-time keys on to the new store', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-reload-keys-int-'));
    dirs.push(dir);
    const log = await openFileLog({ dir, segmentBytes: 1 << 20, appendTimeoutMs: 5000, maxBatchEvents: 100, fsync: true });
    const secret = generateApiKey();
    const configKeys = [{ id: 'k1', hash: hashApiKey(secret), tenant: 't1', allowTools: ['*'] }];
    // The new key store takes the run-time keys of the store in force; the governance rebuild's read
    // of the log (the only read) waits at the gate: the window after that and before the swap.
    const { log: gated, held: secondReadStarted, release } = gateRead(log, 1);
    try {
      const first = configWith(dir, [], configKeys);
      const policy = first.config.policy;
      assert.ok(policy !== undefined);
      const live = new LiveConfig({ config: first.config, configHash: first.configHash, keys: new ApiKeyStore(first.config.auth.keys), governance: new Governance(policy) });
      const recorder = new Recorder(gated);
      const context = { tenant: SYSTEM_PRINCIPAL.tenant, stream: 'system-test', actor: SYSTEM_PRINCIPAL };
      const reloader = new ConfigReloader({ live, recorder, log: gated, systemContext: context, logger: createLogger('silent'), load: () => configWith(dir, [{ id: 'changed', effect: 'allow', when: "tool == 'x'" }], configKeys) });
      assert.equal((await live.current.keys.authenticateBearer(`Bearer ${secret}`)).credentialId, 'key:k1');

      const reloading = reloader.reload('admin');
      await secondReadStarted;
      // What the admin API does (gateway/http/admin-keys.ts): record, then apply to the store in force.
      const issuedSecret = generateApiKey();
      const admin = { tenant: 't1', stream: 'system-test', actor: SYSTEM_PRINCIPAL };
      const revoked = draft(admin, 'KeyRevoked', { scope: 'key', tenant: 't1', keyId: 'k1', keyIds: ['k1'], reason: 'leaked' });
      const issued = draft(admin, 'KeyIssued', { keyId: 'k2', keyHash: hashApiKey(issuedSecret), tenant: 't1', roles: [], allowTools: ['*'], denyTools: [] });
      await recorder.record([revoked, issued]);
      live.current.keys.apply(revoked);
      live.current.keys.apply(issued);
      release();
      const outcome = await reloading;
      assert.equal(outcome.applied, true);

      const keys = live.current.keys;
      assert.ok(keys !== undefined);
      assert.equal(keys.isRevoked('k1'), true, 'the revocation made during the reload holds after it');
      await assert.rejects(keys.authenticateBearer(`Bearer ${secret}`), (error: Error & { code?: string }) => error.code === 'ATTEST_KEY_REVOKED');
      assert.equal((await keys.authenticateBearer(`Bearer ${issuedSecret}`)).credentialId, 'key:k2', 'the key issued during the reload works after it');
    } finally {
      await log.close();
    }
  });
});
