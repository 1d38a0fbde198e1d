/**
 * UTC calendar periods for budgets. A budget's period starts at the UTC boundary (top of the
 * hour, midnight, the 1st of the month) that precedes the call, and resets at the next one.
 */
import type { BudgetPeriod } from '#schemas';

/** Start (ms since the epoch, inclusive) of the UTC period containing `at`. */
export function periodStart(period: BudgetPeriod, at: number): number {
  const d = new Date(at);
  switch (period) {
    case 'hour':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
    case 'day':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
}

/** End (exclusive) of the UTC period containing `at`: when its budget resets. */
export function periodEnd(period: BudgetPeriod, at: number): number {
  const start = new Date(periodStart(period, at));
  switch (period) {
    case 'hour':
      return start.getTime() + 3_600_000;
    case 'day':
      return Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + 1);
    case 'month':
      return Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1);
  }
}
