/**
 * Token bucket rate limit, one bucket per (limit, scope value). A full bucket holds `capacity`
 * tokens; it refills continuously at `refillPerSecond`; each counted call takes one token.
 * `check` decides, `evolve` applies a counted call; both are pure. An absent bucket is full.
 *
 * `evolve` never refuses: the log is the truth, and a call that was forwarded consumed a token
 * even when the bucket was short (another replica's call, a changed capacity). The bucket may
 * then go below zero and must refill past it before the next call.
 */
import type { RateLimitRule } from '#schemas';

export interface BucketState {
  readonly tokens: number;
  /** ms since the epoch at which `tokens` was exact. */
  readonly updatedAt: number;
}

export type RateVerdict =
  | { readonly effect: 'allow' }
  | { readonly effect: 'deny'; readonly limitId: string; readonly limit: number; readonly refillPerSecond: number; readonly retryAfterMs: number };

/** Tokens in the bucket at `at` (capped at capacity; a bucket is never refilled backwards in time). */
export function tokensAt(bucket: BucketState | undefined, rule: Pick<RateLimitRule, 'capacity' | 'refillPerSecond'>, at: number): number {
  if (bucket === undefined) return rule.capacity;
  const elapsed = Math.max(0, at - bucket.updatedAt);
  return Math.min(rule.capacity, bucket.tokens + (elapsed * rule.refillPerSecond) / 1000);
}

/**
 * The least whole number of ms after `now` at which a token is available. Computed from the
 * refill rate, then corrected against `tokensAt` itself, so that a retry at exactly
 * `now + retryAfterMs` is allowed and one ms earlier is not, floating point notwithstanding.
 */
function retryAfter(bucket: BucketState | undefined, rule: RateLimitRule, now: number): number {
  const deficit = 1 - tokensAt(bucket, rule, now);
  let ms = Math.max(1, Math.ceil((deficit * 1000) / rule.refillPerSecond));
  while (ms > 1 && tokensAt(bucket, rule, now + ms - 1) >= 1) ms -= 1;
  while (tokensAt(bucket, rule, now + ms) < 1) ms += 1;
  return ms;
}

export function checkRateLimit(bucket: BucketState | undefined, rule: RateLimitRule, now: number): RateVerdict {
  if (tokensAt(bucket, rule, now) >= 1) return { effect: 'allow' };
  return { effect: 'deny', limitId: rule.id, limit: rule.capacity, refillPerSecond: rule.refillPerSecond, retryAfterMs: retryAfter(bucket, rule, now) };
}

export function evolveRateLimit(bucket: BucketState | undefined, rule: RateLimitRule, event: { readonly at: number }): BucketState {
  const updatedAt = bucket === undefined ? event.at : Math.max(bucket.updatedAt, event.at);
  return { tokens: tokensAt(bucket, rule, updatedAt) - 1, updatedAt };
}

/** When a bucket is full again (it can then be forgotten: an absent bucket is full). */
export function fullAt(bucket: BucketState, rule: RateLimitRule): number {
  return bucket.updatedAt + Math.ceil(((rule.capacity - bucket.tokens) * 1000) / rule.refillPerSecond);
}
