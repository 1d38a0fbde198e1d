/**
 * JWT bearer tokens from an external identity provider, verified with jose against the
 * provider's JWKS (createRemoteJWKSet: keys cached, refetched on an unknown `kid` at most once per
 * cooldown). Checked: signature, allowed asymmetric algorithms (never `none`), `iss`, `aud`,
 * `exp` (required), `nbf`, `iat` age, with the configured clock tolerance. Claims map to the
 * principal (tenant, team, roles, agent). Every refusal is a 401 whose message says what failed
 * and never contains the token.
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { GatewayError } from '#schemas';
import type { JwtAuthConfig, Principal } from '#schemas';
import { ToolAccess } from './api-keys.ts';
import type { Authenticated, BearerTokenVerifier } from './api-keys.ts';

export type TokenRefusalReason = 'malformed' | 'algorithm' | 'expired' | 'not-yet-valid' | 'issuer' | 'audience' | 'signature' | 'unknown-kid' | 'claims';

function refuse(reason: TokenRefusalReason, message: string): GatewayError {
  return new GatewayError('ATTEST_TOKEN_INVALID', `Invalid bearer token: ${message}`, { reason });
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw refuse('claims', `claim "${name}" must be a non-empty string`);
  return value;
}

function rolesClaim(payload: JWTPayload, name: string): string[] {
  const value = payload[name];
  if (value === undefined) return [];
  // Providers send roles as an array, or as a space-separated string like `scope`.
  if (typeof value === 'string') return value.split(' ').filter((role) => role !== '');
  if (Array.isArray(value) && value.every((role) => typeof role === 'string')) return value;
  throw refuse('claims', `claim "${name}" must be an array of strings or a space-separated string`);
}

export class JwtVerifier implements BearerTokenVerifier {
  readonly issuer: string;
  readonly #config: JwtAuthConfig;
  readonly #jwks: JWTVerifyGetKey;
  readonly #audience: string[];
  readonly #access: ToolAccess;

  constructor(config: JwtAuthConfig) {
    this.#config = config;
    this.issuer = config.issuer;
    this.#audience = Array.isArray(config.audience) ? config.audience : [config.audience];
    this.#jwks = createRemoteJWKSet(new URL(config.jwksUri), { timeoutDuration: config.jwks.timeoutMs, cooldownDuration: config.jwks.cooldownMs, cacheMaxAge: config.jwks.cacheMaxAgeMs });
    this.#access = new ToolAccess('jwt', 'auth.jwt', config.allowTools, config.denyTools);
  }

  async verify(token: string): Promise<Authenticated> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw refuse('malformed', 'the JOSE header is not base64url-encoded JSON');
    }
    // Checked before any key lookup, so `none` and HMAC never reach jose or the JWKS endpoint.
    if (alg === undefined || !(this.#config.algorithms as readonly string[]).includes(alg)) {
      throw refuse('algorithm', `algorithm "${alg ?? '(none given)'}" is not accepted (allowed: ${this.#config.algorithms.join(', ')})`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.#config.issuer,
        audience: this.#audience,
        algorithms: this.#config.algorithms,
        clockTolerance: this.#config.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
        ...(this.#config.maxTokenAgeSec !== undefined && { maxTokenAge: this.#config.maxTokenAgeSec }),
      }));
    } catch (error) {
      throw this.#classify(error);
    }
    return this.#authenticated(payload);
  }

  #classify(error: unknown): GatewayError {
    if (error instanceof errors.JWTExpired) return refuse('expired', `the token expired (exp ${String(error.payload['exp'])}, clock tolerance ${this.#config.clockToleranceSec} s)`);
    if (error instanceof errors.JWTClaimValidationFailed) {
      if (error.claim === 'iss') return refuse('issuer', `unexpected issuer (expected "${this.#config.issuer}")`);
      if (error.claim === 'aud') return refuse('audience', `the token is not meant for this gateway (audience must be one of: ${this.#audience.join(', ')})`);
      if (error.claim === 'nbf') return refuse('not-yet-valid', 'the token is not valid yet (nbf)');
      return refuse('claims', `claim "${error.claim}" check failed: ${error.reason}`);
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) return refuse('signature', 'the signature does not verify with the identity provider\'s key');
    if (error instanceof errors.JWKSNoMatchingKey) return refuse('unknown-kid', 'no key in the identity provider\'s JWKS matches the token\'s "kid" and algorithm');
    if (error instanceof errors.JWKSMultipleMatchingKeys) return refuse('unknown-kid', 'several JWKS keys match and the token names no "kid"');
    if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return refuse('algorithm', error.message);
    if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return refuse('malformed', error.message);
    // Anything else came from fetching the JWKS: timeout, connection refused, non-200, not JSON, not a JWKS.
    const detail = error instanceof errors.JWKSTimeout ? `no answer within ${this.#config.jwks.timeoutMs} ms` : error instanceof Error ? error.message : String(error);
    return new GatewayError('ATTEST_JWKS_UNAVAILABLE', `The identity provider's signing keys could not be fetched from ${this.#config.jwksUri} (${detail}); the token cannot be checked (fail closed)`);
  }

  #authenticated(payload: JWTPayload): Authenticated {
    const claims = this.#config.claims;
    const sub = stringClaim(payload, 'sub');
    const iss = stringClaim(payload, 'iss');
    if (sub === undefined || iss === undefined) throw refuse('claims', 'the token has no "sub" or "iss"');
    const tenant = stringClaim(payload, claims.tenant) ?? this.#config.defaultTenant;
    if (tenant === undefined) throw refuse('claims', `claim "${claims.tenant}" (the tenant) is missing and auth.jwt.defaultTenant is not set`);
    const team = stringClaim(payload, claims.team);
    const agent = stringClaim(payload, claims.agent);
    const principal: Principal = Object.freeze({
      kind: 'jwt',
      id: sub,
      tenant,
      ...(team !== undefined && { team }),
      ...(agent !== undefined && { agent }),
      roles: Object.freeze(rolesClaim(payload, claims.roles)),
    });
    return { principal, credentialId: `jwt:${iss}#${sub}`, access: this.#access };
  }
}
