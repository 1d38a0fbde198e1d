/**
 * Loop guard: the same principal making the same call (same tool, same argument digest) more
 * than `maxRepeats` times within `windowMs` is refused — the runaway agent loop. The window is
 * sliding: a call at t is inside it at `now` while t > now − windowMs. Only the last
 * `maxRepeats` times are kept, which is all a decision needs.
 */
import type { LoopGuardConfig } from '#schemas';

export interface LoopWindow {
  /** Times (ms since the epoch) of counted identical calls, ascending, at most maxRepeats. */
  readonly times: readonly number[];
}

export type LoopVerdict =
  | { readonly effect: 'allow' }
  | { readonly effect: 'deny'; readonly count: number; readonly limit: number; readonly windowMs: number; readonly retryAfterMs: number };

function inWindow(window: LoopWindow | undefined, config: LoopGuardConfig, now: number): readonly number[] {
  if (window === undefined) return [];
  return window.times.filter((t) => t > now - config.windowMs);
}

export function checkLoop(window: LoopWindow | undefined, config: LoopGuardConfig, now: number): LoopVerdict {
  const recent = inWindow(window, config, now);
  const count = recent.length + 1;
  if (count <= config.maxRepeats) return { effect: 'allow' };
  // The call is allowed again once enough of the recent ones left the window.
  const mustLeave = recent[recent.length - config.maxRepeats] ?? now;
  return { effect: 'deny', count, limit: config.maxRepeats, windowMs: config.windowMs, retryAfterMs: Math.max(1, mustLeave + config.windowMs - now) };
}

export function evolveLoop(window: LoopWindow | undefined, config: LoopGuardConfig, event: { readonly at: number }): LoopWindow {
  const times = [...inWindow(window, config, event.at), event.at].sort((a, b) => a - b);
  return { times: times.slice(-config.maxRepeats) };
}
