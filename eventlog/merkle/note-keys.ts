/**
 * Ed25519 keys for C2SP signed notes, in the text forms of golang.org/x/mod/sumdb/note:
 *   verifier key  <name>+<8 hex key id>+<base64(0x01 ‖ 32-byte public key)>
 *   signer key    PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte seed)>
 *   key id        first 4 bytes (big-endian) of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)
 * Names are non-empty and contain no Unicode space, no '+' and no control character. The base64
 * part may itself contain '+': only the first separators split.
 *
 * node:crypto does the Ed25519 (RFC 8032) work: a raw seed becomes a KeyObject through its
 * PKCS#8 DER form, a raw public key through SPKI.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { NoteError } from './errors.ts';
import { decodeBase64 } from './strict-base64.ts';

/** Signature type byte of Ed25519 in signed notes. */
const ED25519 = 0x01;
const ED25519_KEY_BYTES = 32;
/** DER of a PKCS#8 Ed25519 private key, up to the 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** DER of an SPKI Ed25519 public key, up to the 32-byte key (RFC 8410). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SIGNER_PREFIX = 'PRIVATE+KEY+';
const NAME = /^[^\s+\p{Cc}]+$/u;

/** A key name signed notes accept: non-empty, no Unicode space, no '+', no control character. */
export function isValidKeyName(name: string): boolean {
  return name.isWellFormed() && NAME.test(name);
}

/** The signed-note key id of an Ed25519 key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] as a big-endian uint32. */
export function noteKeyId(name: string, publicKey: Uint8Array): number {
  return createHash('sha256').update(`${name}\n`).update(Buffer.from([ED25519])).update(publicKey).digest().readUInt32BE(0);
}

function hex8(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** A public key that verifies signatures in notes: known to a verifier by its name and key id. */
export class NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Buffer;
  readonly #key: KeyObject;

  constructor(name: string, publicKey: Uint8Array) {
    if (!isValidKeyName(name)) throw new NoteError('malformed-key', `key name ${JSON.stringify(name)} must be non-empty, with no space, '+' or control character`);
    if (publicKey.length !== ED25519_KEY_BYTES) throw new NoteError('malformed-key', `an Ed25519 public key is ${ED25519_KEY_BYTES} bytes, not ${publicKey.length}`);
    this.name = name;
    this.publicKey = Buffer.from(publicKey);
    this.keyId = noteKeyId(name, publicKey);
    this.#key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  }

  /** `<name>+<key id>+<base64(0x01 ‖ public key)>`. */
  get key(): string {
    return formatVerifierKey(this.name, this.publicKey);
  }

  /** `<name>+<key id>`, as errors name keys. */
  get label(): string {
    return `${this.name}+${hex8(this.keyId)}`;
  }

  /** True when `signature` (64 bytes) is this key's Ed25519 signature of `message`. */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    return signature.length === 64 && verify(null, message, this.#key, signature);
  }
}

/** A private key that signs notes. The seed stays inside (not an enumerable property: it never prints). */
export class NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly verifier: NoteVerifier;
  readonly #key: KeyObject;

  constructor(name: string, seed: Uint8Array) {
    if (seed.length !== ED25519_KEY_BYTES) throw new NoteError('malformed-key', `an Ed25519 seed is ${ED25519_KEY_BYTES} bytes, not ${seed.length}`);
    this.#key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(this.#key).export({ format: 'der', type: 'spki' });
    this.verifier = new NoteVerifier(name, spki.subarray(spki.length - ED25519_KEY_BYTES));
    this.name = name;
    this.keyId = this.verifier.keyId;
  }

  /** The 64-byte Ed25519 signature of `message`. */
  sign(message: Uint8Array): Buffer {
    return sign(null, message, this.#key);
  }
}

/** `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`. */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new NoteError('malformed-key', `key name ${JSON.stringify(name)} must be non-empty, with no space, '+' or control character`);
  if (publicKey.length !== ED25519_KEY_BYTES) throw new NoteError('malformed-key', `an Ed25519 public key is ${ED25519_KEY_BYTES} bytes, not ${publicKey.length}`);
  return `${name}+${hex8(noteKeyId(name, publicKey))}+${Buffer.concat([Buffer.from([ED25519]), publicKey]).toString('base64')}`;
}

/** `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ seed)>`: a secret, to be stored as one. */
export function formatSignerKey(name: string, seed: Uint8Array): string {
  const signer = new NoteSigner(name, seed);
  return `${SIGNER_PREFIX}${name}+${hex8(signer.keyId)}+${Buffer.concat([Buffer.from([ED25519]), seed]).toString('base64')}`;
}

interface KeyParts {
  readonly name: string;
  readonly keyId: number;
  readonly material: Buffer;
}

/**
 * Splits `<name>+<hex id>+<base64>` and checks each part's form; `what` names the key in errors.
 * For a signer key (`secret`) no part is quoted: a mangled separator can shift key data into them.
 */
function splitKey(text: string, what: string, secret: boolean): KeyParts {
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw new NoteError('malformed-key', `${what} is not <name>+<key id>+<key>`);
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  const material = decodeBase64(text.slice(second + 1));
  const quoted = (part: string): string => (secret ? '' : ` ${JSON.stringify(part)}`);
  if (!isValidKeyName(name)) throw new NoteError('malformed-key', `${what} has an invalid name${quoted(name)}`);
  if (!/^[0-9a-f]{8}$/.test(id)) throw new NoteError('malformed-key', `${what} has a key id${quoted(id)} that is not 8 lowercase hex digits`);
  if (material === undefined) throw new NoteError('malformed-key', `${what} has key data that is not canonical base64`);
  if (material[0] !== ED25519) throw new NoteError('malformed-key', `${what} is of signature type ${material.length === 0 ? 'none' : `0x${(material[0] as number).toString(16).padStart(2, '0')}`}, only 0x01 (Ed25519) is supported`);
  if (material.length !== 1 + ED25519_KEY_BYTES) throw new NoteError('malformed-key', `${what} has ${material.length - 1} bytes of Ed25519 key, not ${ED25519_KEY_BYTES}`);
  return { name, keyId: Number.parseInt(id, 16), material: material.subarray(1) };
}

/** Parses a verifier key (`<name>+<key id>+<base64(0x01 ‖ public key)>`); the key id must match. */
export function parseVerifierKey(text: string): NoteVerifier {
  const { name, keyId, material } = splitKey(text, 'the verifier key', false);
  const verifier = new NoteVerifier(name, material);
  if (verifier.keyId !== keyId) throw new NoteError('key-id-mismatch', `the verifier key says key id ${hex8(keyId)}, its name and public key give ${hex8(verifier.keyId)}`);
  return verifier;
}

/** Parses a signer key (`PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`); the key id must match the derived public key. Errors never include the key. */
export function parseSignerKey(text: string): NoteSigner {
  if (!text.startsWith(SIGNER_PREFIX)) throw new NoteError('malformed-key', `a signer key starts with ${SIGNER_PREFIX}`);
  const { name, keyId, material } = splitKey(text.slice(SIGNER_PREFIX.length), 'the signer key', true);
  const signer = new NoteSigner(name, material);
  if (signer.keyId !== keyId) throw new NoteError('key-id-mismatch', `the signer key says key id ${hex8(keyId)}, its name and derived public key give ${hex8(signer.keyId)}`);
  return signer;
}

export interface GeneratedNoteKey {
  readonly signer: NoteSigner;
  /** The secret, in signer-key text form. */
  readonly signerKey: string;
  /** The public key, in verifier-key text form: what witnesses and auditors are given. */
  readonly verifierKey: string;
}

/** A new Ed25519 key pair for `name` (a schema-less URL is recommended, e.g. the log's origin). */
export function generateNoteKey(name: string): GeneratedNoteKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const seed = pkcs8.subarray(pkcs8.length - ED25519_KEY_BYTES);
  const signer = new NoteSigner(name, seed);
  return { signer, signerKey: formatSignerKey(name, seed), verifierKey: signer.verifier.key };
}
