import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '#schemas';
import { changedSections, restartOnlyChanges } from './reload.ts';

const base = {
  gateway: { port: 8787 },
  log: { backend: 'file', dir: 'data' },
  upstreams: { a: { transport: 'stdio', command: 'node' } },
};
const parse = (raw: unknown) => parseConfig(raw, { baseDir: '/srv' }).config;

describe('reload: what changed', () => {
  it('names the restart-only settings that differ, never their values', () => {
    const from = parse(base);
    assert.deepEqual(restartOnlyChanges(from, parse(base)), []);
    const to = parse({ ...base, gateway: { port: 9000, host: '0.0.0.0', allowedHosts: ['x'] }, log: { backend: 'file', dir: 'elsewhere', fsync: false } });
    // The snapshots' default directory follows the log's, the evidence tree's follows theirs: they move with it.
    assert.deepEqual(restartOnlyChanges(from, to).sort(), ['evidence', 'gateway.host', 'gateway.port', 'log.dir', 'log.fsync', 'state']);
    assert.deepEqual(restartOnlyChanges(from, parse({ ...base, state: { snapshotEveryEvents: 500 } })), ['state']);
    const kafka = parse({ ...base, log: { backend: 'kafka', brokers: ['b:9092'], sasl: { mechanism: 'plain', username: 'u', password: 'hunter2' } } });
    const changes = restartOnlyChanges(from, kafka);
    assert.ok(changes.includes('log.backend') && changes.includes('log.sasl'));
    assert.ok(!changes.join(' ').includes('hunter2'));
    // The checkpoint key and its trust are loaded at start: a changed key is refused, not silently ignored.
    const keyed = parse({ ...base, evidence: { signingKey: 'PRIVATE+KEY+a+00000000+AQ==' } });
    assert.deepEqual(restartOnlyChanges(from, keyed), ['evidence']);
    assert.deepEqual(restartOnlyChanges(from, parse({ ...base, evidence: { previousVerifierKeys: ['a+00000000+AQ=='] } })), ['evidence']);
    // Anonymous access is checked against the bind address and announced at start only.
    assert.deepEqual(restartOnlyChanges(from, parse({ ...base, auth: { anonymous: { enabled: true } } })), ['auth.anonymous']);
  });

  it('lists changed sections; the gateway section key by key', () => {
    const from = parse(base);
    assert.deepEqual(changedSections(from, parse(base)), []);
    const to = parse({ ...base, gateway: { port: 8787, allowedOrigins: ['https://app'] }, auth: { keys: [] }, policy: { defaultEffect: 'allow' }, upstreams: { b: { transport: 'stdio', command: 'node' } } });
    assert.deepEqual(changedSections(from, to), ['gateway.allowedOrigins', 'policy', 'upstreams']);
  });
});
