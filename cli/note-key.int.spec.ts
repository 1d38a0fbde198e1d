/**
 * `attest keys note` in a real CLI process: the verifier key printed parses and matches the signer
 * key written to the file (mode 0600); the signer key is never printed; an existing file, a bad
 * name or a missing --out exit 2 with a precise message.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseSignerKey, parseVerifierKey } from '#eventlog';
import { runCli } from '../test/harness/cli.ts';

void describe('attest keys note', () => {
  void it('writes the signer key to --out only and prints the verifier key; refuses to overwrite and bad input', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-note-key-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'signer.key');
    const made = await runCli(['keys', 'note', 'example.com/attest', '--out', file]);
    assert.equal(made.code, 0, made.stderr);
    const printed = /^verifier key: (\S+)$/m.exec(made.stdout)?.[1];
    assert.ok(printed !== undefined, made.stdout);
    const verifier = parseVerifierKey(printed);
    assert.equal(verifier.name, 'example.com/attest');
    const secret = (await readFile(file, 'utf8')).trim();
    assert.equal(parseSignerKey(secret).verifier.key, printed, 'the file holds the signer of the printed verifier key');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(!made.stdout.includes(secret) && !made.stderr.includes(secret), 'the signer key is never printed');

    const again = await runCli(['keys', 'note', 'example.com/attest', '--out', file]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists: keys note never overwrites a key file/);
    assert.equal((await readFile(file, 'utf8')).trim(), secret);

    const badName = await runCli(['keys', 'note', 'has+plus', '--out', path.join(dir, 'b.key')]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /"has\+plus" is not a note key name/);
    const noOut = await runCli(['keys', 'note', 'example.com/attest']);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /needs --out FILE/);
  });
});
