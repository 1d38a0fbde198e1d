/**
 * A request without a credential learns what to send: the 401's message, `data.accepts` and
 * `WWW-Authenticate` name the credential this gateway takes, and OAuth (RFC 9728 metadata, the
 * `resource_metadata` pointer) is advertised only when `auth.jwt` is configured — a client that
 * finds it starts a login an API-key-only gateway cannot finish. Raw HTTP against real gateways;
 * the Inspector CLI's view of the same is in inspector-cli.e2e.spec.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorOf, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
const ISSUER = 'https://idp.test.example/';

describe('a gateway that takes API keys only', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
  });
  after(async () => {
    await t?.close();
  });

  it('no credential → 401 saying an API key is expected and how to send it; no OAuth in WWW-Authenticate', async () => {
    const response = await rawPost(`${t.url}/mcp`, INITIALIZE);
    assert.equal(response.status, 401);
    const error = errorOf(response);
    assert.equal(error.code, -32030);
    assert.equal(error.data?.['errorCode'], 'ATTEST_UNAUTHENTICATED');
    assert.deepEqual(error.data?.['accepts'], ['api-key']);
    assert.match(error.message, /^No credential: this gateway takes an API key, sent as the HTTP header "Authorization: Bearer <key>"; it has no OAuth login/);
    const challenge = response.headers.get('www-authenticate') ?? '';
    // RFC 6750 §3.1: no error code when the request carried no credential at all.
    assert.equal(challenge, `Bearer realm="attest", error_description="${error.message.replace(/"/g, "'")}"`);
  });

  it('a wrong key → 401 invalid_token, still without OAuth pointers', async () => {
    const response = await rawPost(`${t.url}/mcp`, INITIALIZE, { authorization: 'Bearer atk_not_a_key_of_this_gateway' });
    assert.equal(response.status, 401);
    assert.match(errorOf(response).message, /Invalid API key/);
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="attest", error="invalid_token", error_description="Invalid API key/);
    assert.doesNotMatch(challenge, /resource_metadata|scope=/);
  });

  it('serves no protected-resource metadata: 404 naming the reason', async () => {
    for (const suffix of ['', '/mcp', '/servers/fixture/mcp']) {
      const response = await fetch(`${t.url}/.well-known/oauth-protected-resource${suffix}`);
      assert.equal(response.status, 404, suffix);
      const body = (await response.json()) as { error: { message: string; data: { errorCode: string } } };
      assert.equal(body.error.data.errorCode, 'ATTEST_NOT_FOUND');
      assert.match(body.error.message, /takes API keys only \(auth\.jwt is not configured\)/);
    }
  });
});

describe('a gateway that also takes JWTs (auth.jwt)', () => {
  let t: TestGateway;
  before(async () => {
    // The JWKS is fetched on the first token only; no token is sent here.
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, auth: { jwt: { issuer: ISSUER, audience: 'https://attest.test.example/mcp', jwksUri: 'http://127.0.0.1:9/jwks.json' }, resourceMetadata: { scopesSupported: ['mcp:tools'] } } });
  });
  after(async () => {
    await t?.close();
  });

  it('no credential → 401 naming both credentials and the identity provider, with the RFC 9728 pointer', async () => {
    const response = await rawPost(`${t.url}/mcp`, INITIALIZE);
    assert.equal(response.status, 401);
    const error = errorOf(response);
    assert.deepEqual(error.data?.['accepts'], ['api-key', 'jwt']);
    assert.match(error.message, new RegExp(`takes an API key or an OAuth access token \\(JWT\\) from ${ISSUER.replace(/[./]/g, '\\$&')}`));
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="attest", error_description="No credential: /);
    assert.doesNotMatch(challenge, /error="/);
    assert.ok(challenge.endsWith(`, scope="mcp:tools", resource_metadata="${t.url}/.well-known/oauth-protected-resource/mcp"`), challenge);
    const metadata = await fetch(`${t.url}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(metadata.status, 200);
    assert.deepEqual(((await metadata.json()) as { authorization_servers: unknown }).authorization_servers, [ISSUER]);
  });
});
