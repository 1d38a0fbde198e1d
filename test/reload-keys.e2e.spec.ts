/**
 * Keys issued and revoked at run time survive a config reload: the reloaded key store is the new
 * config's keys plus the KeyIssued/KeyRevoked events read back from the log (gateway/reload.ts),
 * and the admin API issues into the store in force after the reload, not the one it replaced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { hashApiKey, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import { loadConfigFile } from '../cli/config-file.ts';
import { rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream } from './support/gateway.ts';
import { testLogger } from './harness/log.ts';

const ADMIN = 'atk_reload_keys_admin_0123456789';

function configDoc(logDir: string, origins: string[]): Record<string, unknown> {
  return {
    gateway: { port: 0, allowedOrigins: origins },
    log: { backend: 'file', dir: logDir },
    auth: { keys: [{ id: 'admin', hash: hashApiKey(ADMIN), tenant: 'ops', roles: ['attest:admin'] }] },
    upstreams: { fixture: fixtureStdioUpstream() },
  };
}

describe('run-time keys across a config reload', () => {
  let dir: string;
  let file: string;
  let logDir: string;
  let gateway: Gateway;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-reload-keys-'));
    file = path.join(dir, 'attest.yaml');
    logDir = path.join(dir, 'log');
    await writeFile(file, stringify(configDoc(logDir, [])));
    const loaded = loadConfigFile(file);
    gateway = await startGateway(loaded.config, { port: 0, logger: testLogger(), configHash: loaded.configHash, reloadFrom: () => loadConfigFile(file) });
  });
  after(async () => {
    await gateway.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function admin(method: 'GET' | 'POST', pathname: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${gateway.url}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** The HTTP status of an initialize with this key: 200 when the key is accepted. */
  async function statusWith(key: string): Promise<{ status: number; errorCode: unknown }> {
    const response = await rawPost(`${gateway.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } }, { authorization: `Bearer ${key}` });
    const error = response.messages[0]?.['error'] as { data?: { errorCode?: unknown } } | undefined;
    return { status: response.status, errorCode: error?.data?.errorCode };
  }

  it('keeps issued keys working and revoked keys refused, and issues into the reloaded store', { timeout: 60_000 }, async () => {
    const kept = await admin('POST', '/admin/v1/keys', { id: 'kept-bot', tenant: 'acme' });
    const revoked = await admin('POST', '/admin/v1/keys', { id: 'gone-bot', tenant: 'acme' });
    assert.equal(kept.status, 201, JSON.stringify(kept.json));
    assert.equal(revoked.status, 201, JSON.stringify(revoked.json));
    assert.equal((await admin('POST', '/admin/v1/keys/gone-bot/revoke', { reason: 'test' })).status, 200);

    // A real change, so the reload builds a new key store.
    await writeFile(file, stringify(configDoc(logDir, ['https://console.example'])));
    const reloaded = await admin('POST', '/admin/v1/config/reload');
    assert.equal(reloaded.status, 200, JSON.stringify(reloaded.json));

    assert.equal((await statusWith(String(kept.json['key']))).status, 200, 'a key issued before the reload still works');
    const refused = await statusWith(String(revoked.json['key']));
    assert.equal(refused.status, 401);
    assert.equal(refused.errorCode, 'ATTEST_KEY_REVOKED', 'a key revoked before the reload stays revoked');

    const late = await admin('POST', '/admin/v1/keys', { id: 'late-bot', tenant: 'acme' });
    assert.equal(late.status, 201, JSON.stringify(late.json));
    assert.equal((await statusWith(String(late.json['key']))).status, 200, 'a key issued after the reload works at once');
    assert.equal((await admin('GET', '/admin/v1/keys/late-bot')).status, 200, 'and the admin API sees it');
  });
});
