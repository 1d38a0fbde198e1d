/**
 * RFC 8785 canonicalisation cost on the events the gateway seals: the `canonicalize` package
 * against schemas/canonical.ts, with and without the payload spliced in from its digest pass.
 * Bounded: `--iterations` per case (default 20,000; 1 MB: a 200th of it), best of 5 rounds.
 *
 *   node --conditions=attest-source bench/micro/canonical.ts [--iterations 20000]
 */
import { parseArgs } from 'node:util';
import canonicalizeJson from 'canonicalize';
import { canonicalize as canonicalJson, rememberCanonical } from '../../schemas/canonical.ts';
import { sampleDraft } from '../../eventlog/sample-drafts.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20000' } } });
const N = Number(values.iterations);

function eventWith(bodyBytes: number): { event: object; body: object } {
  const draft = sampleDraft('s-1', 0) as unknown as { data: { params: Record<string, unknown> } } & Record<string, unknown>;
  const body = { text: 'x'.repeat(Math.max(0, bodyBytes - 11)), nested: { list: [1, 2.5, 'é', true, null], z: 'last' } };
  const event = { ...draft, seq: 7, prevHash: 'a'.repeat(64), data: { ...draft.data, params: { ...draft.data.params, body } } };
  return { event, body };
}

process.stdout.write(`| payload | canonicalize (npm) µs | canonical-fast µs | canonical-fast, payload spliced µs |\n|---|---:|---:|---:|\n`);
for (const bytes of [100, 10_000, 1_000_000]) {
  const { event, body } = eventWith(bytes);
  const a = canonicalizeJson(event);
  const b = canonicalJson(event);
  if (a !== b) throw new Error('outputs differ');
  const iterations = bytes >= 1_000_000 ? Math.max(1, Math.floor(N / 200)) : N;
  const run = (fn: () => void): number => {
    let bestNs = Infinity;
    for (let round = 0; round < 5; round++) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) fn();
      bestNs = Math.min(bestNs, Number(process.hrtime.bigint() - t) / iterations);
    }
    return bestNs;
  };
  const npm = run(() => canonicalizeJson(event));
  const fast = run(() => canonicalJson(event));
  const spliced = { ...event };
  const bodyCopy = structuredClone(body);
  const bodyCanonical = canonicalJson(bodyCopy);
  rememberCanonical(bodyCopy, bodyCanonical);
  (spliced as { data: { params: Record<string, unknown> } }).data = { ...(event as { data: { params: Record<string, unknown> } }).data, params: { ...(event as { data: { params: Record<string, unknown> } }).data.params, body: bodyCopy } };
  if (canonicalJson(spliced) !== a) throw new Error('spliced output differs');
  // A remembered form is used once: remember it again before each splice, as recording does per payload.
  const splice = run(() => {
    rememberCanonical(bodyCopy, bodyCanonical);
    canonicalJson(spliced);
  });
  process.stdout.write(`| ${bytes} B | ${(npm / 1000).toFixed(2)} | ${(fast / 1000).toFixed(2)} | ${(splice / 1000).toFixed(2)} |\n`);
}
