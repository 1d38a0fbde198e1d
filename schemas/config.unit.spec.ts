import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkSigningKeyIsReference, ConfigError, parseConfig } from './index.ts';

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

  it('defaults the evidence section: dir under state.dir, origin from the instance, paths resolved', () => {
    const { evidence } = parseConfig({ ...minimal, gateway: { instance: 'eu-1' } }, { baseDir: '/srv' }).config;
    assert.equal(evidence.dir, '/srv/data.state/merkle');
    assert.equal(evidence.origin, 'attest/eu-1');
    assert.deepEqual([evidence.checkpointEveryEvents, evidence.checkpointEverySeconds, evidence.previousVerifierKeys], [1000, 10, []]);
    const set = parseConfig({ ...minimal, evidence: { dir: 'tree', keyFile: 'keys/ckpt.key', origin: 'example.com/attest' } }, { baseDir: '/srv' }).config.evidence;
    assert.deepEqual([set.dir, set.keyFile, set.origin], ['/srv/tree', '/srv/keys/ckpt.key', 'example.com/attest']);
  });

  it('refuses two signing keys, an origin a note cannot carry, and a literal signer key in the file', () => {
    assert.match(rejection({ ...minimal, evidence: { signingKey: '${K}', keyFile: 'k' } }, { K: 'PRIVATE+KEY+x' }), /evidence\.keyFile: give evidence\.signingKey or evidence\.keyFile, not both/);
    assert.match(rejection({ ...minimal, evidence: { origin: 'two words' } }), /evidence\.origin: one line/);
    checkSigningKeyIsReference({ ...minimal, evidence: { signingKey: '${ATTEST_CHECKPOINT_KEY}' } });
    const literal = 'PRIVATE+KEY+attest/gw-1+01234567+AUnotarealkeyatallnotarealkeyatallnotareal=';
    assert.throws(() => checkSigningKeyIsReference({ ...minimal, evidence: { signingKey: literal } }), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /evidence\.signingKey: must be a \$\{ENV\} reference/);
      assert.ok(!error.message.includes('AUnotareal'), 'the key is not quoted');
      return true;
    });
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
