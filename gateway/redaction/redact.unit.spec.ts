import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ibanValid, luhn, redactString, redactValue } from './redact.ts';
import { recordingFor, strictestRecording } from './data-policy.ts';
import { UpstreamSchema } from '#schemas';

describe('redaction', () => {
  const masks: readonly [string, string, string][] = [
    ['email', 'write to jane.doe+tag@example.co.uk today', 'write to [email] today'],
    ['card with spaces (Luhn)', 'card 4111 1111 1111 1111 exp 12/30', 'card [card] exp 12/30'],
    ['card with dashes (Luhn)', 'pay 5500-0000-0000-0004.', 'pay [card].'],
    ['IBAN with spaces (mod 97)', 'to DE89 3704 0044 0532 0130 00 please', 'to [iban] please'],
    ['IBAN followed by capitals', 'IBAN GB82 WEST 1234 5698 7654 32 AND MORE', 'IBAN [iban] AND MORE'],
    ['international phone', 'call +49 30 1234567 now', 'call [phone] now'],
    ['NANP phone', 'or (415) 555-0132 or 555-123-4567', 'or [phone] or [phone]'],
    ['JWT', 't=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end', 't=[jwt] end'],
    ['Bearer', 'Authorization: Bearer abcdef123456789', 'Authorization: Bearer [token]'],
    ['OpenAI key', 'key sk-proj-abcdefghijklmnop1234567890', 'key [api-key]'],
    ['GitHub tokens', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789 github_pat_11ABCDEFG0abcdefghijklmnopqrstuvwxyz', '[api-key] [api-key]'],
    ['Slack token', 'xoxb-123456789012-abcdefghij', '[api-key]'],
    ['AWS access key id', 'id AKIAIOSFODNN7EXAMPLE.', 'id [api-key].'],
    ['Attest key', 'atk_demo_do_not_use_in_production', '[api-key]'],
    ['high-entropy token', 'secret: Zx9Qv2Lm8Rt4Wk7Np3Ys6Hd1Jf5Gc0Bq', 'secret: [secret]'],
    ['an e-mail and a long token in one string', 'a@b.io key Zx9Qv2Lm8Rt4Wk7Np3Ys6Hd1Jf5Gc0Bq', '[email] key [secret]'],
  ];
  for (const [name, input, expected] of masks) {
    it(`masks ${name}`, () => assert.equal(redactString(input).value, expected));
  }

  const keeps: readonly [string, string][] = [
    ['an order number failing Luhn', 'order 1234 5678 9012 3456'],
    ['16 digits failing Luhn', 'ref 4111111111111112'],
    ['an IBAN-shaped string failing mod 97', 'GB82WEST12345698765433'],
    ['dates, IP addresses, versions', 'on 2024-01-15 at 192.168.100.200 with v1.2.3'],
    ['UUIDs and hex digests', '0192a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
    ['paths and identifiers', '/usr/local/lib/node_modules/modelcontextprotocol/server/dist and my_very_long_identifier_name_2'],
    ['a word ending in sk-', 'task-abcdefghijklmnopqrstuvwxyz'],
    ['base64 data longer than a key', 'A'.repeat(10) + 'b1'.repeat(400)],
  ];
  for (const [name, input] of keeps) {
    it(`keeps ${name}`, () => assert.equal(redactString(input).value, input));
  }

  it('walks objects and arrays, leaves keys alone, counts per kind, does not touch the input', () => {
    const input = { 'jane@example.com': ['mail jane@example.com', 4111111111111111, 42], nested: { note: 'call +44 20 7946 0958', ok: true, n: null } };
    const before = JSON.stringify(input);
    const out = redactValue(input);
    assert.deepEqual(out.value, { 'jane@example.com': ['mail [email]', '[card]', 42], nested: { note: 'call [phone]', ok: true, n: null } });
    assert.deepEqual(out.counts, { email: 1, card: 1, phone: 1 });
    assert.equal(out.total, 3);
    assert.equal(JSON.stringify(input), before);
  });

  it('returns the same object when nothing matched', () => {
    const input = { a: ['x', { b: 'plain text' }] };
    assert.equal(redactValue(input).value, input);
  });

  it('Luhn and mod 97', () => {
    assert.equal(luhn('79927398713'), true);
    assert.equal(luhn('79927398710'), false);
    assert.equal(ibanValid('GB82WEST12345698765432'), true);
    assert.equal(ibanValid('GB82WEST12345698765423'), false);
  });
});

describe('data policy per tool', () => {
  const config = UpstreamSchema.parse({ transport: 'stdio', command: 'x', recording: 'redacted', recordingByTool: { 'read_*': 'digest', read_public: 'full', '*_secret': 'digest' } });
  it('exact names win over patterns, patterns over the upstream default', () => {
    assert.equal(recordingFor(config, 'read_public'), 'full');
    assert.equal(recordingFor(config, 'read_file'), 'digest');
    assert.equal(recordingFor(config, 'get_secret'), 'digest');
    assert.equal(recordingFor(config, 'echo'), 'redacted');
    assert.equal(recordingFor(config), 'redacted');
    assert.equal(recordingFor(undefined, 'echo'), 'full');
  });
  it('the config refuses an unknown policy or a tool pattern with spaces, naming the key', () => {
    const bad = UpstreamSchema.safeParse({ transport: 'stdio', command: 'x', recording: 'masked', recordingByTool: { 'read file': 'digest' } });
    assert.equal(bad.success, false);
    const paths = bad.error?.issues.map((issue) => issue.path.join('.')) ?? [];
    assert.ok(paths.includes('recording'), paths.join(', '));
    assert.ok(paths.some((p) => p.startsWith('recordingByTool')), paths.join(', '));
  });
  it('the strictest default of several upstreams', () => {
    const full = UpstreamSchema.parse({ transport: 'stdio', command: 'x' });
    assert.equal(strictestRecording([full, config]), 'redacted');
    assert.equal(strictestRecording([full]), 'full');
  });
});
