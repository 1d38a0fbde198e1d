/**
 * Cost of the `redacted` data policy (gateway/redaction/redact.ts) on payloads of 100 B, 10 KB and
 * 1 MB shaped like tool arguments and results: a JSON object of short fields and text content with
 * a sprinkling of personal data and secrets (about one match per 300 bytes), and the same size of
 * clean text (the common case). Prints a Markdown table (docs/data-policy.md holds the last run).
 *
 *   node --conditions=attest-source bench/redaction.ts [--seconds 2]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { redactValue } from '#gateway';
import { canonicalize } from '#schemas';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
const budgetMs = Number(values.seconds) * 1000;

const SENSITIVE = [
  'contact jane.doe@example.com',
  'card 4111 1111 1111 1111',
  'iban DE89 3704 0044 0532 0130 00',
  'phone +49 30 1234567',
  'auth Bearer abcdef1234567890abcdef',
  'key sk-proj-abcdefghijklmnop1234567890',
];
const WORDS = 'the quick brown fox jumps over the lazy dog order 1234 5678 on 2024-01-15 version 1.2.3 path /srv/data/file.txt'.split(' ');

function text(bytes: number, withSecrets: boolean, seed: number): string {
  const parts: string[] = [];
  let size = 0;
  let i = seed;
  while (size < bytes) {
    const piece = withSecrets && i % 40 === 7 ? (SENSITIVE[i % SENSITIVE.length] ?? '') : (WORDS[i % WORDS.length] ?? '');
    parts.push(piece);
    size += piece.length + 1;
    i++;
  }
  return parts.join(' ').slice(0, bytes);
}

function payload(bytes: number, withSecrets: boolean): unknown {
  if (bytes <= 200) return { name: 'search', arguments: { query: text(bytes - 60, withSecrets, 7), limit: 10 } };
  const chunks = Math.max(1, Math.round(bytes / 4096));
  return { content: Array.from({ length: chunks }, (_, n) => ({ type: 'text', text: text(Math.floor(bytes / chunks) - 30, withSecrets, n * 13) })), isError: false };
}

function measure(value: unknown): { perOpUs: number; mbPerS: number; masked: number } {
  const bytes = Buffer.byteLength(canonicalize(value));
  let ops = 0;
  let masked = 0;
  for (let i = 0; i < 20; i++) masked = redactValue(value).total; // warm-up
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs || ops < 5) {
    redactValue(value);
    ops++;
    elapsed = performance.now() - start;
  }
  const perOpUs = (elapsed * 1000) / ops;
  return { perOpUs, mbPerS: bytes / (perOpUs / 1e6) / 1e6, masked };
}

const rows: string[] = ['| payload | content | µs per payload | MB/s | matches masked |', '|---|---|---:|---:|---:|'];
for (const [label, bytes] of [['100 B', 100], ['10 KB', 10 * 1024], ['1 MB', 1024 * 1024]] as const) {
  for (const withSecrets of [true, false]) {
    const value = payload(bytes, withSecrets);
    const r = measure(value);
    rows.push(`| ${label} (${Buffer.byteLength(canonicalize(value))} B) | ${withSecrets ? 'with PII and secrets' : 'clean text'} | ${r.perOpUs.toFixed(1)} | ${r.mbPerS.toFixed(1)} | ${r.masked} |`);
  }
}
console.log(rows.join('\n'));
console.log(`\nNode ${process.version}, ${values.seconds} s per row`);
