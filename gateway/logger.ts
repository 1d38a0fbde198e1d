import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type { AttestConfig } from '#schemas';

export type { Logger } from 'pino';

/**
 * Keys whose values can carry credentials, wherever they appear in a log object (top level and one
 * or two levels down: `{ err: { config: { headers } } }`). pino replaces them before serialising.
 */
const SECRET_KEYS = ['authorization', 'Authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'headers', 'env', 'apiKey', 'api_key', 'token', 'accessToken', 'password', 'secret', 'sasl', 'connectionString', 'credentials', 'signingKey', 'signerKey'];
export const REDACT_PATHS: readonly string[] = SECRET_KEYS.flatMap((key) => {
  const segment = /^[a-zA-Z_$][a-zA-Z0-9_$]*$/.test(key) ? key : `["${key}"]`;
  const join = (prefix: string): string => (segment.startsWith('[') ? `${prefix}${segment}` : `${prefix}.${segment}`);
  return [segment.startsWith('[') ? segment : key, join('*'), join('*.*')];
});

const CENSOR = '[redacted]';
/** Shorter values would blank out ordinary words and numbers; secrets from the config are longer. */
const MIN_SECRET_LENGTH = 6;

const secretValues = new WeakMap<Logger, string[]>();

/**
 * Structured JSON logs on stderr (stdout belongs to the stdio transport). Two layers keep secrets
 * out: keys that carry them are redacted by path (pino `redact`), and the secret values the config
 * resolved (upstream header and env values, URL passwords, OTLP headers, Kafka SASL password) are
 * replaced in every line before it is written, wherever they show up — an upstream's stderr tail,
 * an error message quoting a header. `redactSecretValues` adds them once the config is parsed.
 */
export function createLogger(level: string = process.env['ATTEST_LOG_LEVEL'] ?? 'info', destination: DestinationStream = pino.destination({ fd: 2, sync: false })): Logger {
  const secrets: string[] = [];
  const logger = pino(
    {
      level,
      base: { service: 'attest' },
      redact: { paths: [...REDACT_PATHS], censor: CENSOR },
      hooks: { streamWrite: (line) => scrub(line, secrets) },
    },
    destination,
  );
  secretValues.set(logger, secrets);
  return logger;
}

/** Values never to be written by this logger (and its children). A logger not made by createLogger is left alone. */
export function redactSecretValues(logger: Logger, values: Iterable<string>): void {
  const secrets = secretValues.get(logger);
  if (secrets === undefined) return;
  for (const value of values) {
    if (value.length < MIN_SECRET_LENGTH) continue;
    // As it appears inside a JSON string, and as written (for text logged unescaped).
    for (const form of new Set([JSON.stringify(value).slice(1, -1), value])) if (!secrets.includes(form)) secrets.push(form);
  }
  // Longest first, so a secret that contains another is replaced whole.
  secrets.sort((a, b) => b.length - a.length);
}

/** Every credential the config resolved from `${ENV}` references or holds in URLs. */
export function secretValuesOf(config: AttestConfig): string[] {
  const out: string[] = [];
  const fromUrl = (raw: string): void => {
    try {
      const url = new URL(raw);
      if (url.password !== '') {
        const password = decodeURIComponent(url.password);
        // The HTTP link turns URL credentials into a Basic Authorization header.
        out.push(url.password, password, Buffer.from(`${decodeURIComponent(url.username)}:${password}`).toString('base64'));
      }
      for (const value of url.searchParams.values()) out.push(value);
    } catch {
      // not a URL: nothing to take
    }
  };
  for (const upstream of Object.values(config.upstreams)) {
    if (upstream.transport === 'stdio') out.push(...Object.values(upstream.env));
    else {
      out.push(...Object.values(upstream.headers).flatMap(headerSecrets));
      fromUrl(upstream.url);
    }
  }
  const tracing = config.observability.tracing;
  if (tracing !== undefined) {
    out.push(...Object.values(tracing.headers).flatMap(headerSecrets));
    fromUrl(tracing.endpoint);
  }
  if (config.log.backend === 'kafka' && config.log.sasl !== undefined) out.push(config.log.sasl.password);
  if (config.log.backend === 'kurrent') fromUrl(config.log.connectionString.replace(/^(esdb|kurrentdb|kdb)(\+discover)?:/, 'http:'));
  if (config.evidence.signingKey !== undefined) out.push(...signerKeySecrets(config.evidence.signingKey));
  return out;
}

/** A note signer key (`PRIVATE+KEY+<name>+<id>+<base64>`, the base64 may hold '+'), and its base64 seed alone. */
export function signerKeySecrets(key: string): string[] {
  const seed = key.trim().split('+').slice(4).join('+');
  return seed.length > 0 ? [key.trim(), seed] : [key.trim()];
}

/** A header value and, for `Bearer x` / `Basic x`, the credential alone. */
function headerSecrets(value: string): string[] {
  const credential = /^\s*\S+\s+(\S+)\s*$/.exec(value)?.[1];
  return credential === undefined ? [value] : [value, credential];
}

/** `text` with each of `values` replaced as the logger replaces them (same minimum length), for text shown outside the log (/healthz). */
export function scrubSecretValues(text: string, values: Iterable<string>): string {
  const secrets = [...new Set(values)].filter((value) => value.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  return scrub(text, secrets);
}

function scrub(line: string, secrets: readonly string[]): string {
  let out = line;
  for (const secret of secrets) if (out.includes(secret)) out = out.replaceAll(secret, CENSOR);
  return out;
}
