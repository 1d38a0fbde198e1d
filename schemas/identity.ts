/**
 * Identity config: JWT bearer tokens from an external identity provider (checked against its
 * JWKS) and the RFC 9728 protected-resource metadata that tells MCP clients where to get one.
 * Both optional: absent, the gateway authenticates API keys only, as before.
 */
import { z } from 'zod';

/** A tool pattern: `<upstream>__<tool>` where either side may be `*`; `*` alone matches all. */
export const toolPattern = z.string().regex(/^(\*|[a-zA-Z0-9_*-]+__[^\s]+)$/, 'a pattern "<upstream>__<tool>" ("*" allowed on either side) or "*"');

/** Asymmetric JWS algorithms only: `none` and the HMAC family (a shared secret) are never accepted. */
export const JwtAlgorithmSchema = z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

const claimName = z.string().min(1);

export const JwtAuthSchema = z
  .object({
    /** Expected `iss`, exactly. */
    issuer: z.string().min(1),
    /** Accepted `aud` values (the token must name one); usually the gateway's resource URL. */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The provider's JWKS document. */
    jwksUri: z.url({ protocol: /^https?$/ }),
    algorithms: z.array(JwtAlgorithmSchema).min(1).default(['RS256', 'ES256', 'EdDSA']),
    /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. */
    clockToleranceSec: z.number().int().nonnegative().max(600).default(30),
    /** Largest token age accepted (from `iat`), in seconds; absent → only `exp` limits it. */
    maxTokenAgeSec: z.number().int().positive().optional(),
    /** Which claims carry what. A missing tenant claim refuses the token unless `defaultTenant` is set. */
    claims: z
      .object({
        tenant: claimName.default('tenant'),
        team: claimName.default('team'),
        roles: claimName.default('roles'),
        agent: claimName.default('azp'),
      })
      .strict()
      .prefault({}),
    defaultTenant: z.string().min(1).optional(),
    /** jose's remote JWKS cache: fetch timeout, cooldown between refetches (unknown kid), maximum cache age. */
    jwks: z
      .object({
        timeoutMs: z.number().int().positive().default(5_000),
        cooldownMs: z.number().int().nonnegative().default(30_000),
        cacheMaxAgeMs: z.number().int().positive().default(600_000),
      })
      .strict()
      .prefault({}),
    /** Tools a token holder may call (as a key's lists: deny wins; no allow match → denied). */
    allowTools: z.array(toolPattern).default(['*']),
    denyTools: z.array(toolPattern).default([]),
  })
  .strict();
export type JwtAuthConfig = z.infer<typeof JwtAuthSchema>;

/**
 * The anonymous principal (docs/identity.md "Anonymous access"): requests over HTTP that carry no
 * credential at all are served as it, for local development with clients that cannot send headers.
 * Off unless `enabled`; the gateway refuses to start with it on a non-loopback bind unless
 * `allowNonLoopback`; a request that carries a credential is never served as it (a wrong key stays
 * a 401). It cannot hold `attest:admin`: the admin API always needs a credential.
 */
export const AnonymousAuthSchema = z
  .object({
    enabled: z.boolean().default(false),
    tenant: z.string().min(1).default('local'),
    agent: z.string().min(1).optional(),
    roles: z.array(z.string().min(1).refine((role) => role !== 'attest:admin', 'the admin API needs a credential: "attest:admin" cannot be given to requests without one')).default([]),
    /** Tools anonymous requests may call (as a key's lists: deny wins; no allow match → denied). */
    allowTools: z.array(toolPattern).default(['*']),
    denyTools: z.array(toolPattern).default([]),
    /** Serve anonymous requests on a non-loopback bind address too. Anyone who can reach the port is then "anonymous". */
    allowNonLoopback: z.boolean().default(false),
  })
  .strict();
export type AnonymousAuthConfig = z.infer<typeof AnonymousAuthSchema>;

/** RFC 9728 protected-resource metadata (`/.well-known/oauth-protected-resource[/mcp]`). */
export const ResourceMetadataSchema = z
  .object({
    /** The gateway's public base URL (`https://attest.example.com`); default: from the request's Host. */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Authorization servers agents get tokens from; default: `auth.jwt.issuer` when set. */
    authorizationServers: z.array(z.url({ protocol: /^https?$/ })).optional(),
    scopesSupported: z.array(z.string().min(1)).optional(),
    resourceName: z.string().min(1).optional(),
    resourceDocumentation: z.url({ protocol: /^https?$/ }).optional(),
  })
  .strict();
export type ResourceMetadataConfig = z.infer<typeof ResourceMetadataSchema>;
