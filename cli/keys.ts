/**
 * `attest keys issue|list|show|revoke`: the key admin API (`/admin/v1/keys`) of a running
 * gateway, from the command line. The gateway is `--url` (or ATTEST_URL); the admin's own key
 * comes from ATTEST_ADMIN_KEY only, never from an argument (arguments end up in shell history
 * and process lists). The offline helpers `attest keys new|hash` stay in attest.ts.
 */
import type { ParseArgsConfig } from 'node:util';
import { adminCall as call } from './admin-client.ts';

export const KEYS_ADMIN_ACTIONS: readonly string[] = Object.freeze(['issue', 'list', 'show', 'revoke']);

export const KEYS_OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  id: { type: 'string' },
  tenant: { type: 'string' },
  team: { type: 'string' },
  agent: { type: 'string' },
  role: { type: 'string', multiple: true },
  allow: { type: 'string', multiple: true },
  deny: { type: 'string', multiple: true },
  'expires-at': { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  out: { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export const KEYS_USAGE = `attest keys new | attest keys hash   (offline: a new key and its hash; hash reads the key from stdin)
  attest keys note NAME --out FILE     (offline: a checkpoint signing key pair; the signer key only to FILE, the verifier key printed)
  attest keys issue  --url URL --tenant T [--team X] [--agent A] [--role R]... [--id ID] [--expires-at ISO | --ttl SECONDS] [--allow P]... [--deny P]... [--json]
  attest keys list   --url URL [--tenant T] [--team X] [--json]
  attest keys show   --url URL ID [--json]
  attest keys revoke --url URL (ID | --tenant T [--team X]) [--reason TEXT] [--json]
  (issue/list/show/revoke call the running gateway's admin API with the key in ATTEST_ADMIN_KEY)`;

type Values = Record<string, string | boolean | string[] | undefined>;

interface KeyView {
  readonly id: string;
  readonly source: string;
  readonly tenant: string;
  readonly team?: string;
  readonly roles: readonly string[];
  readonly expiresAt?: string;
  readonly status: string;
}

class KeysUsageError extends Error {}

function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function list(values: Values, name: string): string[] | undefined {
  const value = values[name];
  return Array.isArray(value) ? value : undefined;
}

function line(key: KeyView): string {
  return `${key.id.padEnd(28)} ${key.status.padEnd(8)} ${key.source.padEnd(7)} tenant=${key.tenant}${key.team === undefined ? '' : ` team=${key.team}`}${key.roles.length === 0 ? '' : ` roles=${key.roles.join(',')}`}${key.expiresAt === undefined ? '' : ` expires=${key.expiresAt}`}`;
}

/** Runs one admin action; returns the exit code (2 for usage errors, 1 when the gateway refused). */
export async function runKeysAdmin(action: string, values: Values, positionals: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const out = (text: string): boolean => process.stdout.write(`${text}\n`);
  try {
    const base = (str(values, 'url') ?? env['ATTEST_URL'])?.replace(/\/+$/, '');
    if (base === undefined) throw new KeysUsageError('--url URL (or ATTEST_URL) is required: the running gateway');
    const adminKey = env['ATTEST_ADMIN_KEY'];
    if (adminKey === undefined || adminKey === '') throw new KeysUsageError('ATTEST_ADMIN_KEY must hold an API key with the role attest:admin');
    const json = values['json'] === true;
    if (action === 'issue') {
      const tenant = str(values, 'tenant');
      if (tenant === undefined) throw new KeysUsageError('issue needs --tenant');
      const ttl = str(values, 'ttl');
      if (ttl !== undefined && !/^[1-9][0-9]*$/.test(ttl)) throw new KeysUsageError(`--ttl must be a positive number of seconds, got "${ttl}"`);
      const body = {
        tenant,
        ...(str(values, 'id') !== undefined && { id: str(values, 'id') }),
        ...(str(values, 'team') !== undefined && { team: str(values, 'team') }),
        ...(str(values, 'agent') !== undefined && { agent: str(values, 'agent') }),
        ...(list(values, 'role') !== undefined && { roles: list(values, 'role') }),
        ...(list(values, 'allow') !== undefined && { allowTools: list(values, 'allow') }),
        ...(list(values, 'deny') !== undefined && { denyTools: list(values, 'deny') }),
        ...(str(values, 'expires-at') !== undefined && { expiresAt: str(values, 'expires-at') }),
        ...(ttl !== undefined && { ttlSeconds: Number(ttl) }),
      };
      const issued = await call(base, adminKey, 'POST', '/admin/v1/keys', body);
      if (json) out(JSON.stringify(issued));
      else out(`key:  ${String(issued['key'])}\nid:   ${String(issued['id'])}\nhash: ${String(issued['hash'])}\n(give the key to the agent; it is not shown again)`);
      return 0;
    }
    if (action === 'list') {
      const query = new URLSearchParams();
      if (str(values, 'tenant') !== undefined) query.set('tenant', str(values, 'tenant') ?? '');
      if (str(values, 'team') !== undefined) query.set('team', str(values, 'team') ?? '');
      const listed = await call(base, adminKey, 'GET', `/admin/v1/keys${query.size > 0 ? `?${query.toString()}` : ''}`);
      if (json) out(JSON.stringify(listed));
      else for (const key of listed['keys'] as KeyView[]) out(line(key));
      return 0;
    }
    if (action === 'show') {
      const id = positionals[0];
      if (id === undefined) throw new KeysUsageError('show needs a key id');
      const shown = await call(base, adminKey, 'GET', `/admin/v1/keys/${encodeURIComponent(id)}`);
      out(json ? JSON.stringify(shown) : line(shown as unknown as KeyView));
      return 0;
    }
    // revoke
    const id = positionals[0];
    const tenant = str(values, 'tenant');
    const reason = str(values, 'reason');
    if ((id === undefined) === (tenant === undefined)) throw new KeysUsageError('revoke needs a key id, or --tenant T [--team X] (not both)');
    const result = id !== undefined
      ? await call(base, adminKey, 'POST', `/admin/v1/keys/${encodeURIComponent(id)}/revoke`, { ...(reason !== undefined && { reason }) })
      : await call(base, adminKey, 'POST', '/admin/v1/keys/revoke', { tenant, ...(str(values, 'team') !== undefined && { team: str(values, 'team') }), ...(reason !== undefined && { reason }) });
    const revoked = result['revoked'] as string[];
    if (json) out(JSON.stringify(result));
    else out(revoked.length === 0 ? 'nothing revoked (already revoked, or no active key there)' : `revoked: ${revoked.join(', ')}`);
    return 0;
  } catch (error) {
    process.stderr.write(`attest keys ${action}: ${(error as Error).message}\n`);
    if (error instanceof KeysUsageError) {
      process.stderr.write(`Usage: ${KEYS_USAGE}\n`);
      return 2;
    }
    return 1;
  }
}
