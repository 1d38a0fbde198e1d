/** The key store a config asks for: at start and at every reload. */
import type { AttestConfig } from '#schemas';
import { ApiKeyStore } from './api-keys.ts';
import { JwtVerifier } from './jwt.ts';

/** The config's own keys, plus bearer tokens when `auth.jwt` is set and the anonymous principal when `auth.anonymous` is (run-time keys come from `rebuild(log)`). */
export function keyStoreFor(config: AttestConfig): ApiKeyStore {
  return new ApiKeyStore(config.auth.keys, { jwt: config.auth.jwt === undefined ? undefined : new JwtVerifier(config.auth.jwt), anonymous: config.auth.anonymous });
}
