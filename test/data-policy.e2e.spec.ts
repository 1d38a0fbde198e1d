/**
 * The data policy through the real gateway: an upstream recorded `redacted` with one tool kept as a
 * digest only. The agent gets every answer unchanged; the log keeps masked copies, the count of
 * what was masked, and the digest of the original — and the bytes of the log's segment files hold
 * none of the masked values.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { digestOf } from '#schemas';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';
const PHONE = '+49 30 1234567';
const DIGEST_ONLY_TEXT = 'kept-as-digest-only-7f3a';
const SECRETS = [EMAIL, CARD, IBAN, TOKEN, PHONE];

async function logBytes(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(await readFile(path.join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}

describe('data policy through the gateway', () => {
  let t: TestGateway | undefined;
  let base: string | undefined;
  after(async () => {
    await t?.close();
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  });

  it('records redacted arguments, results and error messages, digest-only tools, and never writes the masked values', { timeout: 60_000 }, async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'attest-data-policy-'));
    const logDir = path.join(base, 'log');
    t = await startTestGateway({ logDir, upstreams: { fixture: fixtureStdioUpstream({ recording: 'redacted', recordingByTool: { 'ec*': 'redacted', 'was_*': 'digest' } }) } });
    const mcp = `${t.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, t.headers);
    const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const text = `mail ${EMAIL}, card ${CARD}, iban ${IBAN}, token ${TOKEN}, phone ${PHONE}, order 1234 5678 9012 3456`;

    const echoed = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text } } }, headers);
    const content = (echoed.messages[0]?.['result'] as { content: { text: string }[] } | undefined)?.content[0]?.text;
    assert.equal(content, text, 'the agent gets the answer unchanged');

    const digestOnly = await rawPost(mcp, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__was_cancelled', arguments: { tag: DIGEST_ONLY_TEXT } } }, headers);
    assert.ok(digestOnly.messages[0]?.['result'], digestOnly.text);

    const thrown = errorOf(await rawPost(mcp, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fixture__throw', arguments: { message: `failed for ${EMAIL}` } } }, headers));
    assert.equal(thrown.message, `failed for ${EMAIL}`, 'the upstream error reaches the agent unchanged');

    const events = await t.events();
    const request = events.find((e) => e.type === 'RequestReceived' && e.data.target === 'echo');
    assert.ok(request?.type === 'RequestReceived');
    assert.equal(request.data.params.recording, 'redacted');
    assert.equal(request.data.params.digest, digestOf({ name: 'fixture__echo', arguments: { text } }), 'the digest is of the original');
    assert.deepEqual(request.data.params.redactions, { email: 1, card: 1, iban: 1, apiKey: 1, phone: 1 });
    assert.deepEqual(request.data.params.body, { name: 'fixture__echo', arguments: { text: 'mail [email], card [card], iban [iban], token [api-key], phone [phone], order 1234 5678 9012 3456' } });

    const echoResult = events.find((e) => e.type === 'ResultReturned' && e.callId === request.callId);
    assert.ok(echoResult?.type === 'ResultReturned');
    assert.equal(echoResult.data.result.recording, 'redacted');
    assert.equal(echoResult.data.result.redactions?.['email'], 1);

    const addRequest = events.find((e) => e.type === 'RequestReceived' && e.data.target === 'was_cancelled');
    assert.ok(addRequest?.type === 'RequestReceived');
    assert.equal(addRequest.data.params.recording, 'digest');
    assert.equal(addRequest.data.params.body, undefined);
    const addResult = events.find((e) => e.type === 'ResultReturned' && e.callId === addRequest.callId);
    assert.ok(addResult?.type === 'ResultReturned' && addResult.data.result.recording === 'digest' && addResult.data.result.body === undefined);

    const error = events.find((e) => e.type === 'ErrorReturned' && e.data.from === 'upstream');
    assert.ok(error?.type === 'ErrorReturned');
    assert.equal(error.data.message, 'failed for [email]');
    assert.deepEqual(error.data.data?.body, { tool: 'throw' }, "the error's data is recorded under the policy too");

    await t.close();
    t = undefined;
    const bytes = await logBytes(logDir);
    assert.ok(bytes.includes('[email]'), 'the log was read (placeholders are in it)');
    for (const secret of SECRETS) assert.equal(bytes.includes(secret), false, `the log files hold "${secret}"`);
    assert.equal(bytes.includes(DIGEST_ONLY_TEXT), false);
    assert.equal(bytes.includes('4111111111111111'), false);
  });
});
