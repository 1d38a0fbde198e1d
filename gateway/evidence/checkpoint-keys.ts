/**
 * The checkpoint signing key and the trust it implies (docs/configuration.md "Evidence"): the
 * signer from `evidence.signingKey` (a `${ENV}` reference) or `evidence.keyFile`; with neither, a
 * key generated once under `state.dir` (the embedded default: it works out of the box, but the key
 * sits beside the log it vouches for). The trust — origin, the current verifier key and
 * `evidence.previousVerifierKeys` — is what opens every checkpoint this log has signed.
 *
 * Errors are ConfigErrors naming the key and what to do; none quotes a signer key or part of one.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '#schemas';
import type { AttestConfig } from '#schemas';
import { generateNoteKey, NoteError, parseSignerKey, parseVerifierKey } from '#eventlog';
import type { CheckpointTrust, NoteSigner, NoteVerifier } from '#eventlog';
import { redactSecretValues, signerKeySecrets } from '../logger.ts';
import type { Logger } from '../logger.ts';

/** Where the signer key came from. */
export type CheckpointKeySource =
  | { readonly kind: 'signingKey' }
  | { readonly kind: 'keyFile'; readonly path: string }
  /** Generated under state.dir because no key was configured (`created`: by this call). */
  | { readonly kind: 'generated'; readonly path: string; readonly created: boolean };

export interface CheckpointKeys {
  readonly signer: NoteSigner;
  /** Origin, the signer's verifier key, then each of evidence.previousVerifierKeys. */
  readonly trust: CheckpointTrust;
  readonly source: CheckpointKeySource;
}

export interface LoadCheckpointKeysOptions {
  /** With no key configured and none generated yet: make one (the gateway does; a CLI reading a log does not). */
  readonly generate?: boolean;
  /** The signer key read is added to this logger's redacted values. */
  readonly logger?: Logger;
}

/** The file a key is generated in when none is configured. */
export const GENERATED_KEY_FILE = 'evidence-signer.key';

export function generatedKeyPath(config: AttestConfig): string {
  return path.join(config.state.dir ?? '', GENERATED_KEY_FILE);
}

function invalid(key: string, message: string, cause?: unknown): ConfigError {
  return Object.assign(new ConfigError(`invalid config:\nevidence.${key}: ${message}`), cause === undefined ? {} : { cause });
}

function noteReason(error: unknown): string {
  if (error instanceof NoteError) return error.message;
  throw error;
}

function signerFrom(text: string, key: string): NoteSigner {
  try {
    return parseSignerKey(text);
  } catch (error) {
    throw invalid(key, `not a note signer key (${noteReason(error)}); make one with \`attest keys note NAME --out FILE\``);
  }
}

async function readKeyFile(file: string, key: string): Promise<string> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw invalid(key, code === 'ENOENT' ? `${file} does not exist; make it with \`attest keys note NAME --out ${file}\`` : `cannot read ${file} (${code ?? (error as Error).message})`, error);
  }
  // As ssh does with private keys: a key other users can read or replace is not a secret any more.
  if (process.platform !== 'win32' && (mode & 0o007) !== 0) {
    throw invalid(key, `${file} is accessible by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it (or 640, with a group only the gateway is in)`);
  }
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw invalid(key, `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, error);
  }
}

/** Creates the key file unless it exists (never overwritten); true when this call made it. */
async function generateKeyFile(file: string, name: string): Promise<boolean> {
  await mkdir(path.dirname(file), { recursive: true });
  try {
    await writeFile(file, `${generateNoteKey(name).signerKey}\n`, { mode: 0o600, flag: 'wx', flush: true });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

function trustedVerifiers(config: AttestConfig, current: NoteVerifier): NoteVerifier[] {
  const out: NoteVerifier[] = [current];
  config.evidence.previousVerifierKeys.forEach((text, i) => {
    let verifier: NoteVerifier;
    try {
      verifier = parseVerifierKey(text.trim());
    } catch (error) {
      throw invalid(`previousVerifierKeys[${i}]`, `not a note verifier key (${noteReason(error)})`);
    }
    if (!out.some((known) => known.key === verifier.key)) out.push(verifier);
  });
  return out;
}

/**
 * Loads the signer and the trust of the log's checkpoints. Throws a ConfigError for a key file that
 * is missing, readable by others or unreadable, a malformed signer or verifier key, or (without
 * `generate`) no key at all.
 */
export async function loadCheckpointKeys(config: AttestConfig, options: LoadCheckpointKeysOptions = {}): Promise<CheckpointKeys> {
  const { evidence } = config;
  const origin = evidence.origin ?? `attest/${config.gateway.instance}`;
  let signer: NoteSigner;
  let source: CheckpointKeySource;
  let text: string;
  if (evidence.signingKey !== undefined) {
    text = evidence.signingKey.trim();
    signer = signerFrom(text, 'signingKey');
    source = { kind: 'signingKey' };
  } else if (evidence.keyFile !== undefined) {
    text = await readKeyFile(evidence.keyFile, 'keyFile');
    signer = signerFrom(text, 'keyFile');
    source = { kind: 'keyFile', path: evidence.keyFile };
  } else {
    const file = generatedKeyPath(config);
    if (options.generate !== true && !(await exists(file))) {
      throw invalid('keyFile', `no checkpoint signing key: give evidence.keyFile or evidence.signingKey (make a key with \`attest keys note ${origin} --out FILE\`), or start the gateway once to generate ${file}`);
    }
    const created = options.generate === true && (await generateKeyFile(file, origin));
    text = await readKeyFile(file, 'keyFile');
    signer = signerFrom(text, `keyFile (generated in ${file})`);
    source = { kind: 'generated', path: file, created };
  }
  if (options.logger !== undefined) redactSecretValues(options.logger, signerKeySecrets(text));
  return { signer, trust: { origin, verifiers: trustedVerifiers(config, signer.verifier) }, source };
}
