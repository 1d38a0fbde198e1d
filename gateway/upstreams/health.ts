/**
 * What the gateway last learnt of each upstream's ability to start and initialize, for `/healthz`:
 * from the start-up probe (probe.ts) and from every session's connection. Operator-facing: the last
 * error keeps the upstream's own words (its stderr tail), with the config's secret values taken out
 * (upstream env and header values, URL passwords: logger.ts secretValuesOf), so the page can be read
 * where the log cannot.
 */
import { UpstreamError, startFailureForOperator } from './upstream-error.ts';

export type UpstreamStatus = 'unknown' | 'ok' | 'failing';
export type HealthSource = 'probe' | 'session';

export interface UpstreamHealthView {
  readonly status: UpstreamStatus;
  readonly checkedAt?: string;
  readonly source?: HealthSource;
  readonly lastError?: {
    readonly at: string;
    readonly message: string;
    readonly exitCode?: number | null;
    readonly stderrTail?: readonly string[];
  };
}


interface Entry {
  status: UpstreamStatus;
  checkedAt: string;
  source: HealthSource;
  lastError: UpstreamHealthView['lastError'];
}

export class UpstreamHealth {
  readonly #entries = new Map<string, Entry>();

  ok(upstream: string, source: HealthSource): void {
    const previous = this.#entries.get(upstream);
    this.#entries.set(upstream, { status: 'ok', checkedAt: new Date().toISOString(), source, lastError: previous?.lastError });
  }

  failed(upstream: string, error: Error, source: HealthSource): void {
    const at = new Date().toISOString();
    const facts = error instanceof UpstreamError ? error.facts : undefined;
    const tail = facts?.stderrTail ?? [];
    this.#entries.set(upstream, {
      status: 'failing',
      checkedAt: at,
      source,
      lastError: {
        at,
        // One line; the stderr tail the message may carry is given as lines beside it.
        message: error instanceof UpstreamError ? startFailureForOperator(error) : (error.message.split('\n')[0] ?? error.message),
        ...(facts?.exitCode !== undefined && { exitCode: facts.exitCode }),
        ...(tail.length > 0 && { stderrTail: [...tail] }),
      },
    });
  }

  /** Every upstream in `names` (the config in force), `unknown` until one connection was tried; `scrub` takes secrets out of text. */
  view(names: readonly string[], scrub: (text: string) => string): Record<string, UpstreamHealthView> {
    const out: Record<string, UpstreamHealthView> = {};
    for (const name of names) {
      const entry = this.#entries.get(name);
      if (entry === undefined) {
        out[name] = { status: 'unknown' };
        continue;
      }
      const error = entry.lastError;
      out[name] = {
        status: entry.status,
        checkedAt: entry.checkedAt,
        source: entry.source,
        ...(error !== undefined && { lastError: { ...error, message: scrub(error.message), ...(error.stderrTail !== undefined && { stderrTail: error.stderrTail.map(scrub) }) } }),
      };
    }
    return out;
  }
}
