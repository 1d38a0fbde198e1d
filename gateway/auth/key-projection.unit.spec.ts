/**
 * The key store as a projection of KeyIssued / KeyRevoked events: issued keys authenticate,
 * revocations (one key, a team, a tenant) refuse with ATTEST_KEY_REVOKED, config keys included,
 * and applying the same events again (a rebuild) gives the same state.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKeySchema, GatewayError, SYSTEM_PRINCIPAL, SCHEMA_VERSION } from '#schemas';
import type { EventDraft } from '#schemas';
import { ApiKeyStore, hashApiKey, looksLikeJwt } from './api-keys.ts';

const NOW = Date.parse('2030-06-01T12:00:00Z');

function envelope(type: string, data: Record<string, unknown>): EventDraft {
  return { id: '0190a000-0000-7000-8000-000000000000', schemaVersion: SCHEMA_VERSION, type, occurredAt: '2030-06-01T11:00:00.000Z', tenant: 'acme', stream: 'system-gw-1', actor: SYSTEM_PRINCIPAL, data } as unknown as EventDraft;
}

function issued(keyId: string, team: string | undefined, extra: Record<string, unknown> = {}): EventDraft {
  return envelope('KeyIssued', { keyId, keyHash: hashApiKey(`secret-${keyId}`), tenant: 'acme', ...(team !== undefined && { team }), roles: ['dev'], allowTools: ['*'], denyTools: ['fixture__fail'], ...extra });
}

function revoked(scope: 'key' | 'team' | 'tenant', keyIds: string[], extra: Record<string, unknown> = {}): EventDraft {
  return envelope('KeyRevoked', { scope, tenant: 'acme', keyIds, ...extra });
}

function code(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GatewayError);
    return error.code;
  }
  return 'accepted';
}

describe('ApiKeyStore as a projection of key events', () => {
  const config = [ApiKeySchema.parse({ id: 'cfg', hash: hashApiKey('secret-cfg'), tenant: 'acme', team: 'red' })];

  it('authenticates an issued key with its principal, tool lists and credential id', () => {
    const store = new ApiKeyStore(config);
    assert.equal(code(() => store.authenticateKey('secret-k1', NOW)), 'ATTEST_UNAUTHENTICATED');
    store.apply(issued('k1', 'red'));
    const auth = store.authenticateKey('secret-k1', NOW);
    assert.deepEqual(auth.principal, { kind: 'apiKey', id: 'k1', tenant: 'acme', team: 'red', roles: ['dev'] });
    assert.equal(auth.credentialId, 'key:k1');
    assert.equal(auth.access.check('fixture__fail').ruleId, 'key:k1:denyTools[0]');
    assert.equal(store.view('k1', NOW)?.source, 'issued');
    assert.equal(store.view('k1', NOW)?.issuedAt, '2030-06-01T11:00:00.000Z');
  });

  it('enforces expiry of issued keys', () => {
    const store = new ApiKeyStore([]);
    store.apply(issued('k1', undefined, { expiresAt: '2030-06-01T12:00:00.000Z' }));
    assert.equal(code(() => store.authenticateKey('secret-k1', NOW - 1)), 'accepted');
    assert.equal(code(() => store.authenticateKey('secret-k1', NOW)), 'ATTEST_KEY_EXPIRED');
    assert.equal(store.view('k1', NOW)?.status, 'expired');
  });

  it('revokes a key, and a team or tenant revocation lists every active key under it, config keys too', () => {
    const store = new ApiKeyStore(config);
    for (const event of [issued('r1', 'red'), issued('b1', 'blue'), issued('b2', 'blue'), issued('solo', undefined)]) store.apply(event);
    assert.deepEqual(store.activeIdsUnder('acme', 'blue').sort(), ['b1', 'b2']);
    assert.deepEqual(store.activeIdsUnder('acme', 'red').sort(), ['cfg', 'r1']);
    assert.deepEqual(store.activeIdsUnder('other'), []);
    store.apply(revoked('team', ['b1', 'b2'], { team: 'blue', reason: 'gone' }));
    assert.equal(code(() => store.authenticateKey('secret-b1', NOW)), 'ATTEST_KEY_REVOKED');
    assert.equal(code(() => store.authenticateKey('secret-r1', NOW)), 'accepted');
    assert.deepEqual(store.activeIdsUnder('acme').sort(), ['cfg', 'r1', 'solo']);
    store.apply(revoked('tenant', ['cfg', 'r1', 'solo']));
    assert.equal(code(() => store.authenticateKey('secret-cfg', NOW)), 'ATTEST_KEY_REVOKED');
    assert.equal(code(() => store.byId('cfg', NOW)), 'ATTEST_KEY_REVOKED');
    assert.equal(store.view('b1', NOW)?.revokedReason, 'gone');
    assert.equal(store.hasId('b1'), true);
  });

  it('rebuilding from the same events gives the same views; re-applying is idempotent', () => {
    const events = [issued('a', 'red'), issued('b', 'red'), revoked('key', ['a'], { keyId: 'a' }), revoked('team', ['b'], { team: 'red', reason: 'later' })];
    const live = new ApiKeyStore(config);
    for (const event of events) live.apply(event);
    const rebuilt = new ApiKeyStore(config);
    for (const event of [...events, ...events]) rebuilt.apply(event);
    assert.deepEqual(rebuilt.list({}, NOW), live.list({}, NOW));
    assert.equal(live.view('b', NOW)?.revokedReason, 'later');
  });

  it('a config key of the same id wins over an issued one', () => {
    const store = new ApiKeyStore(config);
    store.apply(issued('cfg', 'blue'));
    assert.equal(store.view('cfg', NOW)?.source, 'config');
    assert.equal(code(() => store.authenticateKey('secret-cfg', NOW)), 'accepted');
  });
});

describe('ApiKeyStore.authenticateBearer', () => {
  it('tells a JWT (three base64url parts) from an API key by shape (tokens are verified for real in test/identity-jwt.e2e.spec.ts)', async () => {
    assert.equal(looksLikeJwt('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'), true);
    assert.equal(looksLikeJwt('eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.'), true);
    assert.equal(looksLikeJwt('atk_abc-def_ghi'), false);
    assert.equal(looksLikeJwt('a.b'), false);
    const store = new ApiKeyStore([ApiKeySchema.parse({ id: 'k', hash: hashApiKey('atk_k') })]);
    assert.equal((await store.authenticateBearer('Bearer atk_k', NOW)).credentialId, 'key:k');
    await assert.rejects(new ApiKeyStore([]).authenticateBearer('Bearer a.b.c', NOW), /auth\.jwt is not configured/);
  });
});
