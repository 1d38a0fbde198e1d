import { GatewayError } from '#schemas';

export type UpstreamErrorCode = 'ATTEST_UPSTREAM_UNAVAILABLE' | 'ATTEST_UPSTREAM_TIMEOUT';
export type UpstreamTransportKind = 'stdio' | 'streamable-http' | 'sse';

/** What is known about a failure, kept apart from the message so the session layer can record it as data. */
export interface UpstreamErrorFacts {
  readonly upstream: string;
  readonly transport: UpstreamTransportKind;
  /** HTTP transports: the URL without credentials or query values. */
  readonly url?: string;
  /** stdio: the process that failed. */
  readonly pid?: number;
  readonly exitCode?: number | null;
  readonly signal?: NodeJS.Signals | null;
  /** A system or HTTP cause: `ECONNREFUSED`, `ENOENT`, `HTTP 404` … */
  readonly cause?: string;
  /** stdio: the last lines the process wrote to stderr, oldest first. */
  readonly stderrTail?: readonly string[];
}

/**
 * A local failure to reach an upstream. It is a {@link GatewayError}, so the session layer can answer the
 * agent with it directly; the message names the upstream and says what happened (for stdio, with the last
 * stderr lines), while the JSON-RPC `data` carries only the code and the upstream name.
 */
export class UpstreamError extends GatewayError {
  declare readonly code: UpstreamErrorCode;
  readonly facts: UpstreamErrorFacts;
  constructor(code: UpstreamErrorCode, message: string, facts: UpstreamErrorFacts, options?: ErrorOptions) {
    super(code, message, { upstream: facts.upstream }, options);
    this.name = 'UpstreamError';
    this.facts = facts;
  }
}

/** `  | line` blocks appended to messages; a person reads these first when a server will not start. */
export function formatStderrTail(lines: readonly string[]): string {
  if (lines.length === 0) return '';
  return `\nlast stderr lines:\n${lines.map((line) => `  | ${line}`).join('\n')}`;
}
