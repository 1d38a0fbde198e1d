import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from './index.ts';

const minimal = {
  log: { backend: 'file', dir: 'data' },
  upstreams: { fs: { transport: 'stdio', command: 'node', args: ['server.js'] } },
};
const jwt = { issuer: 'https://idp.example.com/', audience: 'https://attest.example.com/mcp', jwksUri: 'https://idp.example.com/jwks.json' };

function rejection(auth: unknown): string {
  try {
    parseConfig({ ...minimal, auth }, { env: {}, baseDir: '/srv' });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('config was accepted');
}

describe('auth.jwt and auth.resourceMetadata config', () => {
  it('is optional: absent, the gateway takes API keys only', () => {
    const { config } = parseConfig(minimal, { env: {} });
    assert.equal(config.auth.jwt, undefined);
    assert.equal(config.auth.resourceMetadata, undefined);
  });

  it('applies defaults: asymmetric algorithms, 30 s skew, claim names, jose cache settings, all tools', () => {
    const { config } = parseConfig({ ...minimal, auth: { jwt } }, { env: {} });
    assert.deepEqual(config.auth.jwt?.algorithms, ['RS256', 'ES256', 'EdDSA']);
    assert.equal(config.auth.jwt?.clockToleranceSec, 30);
    assert.deepEqual(config.auth.jwt?.claims, { tenant: 'tenant', team: 'team', roles: 'roles', agent: 'azp' });
    assert.deepEqual(config.auth.jwt?.jwks, { timeoutMs: 5000, cooldownMs: 30000, cacheMaxAgeMs: 600000 });
    assert.deepEqual(config.auth.jwt?.allowTools, ['*']);
  });

  it('refuses "none" and shared-secret algorithms, naming the key path', () => {
    assert.match(rejection({ jwt: { ...jwt, algorithms: ['none'] } }), /auth\.jwt\.algorithms\[0\]/);
    assert.match(rejection({ jwt: { ...jwt, algorithms: ['HS256'] } }), /auth\.jwt\.algorithms\[0\]/);
    assert.match(rejection({ jwt: { ...jwt, algorithms: [] } }), /auth\.jwt\.algorithms/);
  });

  it('requires issuer, audience and an http(s) jwksUri, and rejects unknown keys', () => {
    assert.match(rejection({ jwt: { audience: 'a', jwksUri: jwt.jwksUri } }), /auth\.jwt\.issuer/);
    assert.match(rejection({ jwt: { ...jwt, audience: [] } }), /auth\.jwt\.audience/);
    assert.match(rejection({ jwt: { ...jwt, jwksUri: 'file:///etc/jwks.json' } }), /auth\.jwt\.jwksUri/);
    assert.match(rejection({ jwt: { ...jwt, secret: 'x' } }), /auth\.jwt.*secret/);
    assert.match(rejection({ resourceMetadata: { authorizationServers: ['not a url'] } }), /auth\.resourceMetadata\.authorizationServers\[0\]/);
  });

  it('auth.anonymous: off unless enabled, defaults for local development, unknown keys and attest:admin refused by key path', () => {
    assert.equal(parseConfig(minimal, { env: {} }).config.auth.anonymous, undefined);
    const { config } = parseConfig({ ...minimal, auth: { anonymous: { enabled: true } } }, { env: {} });
    assert.deepEqual(config.auth.anonymous, { enabled: true, tenant: 'local', roles: [], allowTools: ['*'], denyTools: [], allowNonLoopback: false });
    assert.equal(parseConfig({ ...minimal, auth: { anonymous: {} } }, { env: {} }).config.auth.anonymous?.enabled, false);
    assert.match(rejection({ anonymous: { enabled: true, team: 'red' } }), /auth\.anonymous.*team/);
    assert.match(rejection({ anonymous: { enabled: 'yes' } }), /auth\.anonymous\.enabled/);
    assert.match(rejection({ anonymous: { enabled: true, roles: ['dev', 'attest:admin'] } }), /auth\.anonymous\.roles\[1\]: the admin API needs a credential/);
    assert.match(rejection({ anonymous: { enabled: true, allowTools: ['bad pattern'] } }), /auth\.anonymous\.allowTools\[0\]/);
  });

  it('refuses auth.resourceMetadata without auth.jwt: an API-key-only gateway advertises no OAuth', () => {
    assert.match(rejection({ resourceMetadata: { resourceName: 'Attest' } }), /auth\.resourceMetadata: is served only with auth\.jwt/);
    assert.doesNotThrow(() => parseConfig({ ...minimal, auth: { jwt, resourceMetadata: { resourceName: 'Attest' } } }, { env: {} }));
  });
});
