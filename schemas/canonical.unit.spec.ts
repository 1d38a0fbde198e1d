import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalize, digestOf, eventHash } from './index.ts';

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
