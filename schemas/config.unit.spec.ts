import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from './index.ts';

const minimal = {
  log: { backend: 'file', dir: 'data' },
  upstreams: { fs: { transport: 'stdio', command: 'node', args: ['server.js'] } },
};

function rejection(raw: unknown, env: Record<string, string> = {}): string {
  try {
    parseConfig(raw, { env, baseDir: '/srv' });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('config was accepted');
}

describe('config', () => {
  it('applies defaults, resolves relative paths and freezes the result', () => {
    const { config, configHash } = parseConfig(minimal, { baseDir: '/srv' });
    assert.equal(config.gateway.port, 8787);
    assert.equal(config.log.backend === 'file' && config.log.dir, '/srv/data');
    assert.equal(config.upstreams['fs']?.timeoutMs, 60_000);
    assert.match(configHash, /^sha256:[0-9a-f]{64}$/);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.upstreams));
  });

  it('rejects unknown keys, naming the key path', () => {
    const message = rejection({ ...minimal, upstreams: { fs: { ...minimal.upstreams.fs, comand: 'x' } } });
    assert.match(message, /upstreams\.fs/);
    assert.match(message, /comand/);
  });

  it('names the path of a wrong type deep inside', () => {
    const message = rejection({ ...minimal, auth: { keys: [{ id: 'k', hash: 'nope' }] } });
    assert.match(message, /auth\.keys\[0\]\.hash: sha256:<64 hex chars>/);
  });

  it('rejects an upstream name with the namespace separator', () => {
    assert.match(rejection({ ...minimal, upstreams: { 'a__b': minimal.upstreams.fs } }), /upstreams\.a__b.*"__"|"__"/);
  });

  it('resolves ${ENV} references and reports a missing variable by key path without any value', () => {
    const withHeader = { ...minimal, upstreams: { api: { transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', headers: { Authorization: 'Bearer ${API_TOKEN}' } } } };
    const { config } = parseConfig(withHeader, { env: { API_TOKEN: 's3cret' } });
    const api = config.upstreams['api'];
    assert.equal(api?.transport !== 'stdio' && api?.headers['Authorization'], 'Bearer s3cret');
    const message = rejection(withHeader, {});
    assert.match(message, /upstreams\.api\.headers\.Authorization: environment variable API_TOKEN is not set/);
  });

  it('keeps secrets out of the config hash', () => {
    const withHeader = { ...minimal, upstreams: { api: { transport: 'sse', url: 'http://127.0.0.1:9/sse', headers: { Authorization: 'Bearer ${API_TOKEN}' } } } };
    const a = parseConfig(withHeader, { env: { API_TOKEN: 'one' } }).configHash;
    const b = parseConfig(withHeader, { env: { API_TOKEN: 'two' } }).configHash;
    assert.equal(a, b);
  });

  it('requires at least one upstream', () => {
    assert.match(rejection({ ...minimal, upstreams: {} }), /upstreams: at least one upstream is required/);
  });
  it('validates the readModel section: defaults, ${ENV} password, names that cannot carry SQL, embedded refused as not implemented yet', () => {
    const { config } = parseConfig({ ...minimal, readModel: { backend: 'clickhouse', url: 'http://127.0.0.1:8123', password: '${CH_PASSWORD}' } }, { env: { CH_PASSWORD: 's3cret' } });
    assert.deepEqual(config.readModel, { backend: 'clickhouse', url: 'http://127.0.0.1:8123', database: 'attest', user: 'default', password: 's3cret', requestTimeoutMs: 30_000, batchEvents: 5_000, flushMs: 200 });
    assert.match(rejection({ ...minimal, readModel: { backend: 'clickhouse', url: 'http://x', database: "a'; DROP DATABASE b" } }), /readModel\.database: letters, digits and "_"/);
    assert.match(rejection({ ...minimal, readModel: { backend: 'clickhouse', url: 'ftp://x' } }), /readModel\.url/);
    assert.match(rejection({ ...minimal, readModel: { backend: 'clickhouse', url: 'http://x', pasword: 'x' } }), /pasword/);
    assert.match(rejection({ ...minimal, readModel: { backend: 'embedded' } }), /readModel\.backend: "embedded" is not implemented yet/);
    assert.match(rejection({ ...minimal, readModel: { backend: 'clickhouse', url: 'http://x', password: '${NOT_SET}' } }), /readModel\.password: environment variable NOT_SET is not set/);
  });
});
