import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalize, digestOf, eventHash, rememberCanonical } from './index.ts';

describe('canonical JSON (RFC 8785)', () => {
  it('sorts keys and normalises numbers as the RFC examples do', () => {
    // RFC 8785 §3.2.3 sorting and §3.2.2.3 number serialisation.
    assert.equal(canonicalize({ b: 2, a: 1, c: { z: [3, 1e21, 1e-7], y: 'é' } }), '{"a":1,"b":2,"c":{"y":"é","z":[3,1e+21,1e-7]}}');
    assert.equal(canonicalize({ numbers: [Number('333333333.33333329'), 1e30, 4.5, 0.002, 1e-27] }), '{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}');
  });

  it('hashes an event without its own hash field, and any change changes the hash', () => {
    const event = { id: 'x', seq: 1, data: { n: 1 } };
    const h = eventHash(event);
    assert.equal(eventHash({ ...event, hash: h }), h);
    assert.notEqual(eventHash({ ...event, data: { n: 2 } }), h);
  });

  it('digests are stable across key order', () => {
    assert.equal(digestOf({ a: 1, b: 2 }), digestOf({ b: 2, a: 1 }));
    assert.match(digestOf(undefined), /^sha256:[0-9a-f]{64}$/);
  });
});

describe('canonical JSON: byte-identical to the `canonicalize` package, and spliced payloads', () => {
  /** A deterministic generator of JSON values: nested objects/arrays, unicode keys, awkward numbers. */
  function* values(seed: number, count: number): Generator<unknown> {
    let state = seed;
    const next = (): number => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const numbers = [0, -0, 1, -1, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, 1.7976931348623157e308, 0.1 + 0.2, Number('333333333.33333329'), -123.456e-10];
    const strings = ['', 'a', 'é', '€', '\u0000\u001f"\\', '😀', 'z'.repeat(40), '\ud83d\ude00x', 'B', 'a\u0301', '\u2028'];
    const value = (depth: number): unknown => {
      const r = next();
      if (depth > 4 || r < 0.35) {
        const pick = next();
        if (pick < 0.35) return numbers[Math.floor(next() * numbers.length)];
        if (pick < 0.7) return strings[Math.floor(next() * strings.length)];
        if (pick < 0.8) return next() < 0.5;
        if (pick < 0.9) return null;
        return next() * 1e6 - 5e5;
      }
      if (r < 0.6) return Array.from({ length: Math.floor(next() * 5) }, () => value(depth + 1));
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 6); i > 0; i--) object[strings[Math.floor(next() * strings.length)] + String(Math.floor(next() * 3))] = value(depth + 1);
      if (next() < 0.2) object['skipped'] = undefined;
      return object;
    };
    for (let i = 0; i < count; i++) yield value(0);
  }

  it('gives the package\'s output on 5,000 generated values', async () => {
    const { default: reference } = await import('canonicalize');
    let compared = 0;
    for (const value of values(42, 5_000)) {
      assert.equal(canonicalize(value), reference(value));
      compared++;
    }
    assert.equal(compared, 5_000);
  });

  it('rejects what has no canonical form: NaN, Infinity, BigInt, lone surrogates, cycles, undefined', () => {
    assert.throws(() => canonicalize({ n: Number.NaN }), /NaN/);
    assert.throws(() => canonicalize([Number.POSITIVE_INFINITY]), /Infinity/);
    assert.throws(() => canonicalize({ n: 1n }), /BigInt/);
    assert.throws(() => canonicalize({ s: '\ud800' }), /surrogate/i);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    assert.throws(() => canonicalize(cyclic), /Circular/);
    assert.throws(() => canonicalize(undefined), /no canonical JSON form/);
    assert.equal(canonicalize([undefined, () => 1]), '[null,null]');
    assert.equal(canonicalize({ a: undefined, b: 1 }), '{"b":1}');
  });

  it('splices a remembered payload as it is, and the result equals a full canonicalisation', () => {
    const body = { z: 1, a: [true, { y: 'é' }] };
    const full = canonicalize({ data: { body }, id: 'e1' });
    rememberCanonical(body, canonicalize(body));
    assert.equal(canonicalize({ data: { body }, id: 'e1' }), full);
    // The remembered form is what is used (a marker instead of the real form proves the object was not walked again).
    const other = { k: 2 };
    rememberCanonical(other, '"remembered"');
    assert.equal(canonicalize({ x: other }), '{"x":"remembered"}');
    assert.equal(canonicalize({ x: other }), '{"x":{"k":2}}', 'used once, then walked again');
  });
});
