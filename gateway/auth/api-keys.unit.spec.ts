import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKeySchema, GatewayError } from '#schemas';
import type { ApiKeyConfig, GatewayErrorCode } from '#schemas';
import { ApiKeyStore, generateApiKey, hashApiKey } from './api-keys.ts';

const SECRET = 'atk_unit_test_key_0123456789';
const NOW = Date.parse('2030-06-01T12:00:00Z');

/** A key as the config loader produces it: validated by the real schema, defaults applied. */
function keyConfig(fields: Record<string, unknown>): ApiKeyConfig {
  return ApiKeySchema.parse({ hash: hashApiKey(`${SECRET}-${String(fields['id'])}`), ...fields });
}

function secretOf(id: string): string {
  return `${SECRET}-${id}`;
}

function refusal(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${String(error)}`);
    return error;
  }
  assert.fail('the key was accepted');
}

function assertRefused(run: () => unknown, code: GatewayErrorCode, message: RegExp): void {
  const error = refusal(run);
  assert.equal(error.code, code);
  assert.match(error.message, message);
}

describe('hashApiKey / generateApiKey', () => {
  it('hashes to sha256:<64 hex> deterministically, and the config schema accepts the result', () => {
    const hash = hashApiKey('atk_demo_do_not_use_in_production');
    // The demo key of attest.example.yaml, so README and example stay in step with the hash.
    assert.equal(hash, 'sha256:bb604c85824de99b675cd1a11ab00a9f85d34d6f3590f9ab09f622950dd538eb');
    assert.notEqual(hashApiKey('atk_a'), hashApiKey('atk_b'));
    assert.equal(ApiKeySchema.safeParse({ id: 'k', hash }).success, true);
  });

  it('generates distinct atk_ keys of 32 random bytes', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    assert.match(a, /^atk_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a, b);
    assert.equal(Buffer.from(a.slice('atk_'.length), 'base64url').length, 32);
  });
});

describe('ApiKeyStore.authenticateHeader', () => {
  const store = new ApiKeyStore([keyConfig({ id: 'alice', tenant: 'acme', team: 'red', agent: 'bot-1', roles: ['ops'] })]);

  it('accepts "Bearer <key>" and returns the principal of the configured key', () => {
    const { principal, key } = store.authenticateHeader(`Bearer ${secretOf('alice')}`, NOW);
    assert.deepEqual(principal, { kind: 'apiKey', id: 'alice', tenant: 'acme', team: 'red', agent: 'bot-1', roles: ['ops'] });
    assert.equal(key.id, 'alice');
    assert.ok(Object.isFrozen(principal) && Object.isFrozen(principal.roles));
  });

  it('leaves team and agent out of the principal when the key has none', () => {
    const bare = new ApiKeyStore([keyConfig({ id: 'bare' })]);
    const { principal } = bare.authenticateHeader(`Bearer ${secretOf('bare')}`, NOW);
    assert.deepEqual(principal, { kind: 'apiKey', id: 'bare', tenant: 'default', roles: [] });
    assert.equal('team' in principal, false);
    assert.equal('agent' in principal, false);
  });

  it('refuses a missing header, telling the agent how to send the key', () => {
    assertRefused(() => store.authenticateHeader(undefined, NOW), 'ATTEST_UNAUTHENTICATED', /No credential: this gateway takes an API key, sent as the HTTP header "Authorization: Bearer <key>"; it has no OAuth login/);
    assertRefused(() => store.authenticateHeader('', NOW), 'ATTEST_UNAUTHENTICATED', /No credential/);
    assert.deepEqual(refusal(() => store.authenticateHeader(undefined, NOW)).detail, { accepts: ['api-key'] });
  });

  it('refuses a missing header naming the identity provider when auth.jwt is configured', async () => {
    const withTokens = new ApiKeyStore([], { jwt: { issuer: 'https://idp.example.com/', verify: () => Promise.reject(new Error('not called')) } });
    await assert.rejects(withTokens.authenticateBearer(undefined, NOW), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.code, 'ATTEST_UNAUTHENTICATED');
      assert.match(error.message, /an API key or an OAuth access token \(JWT\) from https:\/\/idp\.example\.com\/, sent as the HTTP header "Authorization: Bearer <credential>"/);
      assert.deepEqual(error.detail, { accepts: ['api-key', 'jwt'] });
      return true;
    });
  });

  it('refuses other schemes and a bare key', () => {
    for (const header of [`Basic ${secretOf('alice')}`, `Token ${secretOf('alice')}`, secretOf('alice'), `Bearer${secretOf('alice')}`, 'Bearer', 'Bearer ']) {
      assertRefused(() => store.authenticateHeader(header, NOW), 'ATTEST_UNAUTHENTICATED', /Malformed Authorization header/);
    }
  });

  it('matches the scheme case-insensitively (RFC 9110 §11.1)', () => {
    assert.equal(store.authenticateHeader(`bearer ${secretOf('alice')}`, NOW).key.id, 'alice');
    assert.equal(store.authenticateHeader(`BEARER ${secretOf('alice')}`, NOW).key.id, 'alice');
  });

  it('tolerates extra whitespace between scheme and key and after the key', () => {
    assert.equal(store.authenticateHeader(`Bearer    ${secretOf('alice')}`, NOW).key.id, 'alice');
    assert.equal(store.authenticateHeader(`Bearer\t${secretOf('alice')}  `, NOW).key.id, 'alice');
  });

  it('refuses a key with more than one token after the scheme', () => {
    assertRefused(() => store.authenticateHeader(`Bearer ${secretOf('alice')} extra`, NOW), 'ATTEST_UNAUTHENTICATED', /Malformed Authorization header/);
    assertRefused(() => store.authenticateHeader(`Bearer ${secretOf('alice')}, Bearer other`, NOW), 'ATTEST_UNAUTHENTICATED', /Malformed Authorization header/);
  });

  it('refuses an unknown key without echoing it', () => {
    const error = refusal(() => store.authenticateHeader('Bearer atk_not_configured', NOW));
    assert.equal(error.code, 'ATTEST_UNAUTHENTICATED');
    assert.equal(error.message, 'Invalid API key');
    assert.equal(error.jsonrpcCode, -32030);
    assert.equal(error.httpStatus, 401);
  });

  it('treats the key itself as case-sensitive', () => {
    assertRefused(() => store.authenticateHeader(`Bearer ${secretOf('alice').toUpperCase()}`, NOW), 'ATTEST_UNAUTHENTICATED', /Invalid API key/);
  });
});

describe('ApiKeyStore expiry', () => {
  const store = new ApiKeyStore([
    keyConfig({ id: 'past', expiresAt: '2030-06-01T11:59:59Z' }),
    keyConfig({ id: 'future', expiresAt: '2030-06-01T12:00:01Z' }),
    keyConfig({ id: 'boundary', expiresAt: '2030-06-01T12:00:00Z' }),
    keyConfig({ id: 'offset', expiresAt: '2030-06-01T14:00:00+02:00' }),
    keyConfig({ id: 'forever' }),
  ]);

  it('refuses a key that expired before `now`, naming the key and the expiry', () => {
    const error = refusal(() => store.authenticateHeader(`Bearer ${secretOf('past')}`, NOW));
    assert.equal(error.code, 'ATTEST_KEY_EXPIRED');
    assert.equal(error.jsonrpcCode, -32031);
    assert.equal(error.message, 'API key "past" expired at 2030-06-01T11:59:59Z');
    assert.deepEqual(error.detail, { keyId: 'past' });
  });

  it('accepts a key that expires after `now`, and the same key is refused once `now` passes it', () => {
    assert.equal(store.authenticateKey(secretOf('future'), NOW).key.id, 'future');
    assertRefused(() => store.authenticateKey(secretOf('future'), NOW + 1_000), 'ATTEST_KEY_EXPIRED', /"future" expired/);
  });

  it('counts the expiry instant itself as expired', () => {
    assertRefused(() => store.authenticateKey(secretOf('boundary'), NOW), 'ATTEST_KEY_EXPIRED', /"boundary"/);
    assert.equal(store.authenticateKey(secretOf('boundary'), NOW - 1).key.id, 'boundary');
  });

  it('honours the UTC offset of expiresAt', () => {
    assertRefused(() => store.authenticateKey(secretOf('offset'), NOW), 'ATTEST_KEY_EXPIRED', /"offset"/);
    assert.equal(store.authenticateKey(secretOf('offset'), NOW - 1).key.id, 'offset');
  });

  it('never expires a key without expiresAt', () => {
    assert.equal(store.authenticateKey(secretOf('forever'), Date.parse('2999-01-01T00:00:00Z')).key.id, 'forever');
  });
});

describe('ApiKeyStore.byId', () => {
  const store = new ApiKeyStore([keyConfig({ id: 'stdio-agent', tenant: 'acme', expiresAt: '2030-06-01T13:00:00Z' })]);

  it('returns the configured key and its principal', () => {
    const { principal, key } = store.byId('stdio-agent', NOW);
    assert.equal(key.id, 'stdio-agent');
    assert.equal(principal.tenant, 'acme');
    assert.equal(principal.id, 'stdio-agent');
  });

  it('refuses an unknown id, naming it', () => {
    assertRefused(() => store.byId('nobody', NOW), 'ATTEST_UNAUTHENTICATED', /No key with id "nobody" is configured/);
  });

  it('refuses an expired key by id using `now`', () => {
    const error = refusal(() => store.byId('stdio-agent', Date.parse('2030-06-01T13:00:00Z')));
    assert.equal(error.code, 'ATTEST_KEY_EXPIRED');
    assert.match(error.message, /API key "stdio-agent" expired at 2030-06-01T13:00:00Z/);
  });
});

describe('ApiKeyStore.toolAccess', () => {
  function access(fields: Record<string, unknown>, tool: string): { allowed: boolean; ruleId: string; reason: string } {
    return { ...new ApiKeyStore([keyConfig({ id: 'k', ...fields })]).toolAccess('k', tool) };
  }

  it('allows everything with the default allowTools ["*"]', () => {
    assert.deepEqual(access({}, 'files__read_file'), { allowed: true, ruleId: 'key:k:allowTools[0]', reason: 'tool "files__read_file" matches allowTools pattern "*"' });
  });

  it('matches "<upstream>__*" against every tool of that upstream only', () => {
    const allow = { allowTools: ['files__*'] };
    assert.equal(access(allow, 'files__read_file').allowed, true);
    assert.equal(access(allow, 'files__a__b').allowed, true);
    assert.equal(access(allow, 'everything__echo').allowed, false);
    assert.equal(access(allow, 'filesx__read_file').allowed, false);
    assert.equal(access(allow, 'xfiles__read_file').allowed, false);
  });

  it('matches "*__<tool>" against that tool on every upstream', () => {
    const allow = { allowTools: ['*__echo'] };
    assert.equal(access(allow, 'everything__echo').allowed, true);
    assert.equal(access(allow, 'other__echo').allowed, true);
    assert.equal(access(allow, 'everything__echo2').allowed, false);
    assert.equal(access(allow, 'everything__reecho').allowed, false);
  });

  it('matches exact names exactly (anchored at both ends)', () => {
    const allow = { allowTools: ['files__read_file'] };
    assert.equal(access(allow, 'files__read_file').allowed, true);
    assert.equal(access(allow, 'files__read_file_extra').allowed, false);
    assert.equal(access(allow, 'xfiles__read_file').allowed, false);
    assert.equal(access(allow, 'files__read_filE').allowed, false);
  });

  it('lets deny win over allow, naming the deny list and index', () => {
    const outcome = access({ allowTools: ['*'], denyTools: ['files__write_file', 'files__edit_*'] }, 'files__edit_file');
    assert.deepEqual(outcome, {
      allowed: false,
      ruleId: 'key:k:denyTools[1]',
      reason: 'tool "files__edit_file" matches denyTools pattern "files__edit_*" of key "k"',
    });
    assert.equal(access({ allowTools: ['files__write_file'], denyTools: ['files__write_file'] }, 'files__write_file').ruleId, 'key:k:denyTools[0]');
  });

  it('denies when no allow pattern matches, naming the allow list', () => {
    assert.deepEqual(access({ allowTools: ['everything__*'] }, 'files__read_file'), {
      allowed: false,
      ruleId: 'key:k:allowTools',
      reason: 'tool "files__read_file" matches no allowTools pattern of key "k"',
    });
    assert.equal(access({ allowTools: [] }, 'files__read_file').ruleId, 'key:k:allowTools');
  });

  it('names the first matching allow pattern by index', () => {
    const outcome = access({ allowTools: ['everything__*', 'files__list_*', 'files__*'] }, 'files__list_directory');
    assert.equal(outcome.allowed, true);
    assert.equal(outcome.ruleId, 'key:k:allowTools[1]');
    assert.equal(outcome.reason, 'tool "files__list_directory" matches allowTools pattern "files__list_*"');
  });

  it('takes regex metacharacters in patterns literally', () => {
    assert.equal(access({ allowTools: ['up__a.b'] }, 'up__a.b').allowed, true);
    assert.equal(access({ allowTools: ['up__a.b'] }, 'up__aXb').allowed, false);
    assert.equal(access({ allowTools: ['up__a+'] }, 'up__aaa').allowed, false);
    assert.equal(access({ allowTools: ['up__a+'] }, 'up__a+').allowed, true);
    assert.equal(access({ allowTools: ['up__(x|y)'] }, 'up__x').allowed, false);
    assert.equal(access({ allowTools: ['up__(x|y)'] }, 'up__(x|y)').allowed, true);
    assert.equal(access({ allowTools: ['up__[ab]?'] }, 'up__a').allowed, false);
    assert.equal(access({ allowTools: ['up__$^\\{1}'] }, 'up__$^\\{1}').allowed, true);
    assert.equal(access({ denyTools: ['up__x.*'] }, 'up__xyz').allowed, true, 'only "*" is a wildcard; "." before it is literal');
    assert.equal(access({ denyTools: ['up__x.*'] }, 'up__x.yz').allowed, false);
  });

  it('lets "*" match across "__" and any character, including none', () => {
    assert.equal(access({ allowTools: ['up__*'] }, 'up__').allowed, true);
    assert.equal(access({ allowTools: ['*__*'] }, 'up__a__b').allowed, true);
    assert.equal(access({ allowTools: ['up__a*z'] }, 'up__a\nz').allowed, true);
  });

  it('denies an unknown key id with ruleId key-unknown', () => {
    const store = new ApiKeyStore([keyConfig({ id: 'k' })]);
    assert.deepEqual({ ...store.toolAccess('ghost', 'files__read_file') }, { allowed: false, ruleId: 'key-unknown', reason: 'key "ghost" is not configured' });
  });

  it('keeps each key\'s lists apart', () => {
    const store = new ApiKeyStore([keyConfig({ id: 'reader', allowTools: ['files__read_*'] }), keyConfig({ id: 'writer', allowTools: ['files__write_*'] })]);
    assert.equal(store.toolAccess('reader', 'files__read_file').allowed, true);
    assert.equal(store.toolAccess('reader', 'files__write_file').allowed, false);
    assert.equal(store.toolAccess('writer', 'files__write_file').allowed, true);
    assert.equal(store.toolAccess('writer', 'files__read_file').ruleId, 'key:writer:allowTools');
  });
});
