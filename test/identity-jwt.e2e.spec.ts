/**
 * JWT bearer tokens through the real gateway, checked against a real JWKS served by a loopback
 * HTTP server (keys from jose generateKeyPair/exportJWK): a valid token opens a session whose
 * events carry the token's principal; expired, wrong audience, wrong issuer, wrong signing key,
 * unknown kid, `alg: none` and an unreachable JWKS are each a 401 with a precise message and
 * the RFC 9728 challenge, recorded as RequestRejected; no token ever reaches the log files.
 * The protected-resource metadata documents are checked here too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const ISSUER = 'https://idp.test.example';
const AUDIENCE = 'https://attest.test.example/mcp';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

async function logBytes(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) parts.push(await readFile(path.join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}

describe('JWT bearer tokens (auth.jwt) and protected-resource metadata', () => {
  let jwks: Server;
  let jwksUrl = '';
  let jwksRequests = 0;
  let signing: { privateKey: CryptoKey; jwk: JWK };
  let stranger: { privateKey: CryptoKey };
  let t: TestGateway;
  const tokens: string[] = [];

  async function token(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; kid?: string; exp?: number | string; iss?: string; aud?: string; sub?: string } = {}): Promise<string> {
    const jwt = new SignJWT({ tenant: 'acme', team: 'red', roles: ['dev', 'ops'], azp: 'agent-1', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1' })
      .setIssuer(options.iss ?? ISSUER)
      .setAudience(options.aud ?? AUDIENCE)
      .setSubject(options.sub ?? 'alice@acme')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? '5m');
    const signed = await jwt.sign(options.key ?? signing.privateKey);
    tokens.push(signed);
    return signed;
  }

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    signing = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' } };
    stranger = { privateKey: (await generateKeyPair('ES256')).privateKey };
    jwks = createServer((request, response) => {
      jwksRequests++;
      if (request.url !== '/jwks.json') return void response.writeHead(404).end();
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [signing.jwk] }));
    });
    jwksUrl = `${await listen(jwks)}/jwks.json`;
    t = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      auth: {
        jwt: { issuer: ISSUER, audience: [AUDIENCE], jwksUri: jwksUrl, algorithms: ['ES256'], clockToleranceSec: 5, jwks: { cooldownMs: 0 } },
        resourceMetadata: { scopesSupported: ['mcp:tools'], resourceName: 'Attest test gateway' },
      },
    });
  });

  after(async () => {
    await t.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  it('a valid token opens a session; its events carry the principal from the claims', { timeout: 60_000 }, async () => {
    const mcp = `${t.url}/mcp`;
    const bearer = { authorization: `Bearer ${await token()}` };
    const { sessionId, result } = await rawInitialize(mcp, bearer);
    const headers = { ...bearer, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const call = await rawPost(mcp, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'hi' } } }, headers);
    assert.ok(call.messages[0]?.['result'], call.text);

    const opened = (await t.events()).find((e) => e.type === 'SessionOpened' && e.stream === `session-${sessionId}`);
    assert.deepEqual(opened?.actor, { kind: 'jwt', id: 'alice@acme', tenant: 'acme', team: 'red', agent: 'agent-1', roles: ['dev', 'ops'] });
    assert.equal(opened?.tenant, 'acme');

    // A fresh token of the same subject keeps using the session; an API key cannot.
    const refreshed = await rawPost(mcp, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'again' } } }, { ...headers, authorization: `Bearer ${await token()}` });
    assert.ok(refreshed.messages[0]?.['result'], refreshed.text);
    const foreign = await rawPost(mcp, { jsonrpc: '2.0', id: 4, method: 'tools/list', params: {} }, { ...headers, authorization: t.headers.authorization ?? '' });
    assert.equal(foreign.status, 404);
    assert.equal(errorOf(foreign).data?.['errorCode'], 'ATTEST_UNKNOWN_SESSION');
    const otherSubject = await rawPost(mcp, { jsonrpc: '2.0', id: 5, method: 'tools/list', params: {} }, { ...headers, authorization: `Bearer ${await token({}, { sub: 'mallory@acme' })}` });
    assert.equal(otherSubject.status, 404, 'a session is bound to issuer + subject');
  });

  const refusals: { name: string; make: () => Promise<string>; reason: string; message: RegExp }[] = [
    { name: 'expired', make: () => token({}, { exp: Math.floor(Date.now() / 1000) - 60 }), reason: 'expired', message: /expired/ },
    { name: 'wrong audience', make: () => token({}, { aud: 'https://someone-else.example' }), reason: 'audience', message: /not meant for this gateway.*https:\/\/attest\.test\.example\/mcp/ },
    { name: 'wrong issuer', make: () => token({}, { iss: 'https://evil.example' }), reason: 'issuer', message: /unexpected issuer.*idp\.test\.example/ },
    { name: 'wrong signing key (same kid)', make: () => token({}, { key: stranger.privateKey }), reason: 'signature', message: /signature does not verify/ },
    { name: 'unknown kid', make: () => token({}, { key: stranger.privateKey, kid: 'rotated-away' }), reason: 'unknown-kid', message: /no key .* matches the token's "kid"/ },
    {
      name: 'alg none',
      make: async () => {
        const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
        const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'alice@acme', tenant: 'acme', exp: Math.floor(Date.now() / 1000) + 300 })}.`;
        tokens.push(unsigned);
        return unsigned;
      },
      reason: 'algorithm',
      message: /algorithm "none" is not accepted/,
    },
    { name: 'no tenant claim', make: () => token({ tenant: undefined }), reason: 'claims', message: /claim "tenant".*missing/ },
  ];

  for (const refusal of refusals) {
    it(`refuses a token: ${refusal.name} → 401 ATTEST_TOKEN_INVALID, challenge, recorded`, { timeout: 30_000 }, async () => {
      const response = await rawPost(`${t.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } }, { authorization: `Bearer ${await refusal.make()}` });
      assert.equal(response.status, 401, response.text);
      const error = errorOf(response);
      assert.equal(error.code, -32037);
      assert.equal(error.data?.['errorCode'], 'ATTEST_TOKEN_INVALID');
      assert.equal(error.data?.['reason'], refusal.reason);
      assert.match(error.message, refusal.message);
      const challenge = response.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer realm="attest", error="invalid_token", error_description="Invalid bearer token: /);
      assert.ok(challenge.includes(`resource_metadata="${t.url}/.well-known/oauth-protected-resource/mcp"`), challenge);
      assert.ok(challenge.includes('scope="mcp:tools"'), challenge);
      const rejected = (await t.events()).filter((e) => e.type === 'RequestRejected' && e.data.errorCode === 'ATTEST_TOKEN_INVALID' && e.data.message === error.message);
      assert.equal(rejected.length >= 1, true, `a RequestRejected for "${error.message}"`);
    });
  }

  it('unknown kid refetches the JWKS once (then jose cooldown applies), and a rotated key is picked up', { timeout: 30_000 }, async () => {
    const rotated = await generateKeyPair('ES256', { extractable: true });
    const before = jwksRequests;
    const fresh = await token({}, { key: rotated.privateKey, kid: 'k2' });
    assert.equal((await rawPost(`${t.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { authorization: `Bearer ${fresh}` })).status, 401);
    assert.equal(jwksRequests, before + 1, 'one refetch for the unknown kid');
    const previous = signing.jwk;
    signing.jwk = { ...(await exportJWK(rotated.publicKey)), kid: 'k2', alg: 'ES256' };
    try {
      const { sessionId } = await rawInitialize(`${t.url}/mcp`, { authorization: `Bearer ${fresh}` });
      assert.ok(sessionId);
    } finally {
      signing.jwk = previous;
    }
  });

  it('a token holding the role attest:admin may use the admin API; one without it gets -32035', { timeout: 30_000 }, async () => {
    const asAdmin = await fetch(`${t.url}/admin/v1/keys`, { headers: { authorization: `Bearer ${await token({ roles: 'attest:admin dev' })}` } });
    assert.equal(asAdmin.status, 200);
    assert.ok(Array.isArray(((await asAdmin.json()) as { keys: unknown }).keys));
    const asDev = await fetch(`${t.url}/admin/v1/keys`, { headers: { authorization: `Bearer ${await token()}` } });
    assert.equal(asDev.status, 403);
    assert.equal(((await asDev.json()) as { error: { code: number } }).error.code, -32035);
  });

  it('an unreachable JWKS refuses with 401 ATTEST_JWKS_UNAVAILABLE (fail closed)', { timeout: 60_000 }, async () => {
    const closed = createServer();
    const deadUrl = `${await listen(closed)}/jwks.json`;
    await new Promise((resolve) => closed.close(resolve));
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, auth: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUri: deadUrl, algorithms: ['ES256'] } } });
    try {
      const response = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } }, { authorization: `Bearer ${await token()}` });
      assert.equal(response.status, 401);
      const error = errorOf(response);
      assert.equal(error.code, -32038);
      assert.equal(error.data?.['errorCode'], 'ATTEST_JWKS_UNAVAILABLE');
      assert.ok(error.message.includes(deadUrl), error.message);
      assert.match(response.headers.get('www-authenticate') ?? '', /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/);
      assert.ok((await gw.events()).some((e) => e.type === 'RequestRejected' && e.data.errorCode === 'ATTEST_JWKS_UNAVAILABLE'));
    } finally {
      await gw.close();
    }
  });

  it('serves RFC 9728 metadata at the root and path-suffixed URLs, without a credential', async () => {
    for (const [suffix, resource] of [['/mcp', `${t.url}/mcp`], ['', t.url], ['/servers/fixture/mcp', `${t.url}/servers/fixture/mcp`]] as const) {
      const response = await fetch(`${t.url}/.well-known/oauth-protected-resource${suffix}`, { headers: { origin: 'https://elsewhere.example' } });
      assert.equal(response.status, 200, suffix);
      assert.equal(response.headers.get('access-control-allow-origin'), '*');
      assert.deepEqual(await response.json(), { resource, authorization_servers: [ISSUER], bearer_methods_supported: ['header'], scopes_supported: ['mcp:tools'], resource_name: 'Attest test gateway' });
    }
    assert.equal((await fetch(`${t.url}/.well-known/oauth-protected-resource/servers/nope/mcp`)).status, 404);
  });

  it('a JWT-shaped credential on a gateway without auth.jwt is refused, saying why', { timeout: 60_000 }, async () => {
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
    try {
      const response = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { authorization: `Bearer ${await token()}` });
      assert.equal(response.status, 401);
      assert.match(errorOf(response).message, /is a JWT, but this gateway accepts no tokens \(auth\.jwt is not configured\)/);
      // API keys only: no OAuth is advertised (credentials-expected.e2e.spec.ts).
      assert.equal((await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp`)).status, 404);
    } finally {
      await gw.close();
    }
  });

  it('no token, nor any part of one, is in the log files', async () => {
    const bytes = await logBytes(t.logDir);
    assert.ok(bytes.length > 0);
    assert.ok(tokens.length >= 10);
    for (const jwt of tokens) {
      assert.equal(bytes.includes(jwt), false, 'a whole token in the log');
      const signature = jwt.split('.')[2] ?? '';
      if (signature !== '') assert.equal(bytes.includes(signature), false, 'a token signature in the log');
    }
  });
});
