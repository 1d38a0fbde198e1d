/**
 * Access control: credentials given as `Authorization: Bearer <credential>`.
 *
 * API keys are stored as SHA-256 hashes (keys are random and high-entropy, so a fast hash is
 * enough; the key itself never reaches the config, a log or an event). They come from the config
 * (the bootstrap, e.g. the first admin key) or are issued and revoked at run time through the
 * admin API; the run-time keys are a projection of the log's KeyIssued / KeyRevoked events
 * (`apply`), rebuilt at start, so a restart keeps issued keys and keeps revoked keys revoked.
 *
 * A bearer credential shaped like a JWT (three base64url parts) is checked by the JWT verifier
 * when `auth.jwt` is configured (jwt.ts). Each credential carries its allow/deny tool lists.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GatewayError } from '#schemas';
import type { AnonymousAuthConfig, ApiKeyConfig, AttestEvent, EventDraft, Principal } from '#schemas';
import { emptyKeysState, evolveKeys } from '#projections';
import type { KeysState } from '#projections';

export interface ToolAccessVerdict {
  readonly allowed: boolean;
  readonly ruleId: string;
  readonly reason: string;
}

function patternToRegExp(pattern: string): RegExp {
  if (pattern === '*') return /^.*$/s;
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 's');
}

/** A credential's allow/deny lists of tools. Deny wins over allow; no allow match → denied. */
export class ToolAccess {
  readonly #rulePrefix: string;
  readonly #owner: string;
  readonly #allowPatterns: readonly string[];
  readonly #denyPatterns: readonly string[];
  readonly #allow: readonly RegExp[];
  readonly #deny: readonly RegExp[];

  /** `rulePrefix` names the rule in decisions (`key:<id>`, `jwt`); `owner` names it in reasons. */
  constructor(rulePrefix: string, owner: string, allowTools: readonly string[], denyTools: readonly string[]) {
    this.#rulePrefix = rulePrefix;
    this.#owner = owner;
    this.#allowPatterns = allowTools;
    this.#denyPatterns = denyTools;
    this.#allow = allowTools.map(patternToRegExp);
    this.#deny = denyTools.map(patternToRegExp);
  }

  /** `qualifiedTool` is `<upstream>__<tool>`. */
  check(qualifiedTool: string): ToolAccessVerdict {
    const denied = this.#deny.findIndex((re) => re.test(qualifiedTool));
    if (denied >= 0) return { allowed: false, ruleId: `${this.#rulePrefix}:denyTools[${denied}]`, reason: `tool "${qualifiedTool}" matches denyTools pattern "${this.#denyPatterns[denied]}" of ${this.#owner}` };
    const allowed = this.#allow.findIndex((re) => re.test(qualifiedTool));
    if (allowed < 0) return { allowed: false, ruleId: `${this.#rulePrefix}:allowTools`, reason: `tool "${qualifiedTool}" matches no allowTools pattern of ${this.#owner}` };
    return { allowed: true, ruleId: `${this.#rulePrefix}:allowTools[${allowed}]`, reason: `tool "${qualifiedTool}" matches allowTools pattern "${this.#allowPatterns[allowed]}"` };
  }
}

export interface Authenticated {
  readonly principal: Principal;
  /** The credential that authenticated: `key:<id>`, `jwt:<issuer>#<sub>`, or `anonymous`. A session stays bound to it. */
  readonly credentialId: string;
  readonly access: ToolAccess;
  /** The API key, when the credential is one (absent for JWTs). */
  readonly key?: ApiKeyConfig;
}

/** Authenticated by an API key. */
export interface KeyAuthenticated extends Authenticated {
  readonly key: ApiKeyConfig;
}

/** Verifies JWT bearer tokens (jwt.ts); the store only needs this. */
export interface BearerTokenVerifier {
  /** The identity provider whose tokens it takes (`auth.jwt.issuer`), named to a client that sent none. */
  readonly issuer: string;
  verify(token: string): Promise<Authenticated>;
}

export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** A new random key: `atk_` + 32 bytes base64url. */
export function generateApiKey(): string {
  return `atk_${randomBytes(32).toString('base64url')}`;
}

/** Three base64url parts (the signature may be empty: `alg: none`, refused by the verifier). API keys have no dots. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(credential: string): boolean {
  return JWT_SHAPE.test(credential);
}

export type KeySource = 'config' | 'issued';

/** What the admin API shows of a key: never the key, only its hash. */
export interface KeyView {
  readonly id: string;
  readonly source: KeySource;
  readonly hash: string;
  readonly tenant: string;
  readonly team?: string;
  readonly agent?: string;
  readonly roles: readonly string[];
  readonly expiresAt?: string;
  readonly allowTools: readonly string[];
  readonly denyTools: readonly string[];
  readonly status: 'active' | 'expired' | 'revoked';
  readonly issuedAt?: string;
  readonly revokedAt?: string;
  readonly revokedReason?: string;
}

interface KeyEntry {
  readonly key: ApiKeyConfig;
  readonly source: KeySource;
  readonly auth: KeyAuthenticated;
  readonly issuedAt?: string;
}

interface Revocation {
  readonly at: string;
  readonly reason?: string;
}

export class ApiKeyStore {
  readonly #byHash = new Map<string, KeyEntry>();
  readonly #byId = new Map<string, KeyEntry>();
  /** Revoked key ids (config or issued); a revoked id is never reused. */
  readonly #revoked = new Map<string, Revocation>();
  readonly #jwt: BearerTokenVerifier | undefined;
  /** Who a request without any credential is (auth.anonymous enabled); undefined → such a request is refused. */
  readonly anonymous: Authenticated | undefined;

  constructor(keys: readonly ApiKeyConfig[], options: { readonly jwt?: BearerTokenVerifier | undefined; readonly anonymous?: AnonymousAuthConfig | undefined } = {}) {
    for (const key of keys) this.#add(key, 'config');
    this.#jwt = options.jwt;
    this.anonymous = options.anonymous?.enabled === true ? anonymousAuthenticated(options.anonymous) : undefined;
  }

  #add(key: ApiKeyConfig, source: KeySource, issuedAt?: string): void {
    const principal: Principal = Object.freeze({
      kind: 'apiKey',
      id: key.id,
      tenant: key.tenant,
      ...(key.team !== undefined && { team: key.team }),
      ...(key.agent !== undefined && { agent: key.agent }),
      roles: Object.freeze([...key.roles]),
    });
    const auth: KeyAuthenticated = Object.freeze({ principal, key, credentialId: `key:${key.id}`, access: new ToolAccess(`key:${key.id}`, `key "${key.id}"`, key.allowTools, key.denyTools) });
    const entry: KeyEntry = { key, source, auth, ...(issuedAt !== undefined && { issuedAt }) };
    this.#byHash.set(key.hash, entry);
    this.#byId.set(key.id, entry);
  }

  #check(entry: KeyEntry, now: number): KeyAuthenticated {
    const revoked = this.#revoked.get(entry.key.id);
    if (revoked !== undefined) throw new GatewayError('ATTEST_KEY_REVOKED', `API key "${entry.key.id}" was revoked at ${revoked.at}${revoked.reason === undefined ? '' : ` (${revoked.reason})`}`, { keyId: entry.key.id });
    if (entry.key.expiresAt !== undefined && Date.parse(entry.key.expiresAt) <= now) {
      throw new GatewayError('ATTEST_KEY_EXPIRED', `API key "${entry.key.id}" expired at ${entry.key.expiresAt}`, { keyId: entry.key.id });
    }
    return entry.auth;
  }

  /** Parses an Authorization header value carrying an API key; throws ATTEST_UNAUTHENTICATED / _KEY_EXPIRED / _KEY_REVOKED. */
  authenticateHeader(header: string | undefined, now = Date.now()): KeyAuthenticated {
    if (header === undefined || header.trim() === '') throw this.#missingCredential();
    return this.authenticateKey(bearerOf(header), now);
  }

  /** Any bearer credential: a JWT when it has the shape of one and `auth.jwt` is configured, else an API key. */
  async authenticateBearer(header: string | undefined, now = Date.now()): Promise<Authenticated> {
    if (header === undefined || header.trim() === '') {
      // Only a request with no credential at all: a wrong or malformed one is refused below, anonymous or not.
      if (this.anonymous !== undefined) return this.anonymous;
      throw this.#missingCredential();
    }
    const credential = bearerOf(header);
    if (looksLikeJwt(credential)) {
      if (this.#jwt === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', 'The bearer credential is a JWT, but this gateway accepts no tokens (auth.jwt is not configured): send an API key');
      return this.#jwt.verify(credential);
    }
    return this.authenticateKey(credential, now);
  }

  /** The refusal of a request without a credential: says what this gateway takes and how to send it. */
  #missingCredential(): GatewayError {
    if (this.#jwt === undefined) {
      return new GatewayError('ATTEST_UNAUTHENTICATED', 'No credential: this gateway takes an API key, sent as the HTTP header "Authorization: Bearer <key>"; it has no OAuth login (keys come from its operator: attest keys issue, or attest keys new and auth.keys)', { accepts: ['api-key'] });
    }
    return new GatewayError('ATTEST_UNAUTHENTICATED', `No credential: this gateway takes an API key or an OAuth access token (JWT) from ${this.#jwt.issuer}, sent as the HTTP header "Authorization: Bearer <credential>" (OAuth discovery: the resource_metadata of WWW-Authenticate)`, { accepts: ['api-key', 'jwt'] });
  }

  authenticateKey(presented: string, now = Date.now()): KeyAuthenticated {
    const entry = this.#byHash.get(hashApiKey(presented));
    if (entry === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', 'Invalid API key');
    return this.#check(entry, now);
  }

  /** The key configured under `id`, for principals established out of band (stdio). */
  byId(id: string, now = Date.now()): KeyAuthenticated {
    const entry = this.#byId.get(id);
    if (entry === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', `No key with id "${id}" is configured`);
    return this.#check(entry, now);
  }

  /** Deny wins over allow; no allow match → denied. `qualifiedTool` is `<upstream>__<tool>`. */
  toolAccess(keyId: string, qualifiedTool: string): ToolAccessVerdict {
    const entry = this.#byId.get(keyId);
    if (entry === undefined) return { allowed: false, ruleId: 'key-unknown', reason: `key "${keyId}" is not configured` };
    return entry.auth.access.check(qualifiedTool);
  }

  /** Whether `id` was ever used (configured, issued or revoked): ids are never reused. */
  hasId(id: string): boolean {
    return this.#byId.has(id) || this.#revoked.has(id);
  }

  isRevoked(id: string): boolean {
    return this.#revoked.has(id);
  }

  /** Ids of the keys not yet revoked under a tenant (and team), config keys included. */
  activeIdsUnder(tenant: string, team?: string): string[] {
    const out: string[] = [];
    for (const entry of this.#byId.values()) {
      if (entry.key.tenant !== tenant || (team !== undefined && entry.key.team !== team) || this.#revoked.has(entry.key.id)) continue;
      out.push(entry.key.id);
    }
    return out;
  }

  /**
   * Set by a reload while it builds the store that replaces this one: every event applied here is
   * handed on, so an issue or revocation recorded after the new store's read of the log is not lost
   * at the swap (gateway/reload.ts). `apply` is idempotent, so an event both read and handed on is
   * applied once in effect.
   */
  onApply: ((event: AttestEvent | EventDraft) => void) | undefined;

  /** The run-time keys this store applied (projections/keys.ts): what a reload hands to the store that replaces it. */
  readonly runTimeKeys: KeysState = emptyKeysState();

  /** The projection: applies a KeyIssued / KeyRevoked event (live after it is recorded, or read back at start). Idempotent. */
  apply(event: AttestEvent | EventDraft): void {
    this.onApply?.(event);
    if (event.type !== 'KeyIssued' && event.type !== 'KeyRevoked') return;
    evolveKeys(this.runTimeKeys, event);
    this.#derive();
  }

  /** Loads run-time keys folded from the log (start-up) or taken over from the store in force (a reload). */
  load(state: KeysState): void {
    for (const [id, issued] of state.issued) if (!this.runTimeKeys.issued.has(id)) this.runTimeKeys.issued.set(id, issued);
    for (const [id, revocation] of state.revoked) if (!this.runTimeKeys.revoked.has(id)) this.runTimeKeys.revoked.set(id, revocation);
    this.#derive();
  }

  /** Brings the lookup tables in line with `runTimeKeys` (adds what is new; issued and revoked ids never go away). */
  #derive(): void {
    for (const [id, d] of this.runTimeKeys.issued) {
      if (this.#byId.has(id)) continue; // a config key of the same id wins; issuing refuses this live
      this.#add(
        {
          id,
          hash: d.keyHash,
          tenant: d.tenant,
          ...(d.team !== undefined && { team: d.team }),
          ...(d.agent !== undefined && { agent: d.agent }),
          roles: [...d.roles],
          ...(d.expiresAt !== undefined && { expiresAt: d.expiresAt }),
          allowTools: [...d.allowTools],
          denyTools: [...d.denyTools],
        },
        'issued',
        d.issuedAt,
      );
    }
    for (const [id, revocation] of this.runTimeKeys.revoked) if (!this.#revoked.has(id)) this.#revoked.set(id, revocation);
  }

  view(id: string, now = Date.now()): KeyView | undefined {
    const entry = this.#byId.get(id);
    if (entry === undefined) return undefined;
    const { key } = entry;
    const revoked = this.#revoked.get(id);
    const expired = key.expiresAt !== undefined && Date.parse(key.expiresAt) <= now;
    return {
      id: key.id,
      source: entry.source,
      hash: key.hash,
      tenant: key.tenant,
      ...(key.team !== undefined && { team: key.team }),
      ...(key.agent !== undefined && { agent: key.agent }),
      roles: key.roles,
      ...(key.expiresAt !== undefined && { expiresAt: key.expiresAt }),
      allowTools: key.allowTools,
      denyTools: key.denyTools,
      status: revoked !== undefined ? 'revoked' : expired ? 'expired' : 'active',
      ...(entry.issuedAt !== undefined && { issuedAt: entry.issuedAt }),
      ...(revoked !== undefined && { revokedAt: revoked.at }),
      ...(revoked?.reason !== undefined && { revokedReason: revoked.reason }),
    };
  }

  list(filter: { readonly tenant?: string; readonly team?: string } = {}, now = Date.now()): KeyView[] {
    const out: KeyView[] = [];
    for (const id of this.#byId.keys()) {
      const view = this.view(id, now);
      if (view === undefined || (filter.tenant !== undefined && view.tenant !== filter.tenant) || (filter.team !== undefined && view.team !== filter.team)) continue;
      out.push(view);
    }
    return out;
  }
}

function anonymousAuthenticated(config: AnonymousAuthConfig): Authenticated {
  const principal: Principal = Object.freeze({
    kind: 'anonymous',
    id: 'anonymous',
    tenant: config.tenant,
    ...(config.agent !== undefined && { agent: config.agent }),
    roles: Object.freeze([...config.roles]),
  });
  return Object.freeze({ principal, credentialId: 'anonymous', access: new ToolAccess('anonymous', 'auth.anonymous', config.allowTools, config.denyTools) });
}

function bearerOf(header: string): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match?.[1] === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED', 'Malformed Authorization header: expected "Bearer <key>"');
  return match[1];
}
