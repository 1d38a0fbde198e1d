/**
 * Loading the checkpoint key from real files and the environment: each way of giving it, the
 * generated key of the embedded default (once, 0600, never overwritten), and every refusal — each
 * a ConfigError naming the key and what to do, none quoting any part of a signer key.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generateNoteKey, openCheckpoint, signCheckpoint } from '#eventlog';
import { ConfigError, parseConfig } from '#schemas';
import type { AttestConfig } from '#schemas';
import { generatedKeyPath, loadCheckpointKeys } from './checkpoint-keys.ts';

function configOf(dir: string, evidence: Record<string, unknown>, env: Record<string, string> = {}): AttestConfig {
  return parseConfig({ log: { backend: 'file', dir: 'log' }, evidence: { enabled: true, ...evidence }, upstreams: { fs: { transport: 'stdio', command: 'node' } } }, { baseDir: dir, env }).config;
}

async function refusal(config: AttestConfig, secret?: string, options = {}): Promise<string> {
  try {
    await loadCheckpointKeys(config, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    if (secret !== undefined) {
      const seed = secret.split('+').slice(4).join('+');
      assert.ok(!error.message.includes(seed) && !error.message.includes(seed.slice(0, 12)), `no key material in: ${error.message}`);
    }
    return error.message;
  }
  assert.fail('the key was accepted');
}

const checkpoint = { origin: 'attest/gw-1', size: 3, root: Buffer.alloc(32, 7), extensions: [] };

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-ckpt-keys-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

void describe('loadCheckpointKeys', () => {
  void it('takes the signer from a ${ENV} reference; the trust opens what it signs under the default origin', async (t) => {
    const dir = await tempDir(t);
    const key = generateNoteKey('attest/gw-1');
    const keys = await loadCheckpointKeys(configOf(dir, { signingKey: '${CKPT_KEY}' }, { CKPT_KEY: `${key.signerKey}\n` }));
    assert.deepEqual(keys.source, { kind: 'signingKey' });
    assert.equal(keys.trust.origin, 'attest/gw-1');
    assert.deepEqual(keys.trust.verifiers.map((v) => v.key), [key.verifierKey]);
    assert.equal(openCheckpoint(signCheckpoint(checkpoint, keys.signer), keys.trust).checkpoint.size, 3);
  });

  void it('reads a key file as `attest keys note` writes it, and trusts previous verifier keys (deduplicated)', async (t) => {
    const dir = await tempDir(t);
    const key = generateNoteKey('example.com/attest');
    const old = generateNoteKey('example.com/attest');
    await writeFile(path.join(dir, 'ckpt.key'), `${key.signerKey}\n`, { mode: 0o600 });
    const keys = await loadCheckpointKeys(configOf(dir, { keyFile: 'ckpt.key', origin: 'example.com/attest', previousVerifierKeys: [old.verifierKey, key.verifierKey, ` ${old.verifierKey} `] }));
    assert.deepEqual(keys.source, { kind: 'keyFile', path: path.join(dir, 'ckpt.key') });
    assert.deepEqual(keys.trust.verifiers.map((v) => v.key), [key.verifierKey, old.verifierKey]);
    const signedByOld = signCheckpoint({ ...checkpoint, origin: 'example.com/attest' }, old.signer);
    assert.equal(openCheckpoint(signedByOld, keys.trust).note.verified[0]?.name, 'example.com/attest');
  });

  void it('refuses a missing key file, one other users can read, and a malformed key, without quoting it', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'ckpt.key');
    assert.match(await refusal(configOf(dir, { keyFile: 'ckpt.key' })), new RegExp(`evidence\\.keyFile: ${file} does not exist; make it with \`attest keys note NAME --out ${file}\``));
    const key = generateNoteKey('attest/gw-1');
    await writeFile(file, `${key.signerKey}\n`, { mode: 0o600 });
    await chmod(file, 0o644);
    assert.match(await refusal(configOf(dir, { keyFile: 'ckpt.key' }), key.signerKey), /evidence\.keyFile: .*ckpt\.key is accessible by other users \(mode 0644\): chmod 600 it/);
    // One character of the seed changed: the key id no longer matches the derived public key.
    const seedAt = key.signerKey.lastIndexOf('+') + 6;
    const mangled = `${key.signerKey.slice(0, seedAt)}${key.signerKey[seedAt] === 'A' ? 'B' : 'A'}${key.signerKey.slice(seedAt + 1)}`;
    await writeFile(file, mangled);
    await chmod(file, 0o600);
    assert.match(await refusal(configOf(dir, { keyFile: 'ckpt.key' }), mangled), /evidence\.keyFile: not a note signer key \(the signer key says key id [0-9a-f]{8}, its name and derived public key give [0-9a-f]{8}\)/);
    await writeFile(file, key.signerKey.slice(0, -10));
    assert.match(await refusal(configOf(dir, { keyFile: 'ckpt.key' }), key.signerKey), /evidence\.keyFile: not a note signer key \(the signer key has key data that is not canonical base64\)/);
    assert.match(await refusal(configOf(dir, { signingKey: '${K}' }, { K: key.verifierKey })), /evidence\.signingKey: not a note signer key \(a signer key starts with PRIVATE\+KEY\+\)/);
    assert.match(await refusal(configOf(dir, { signingKey: '${K}', previousVerifierKeys: ['attest/gw-1+0000'] }, { K: key.signerKey })), /evidence\.previousVerifierKeys\[0\]: not a note verifier key \(the verifier key is not <name>\+<key id>\+<key>\)/);
  });

  void it('with no key configured, generates one under state.dir once (0600, never overwritten); a reader without generate refuses', async (t) => {
    const dir = await tempDir(t);
    const config = configOf(dir, {});
    assert.match(await refusal(config), /evidence\.keyFile: no checkpoint signing key: give evidence\.keyFile or evidence\.signingKey/);
    const first = await loadCheckpointKeys(config, { generate: true });
    const file = generatedKeyPath(config);
    assert.deepEqual(first.source, { kind: 'generated', path: file, created: true });
    assert.equal(path.dirname(file), config.state.dir);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(first.signer.name, 'attest/gw-1');
    const written = await readFile(file, 'utf8');
    const again = await loadCheckpointKeys(config, { generate: true });
    assert.deepEqual(again.source, { kind: 'generated', path: file, created: false });
    assert.equal(again.signer.verifier.key, first.signer.verifier.key);
    assert.equal(await readFile(file, 'utf8'), written, 'not overwritten');
    const reader = await loadCheckpointKeys(config);
    assert.equal(reader.trust.verifiers[0]?.key, first.signer.verifier.key);
  });
});
