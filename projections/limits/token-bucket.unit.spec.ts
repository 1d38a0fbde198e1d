import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RateLimitRule } from '#schemas';
import { checkRateLimit, evolveRateLimit, fullAt, tokensAt } from './token-bucket.ts';
import type { BucketState } from './token-bucket.ts';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const rule = (capacity: number, refillPerSecond: number): RateLimitRule => ({ id: 'rl', scope: 'key', capacity, refillPerSecond });

function drain(r: RateLimitRule, times: readonly number[]): BucketState | undefined {
  let bucket: BucketState | undefined;
  for (const at of times) {
    assert.equal(checkRateLimit(bucket, r, at).effect, 'allow', `call at +${at - T0} ms`);
    bucket = evolveRateLimit(bucket, r, { at });
  }
  return bucket;
}

/** A retry at exactly now + retryAfterMs is allowed, one ms earlier is not. */
function assertExactRetry(bucket: BucketState | undefined, r: RateLimitRule, now: number): number {
  const verdict = checkRateLimit(bucket, r, now);
  assert.equal(verdict.effect, 'deny');
  if (verdict.effect !== 'deny') return 0;
  assert.equal(checkRateLimit(bucket, r, now + verdict.retryAfterMs).effect, 'allow', `at +${verdict.retryAfterMs} ms`);
  if (verdict.retryAfterMs > 1) assert.equal(checkRateLimit(bucket, r, now + verdict.retryAfterMs - 1).effect, 'deny', `at +${verdict.retryAfterMs - 1} ms`);
  return verdict.retryAfterMs;
}

describe('token bucket', () => {
  it('allows a burst of capacity, then refuses with the limit and an exact retryAfterMs', () => {
    const r = rule(2, 0.5);
    const bucket = drain(r, [T0, T0]);
    assert.deepEqual(checkRateLimit(bucket, r, T0), { effect: 'deny', limitId: 'rl', limit: 2, refillPerSecond: 0.5, retryAfterMs: 2000 });
    assert.equal(assertExactRetry(bucket, r, T0 + 500), 1500);
    assert.equal(checkRateLimit(bucket, r, T0 + 2000).effect, 'allow');
  });

  it('refills continuously over time, at fractional rates, up to capacity only', () => {
    const r = rule(3, 3);
    const bucket = drain(r, [T0, T0, T0]);
    assert.equal(assertExactRetry(bucket, r, T0), 334); // 1000/3 ms per token, rounded up
    assert.equal(tokensAt(bucket, r, T0 + 500), 1.5);
    assert.equal(tokensAt(bucket, r, T0 + 60_000), 3);
    // After a long pause the full burst is available again, and no more.
    const later = drain(r, [T0 + 60_000, T0 + 60_000, T0 + 60_000]);
    assert.equal(checkRateLimit(later, r, T0 + 60_000).effect, 'deny');
  });

  it('gives an exact retryAfterMs for many rates and moments', () => {
    for (const refill of [0.1, 0.3, 1, 1.7, 3, 7, 13, 1000 / 7]) {
      const r = rule(2, refill);
      const bucket = drain(r, [T0, T0 + 1]);
      for (const dt of [1, 2, 17, 101, 333]) {
        if (checkRateLimit(bucket, r, T0 + dt).effect === 'deny') assertExactRetry(bucket, r, T0 + dt);
      }
    }
  });

  it('counts a forwarded call even when the bucket was short, and refills past the debt', () => {
    const r = rule(1, 1);
    let bucket = evolveRateLimit(undefined, r, { at: T0 });
    bucket = evolveRateLimit(bucket, r, { at: T0 }); // e.g. another replica's call, seen in the log
    assert.equal(bucket.tokens, -1);
    assert.equal(assertExactRetry(bucket, r, T0), 2000);
    assert.equal(fullAt(bucket, r), T0 + 2000);
  });

  it('never refills backwards for a call stamped before the bucket\'s last update', () => {
    const r = rule(5, 1);
    const a = evolveRateLimit(undefined, r, { at: T0 + 1000 });
    const b = evolveRateLimit(a, r, { at: T0 });
    assert.deepEqual(b, { tokens: 3, updatedAt: T0 + 1000 });
  });
});
