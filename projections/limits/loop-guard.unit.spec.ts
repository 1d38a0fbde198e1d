import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LoopGuardConfig } from '#schemas';
import { checkLoop, evolveLoop } from './loop-guard.ts';
import type { LoopWindow } from './loop-guard.ts';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const guard: LoopGuardConfig = { maxRepeats: 3, windowMs: 10_000 };

function repeat(times: readonly number[], config = guard): LoopWindow | undefined {
  let window: LoopWindow | undefined;
  for (const at of times) {
    assert.equal(checkLoop(window, config, at).effect, 'allow', `call at +${at - T0} ms`);
    window = evolveLoop(window, config, { at });
  }
  return window;
}

describe('loop guard', () => {
  it('allows maxRepeats identical calls within the window and trips on the next, with the count', () => {
    const window = repeat([T0, T0 + 1000, T0 + 2000]);
    assert.deepEqual(checkLoop(window, guard, T0 + 3000), { effect: 'deny', count: 4, limit: 3, windowMs: 10_000, retryAfterMs: 7000 });
  });

  it('does not count a repeat once it is outside the window', () => {
    // The 4th identical call comes exactly windowMs after the 1st: only 3 are within the window.
    repeat([T0, T0 + 1000, T0 + 2000, T0 + 10_000]);
    const spread = repeat([T0, T0 + 5000, T0 + 10_000, T0 + 15_000, T0 + 20_000, T0 + 25_000]);
    assert.deepEqual(spread?.times, [T0 + 20_000, T0 + 25_000]);
  });

  it('slides: the call is allowed again exactly when the oldest repeat leaves the window', () => {
    const window = repeat([T0, T0 + 1000, T0 + 2000]);
    const verdict = checkLoop(window, guard, T0 + 4000);
    assert.ok(verdict.effect === 'deny' && verdict.retryAfterMs === 6000);
    assert.equal(checkLoop(window, guard, T0 + 9999).effect, 'deny');
    assert.equal(checkLoop(window, guard, T0 + 10_000).effect, 'allow');
  });

  it('trips at once for maxRepeats 1 on an immediate repeat', () => {
    const one: LoopGuardConfig = { maxRepeats: 1, windowMs: 500 };
    const window = repeat([T0], one);
    assert.deepEqual(checkLoop(window, one, T0 + 499), { effect: 'deny', count: 2, limit: 1, windowMs: 500, retryAfterMs: 1 });
    assert.equal(checkLoop(window, one, T0 + 500).effect, 'allow');
  });

  it('keeps only what a decision needs: the last maxRepeats times', () => {
    let window: LoopWindow | undefined;
    for (let i = 0; i < 50; i += 1) window = evolveLoop(window, guard, { at: T0 + i });
    assert.deepEqual(window?.times, [T0 + 47, T0 + 48, T0 + 49]);
  });
});
