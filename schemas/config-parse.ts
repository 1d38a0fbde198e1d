/**
 * Turns a parsed config document into a validated, frozen AttestConfig: `${ENV}` references
 * resolved, unknown keys rejected, errors naming the key path. Pure: the caller reads the file
 * and passes the environment. Resolved secrets are never echoed: errors name the variable only.
 */
import os from 'node:os';
import path from 'node:path';
import { digestOf, sha256Hex } from './canonical.ts';
import { ConfigSchema } from './config.ts';
import { formatConfigIssues } from './issues.ts';
import type { AttestConfig } from './config.ts';

export class ConfigError extends Error {
  readonly code = 'ATTEST_CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${NAME}` / `${NAME:-default}` in every string; an unset variable without default is an error naming the key path. */
export function resolveEnvRefs(value: unknown, env: Readonly<Record<string, string | undefined>>, at: readonly string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`invalid config:\n${at.join('.').replace(/\.\[/g, '[') || '(root)'}: environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveEnvRefs(v, env, [...at, `[${i}]`]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveEnvRefs(v, env, [...at, k])]));
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export interface ParsedConfig {
  readonly config: AttestConfig;
  /** `sha256:` digest of the config as written, before `${ENV}` resolution, so secrets never enter it. */
  readonly configHash: string;
}

/**
 * Where snapshots go when `state.dir` is not set: beside a file log (durable, like the log); for
 * Kafka and KurrentDB, a cache under the OS temp directory, one per instance and log — a lost
 * snapshot only makes the next start read more of the log (set `state.dir` to keep them).
 */
function defaultStateDir(config: AttestConfig): string {
  if (config.log.backend === 'file') return `${config.log.dir}.state`;
  const log = config.log.backend === 'kafka' ? `kafka:${config.log.topic}` : `kurrent:${config.log.streamPrefix}`;
  return path.join(os.tmpdir(), 'attest-state', `${config.gateway.instance}-${sha256Hex(log).slice(0, 12)}`);
}

const WHOLE_ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/**
 * For a config document as written in its file: a signer key is a secret, so evidence.signingKey
 * must be a `${ENV}` reference (or the key in evidence.keyFile), never the key itself.
 */
export function checkSigningKeyIsReference(raw: unknown): void {
  const evidence = (raw as { evidence?: { signingKey?: unknown } } | null)?.evidence;
  const written = evidence?.signingKey;
  if (typeof written === 'string' && !WHOLE_ENV_REF.test(written)) {
    throw new ConfigError('invalid config:\nevidence.signingKey: must be a ${ENV} reference such as ${ATTEST_CHECKPOINT_KEY}: a signer key is a secret and is never written in the config file (or give evidence.keyFile)');
  }
}

/** Validates a config document. Relative paths (log dir, state and evidence dirs, key file, stdio cwd) resolve against `baseDir`. */
export function parseConfig(raw: unknown, options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly baseDir?: string } = {}): ParsedConfig {
  const parsed = ConfigSchema.safeParse(resolveEnvRefs(raw, options.env ?? {}));
  if (!parsed.success) throw new ConfigError(`invalid config:\n${formatConfigIssues(parsed.error)}`);
  const config = parsed.data;
  const baseDir = options.baseDir ?? process.cwd();
  if (config.log.backend === 'file') config.log.dir = path.resolve(baseDir, config.log.dir);
  config.state.dir = path.resolve(baseDir, config.state.dir ?? defaultStateDir(config));
  const { evidence } = config;
  evidence.dir = path.resolve(baseDir, evidence.dir ?? path.join(config.state.dir, 'merkle'));
  evidence.origin ??= `attest/${config.gateway.instance}`;
  if (evidence.keyFile !== undefined) evidence.keyFile = path.resolve(baseDir, evidence.keyFile);
  for (const upstream of Object.values(config.upstreams)) {
    if (upstream.transport === 'stdio' && upstream.cwd !== undefined) upstream.cwd = path.resolve(baseDir, upstream.cwd);
  }
  return { config: deepFreeze(config), configHash: digestOf(raw) };
}
