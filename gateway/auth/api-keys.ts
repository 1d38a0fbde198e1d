/**
 * Minimum access control: API keys given as `Authorization: Bearer <key>`, stored as SHA-256
 * hashes in the config (keys are random and high-entropy, so a fast hash is enough; the key
 * itself never reaches the config, a log or an event). Per-key allow/deny lists of tools.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GatewayError } from '#schemas';
import type { ApiKeyConfig, Principal } from '#schemas';

export interface Authenticated {
  readonly principal: Principal;
  readonly key: ApiKeyConfig;
}

export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** A new random key: `atk_` + 32 bytes base64url. */
export function generateApiKey(): string {
  return `atk_${randomBytes(32).toString('base64url')}`;
}

function patternToRegExp(pattern: string): RegExp {
  if (pattern === '*') return /^.*$/s;
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 's');
}

export class ApiKeyStore {
  readonly #byHash = new Map<string, { key: ApiKeyConfig; principal: Principal; allow: RegExp[]; deny: RegExp[] }>();
  readonly #byId = new Map<string, ApiKeyConfig>();

  constructor(keys: readonly ApiKeyConfig[]) {
    for (const key of keys) {
      const principal: Principal = Object.freeze({
        kind: 'apiKey',
        id: key.id,
        tenant: key.tenant,
        ...(key.team !== undefined && { team: key.team }),
        ...(key.agent !== undefined && { agent: key.agent }),
        roles: Object.freeze([...key.roles]),
      });
      this.#byHash.set(key.hash, { key, principal, allow: key.allowTools.map(patternToRegExp), deny: key.denyTools.map(patternToRegExp) });
      this.#byId.set(key.id, key);
    }
  }

  /** Parses an Authorization header value; throws ATTEST_UNAUTHENTICATED / ATTEST_KEY_EXPIRED. */
  authenticateHeader(header: string | undefined, now = Date.now()): Authenticated {
    if (header === undefined || header.trim() === '') throw new GatewayError('ATTEST_UNAUTHENTICATED', 'Missing API key: send "Authorization: Bearer <key>"');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', 'Malformed Authorization header: expected "Bearer <key>"');
    return this.authenticateKey(match[1], now);
  }

  authenticateKey(presented: string, now = Date.now()): Authenticated {
    const entry = this.#byHash.get(hashApiKey(presented));
    if (entry === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', 'Invalid API key');
    if (entry.key.expiresAt !== undefined && Date.parse(entry.key.expiresAt) <= now) {
      throw new GatewayError('ATTEST_KEY_EXPIRED', `API key "${entry.key.id}" expired at ${entry.key.expiresAt}`, { keyId: entry.key.id });
    }
    return { principal: entry.principal, key: entry.key };
  }

  /** The key configured under `id`, for principals established out of band (stdio). */
  byId(id: string, now = Date.now()): Authenticated {
    const key = this.#byId.get(id);
    const entry = key === undefined ? undefined : this.#byHash.get(key.hash);
    if (entry === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', `No key with id "${id}" is configured`);
    if (entry.key.expiresAt !== undefined && Date.parse(entry.key.expiresAt) <= now) throw new GatewayError('ATTEST_KEY_EXPIRED', `API key "${id}" expired at ${entry.key.expiresAt}`, { keyId: id });
    return { principal: entry.principal, key: entry.key };
  }

  /** Deny wins over allow; no allow match → denied. `qualifiedTool` is `<upstream>__<tool>`. */
  toolAccess(keyId: string, qualifiedTool: string): { readonly allowed: boolean; readonly ruleId: string; readonly reason: string } {
    const key = this.#byId.get(keyId);
    const entry = key === undefined ? undefined : this.#byHash.get(key.hash);
    if (entry === undefined) return { allowed: false, ruleId: 'key-unknown', reason: `key "${keyId}" is not configured` };
    const denied = entry.deny.findIndex((re) => re.test(qualifiedTool));
    if (denied >= 0) return { allowed: false, ruleId: `key:${keyId}:denyTools[${denied}]`, reason: `tool "${qualifiedTool}" matches denyTools pattern "${entry.key.denyTools[denied]}" of key "${keyId}"` };
    const allowed = entry.allow.findIndex((re) => re.test(qualifiedTool));
    if (allowed < 0) return { allowed: false, ruleId: `key:${keyId}:allowTools`, reason: `tool "${qualifiedTool}" matches no allowTools pattern of key "${keyId}"` };
    return { allowed: true, ruleId: `key:${keyId}:allowTools[${allowed}]`, reason: `tool "${qualifiedTool}" matches allowTools pattern "${entry.key.allowTools[allowed]}"` };
  }
}
