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
  /**
   * Whether the message may have reached the upstream. `false`: it certainly did not, or the upstream
   * refused it unrun (HTTP 4xx), so nothing of it ran there; `true` or absent: it may have been
   * received and run (the answer broke, the connection reset after the request was sent, HTTP 5xx).
   */
  readonly reached?: boolean;
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

/**
 * What the operator is told of an upstream that did not start or answer its initialize, in one
 * line (the stderr tail goes beside it): for a stdio process that died, how and that it never
 * answered — the link's own message also says how it would restart, which nobody does for a
 * connection that never initialized.
 */
export function startFailureForOperator(failure: UpstreamError): string {
  const { upstream, transport, pid, exitCode, signal } = failure.facts;
  const firstLine = failure.message.split('\n')[0] ?? failure.message;
  if (transport !== 'stdio' || (typeof exitCode !== 'number' && (signal === undefined || signal === null))) return firstLine;
  const how = signal !== undefined && signal !== null ? `was killed by ${signal}` : `exited with code ${String(exitCode)}`;
  return `upstream "${upstream}" (stdio${pid === undefined ? '' : `, pid ${pid}`}) ${how} before it answered initialize`;
}

/**
 * What an agent is told of a stdio upstream that did not start or answer its initialize: what
 * happened, without command line, file paths or pids — those, and the process's stderr tail, are
 * the operator's (the gateway's log, /healthz).
 */
export function stdioStartFailureForAgent(failure: UpstreamError): string {
  const { signal, exitCode, cause } = failure.facts;
  let what: string;
  if (signal !== undefined && signal !== null) what = `its process was killed by ${signal}`;
  else if (typeof exitCode === 'number') what = `its process exited with code ${exitCode}`;
  else if (cause === 'ENOENT') what = 'its command was not found';
  else if (failure.code === 'ATTEST_UPSTREAM_TIMEOUT') what = 'it did not answer initialize in time';
  else what = 'its process could not be started';
  return `it failed to start (${what}); its error output is in the gateway's log and on /healthz`;
}

/** `  | line` blocks appended to messages; a person reads these first when a server will not start. */
export function formatStderrTail(lines: readonly string[]): string {
  if (lines.length === 0) return '';
  return `\nlast stderr lines:\n${lines.map((line) => `  | ${line}`).join('\n')}`;
}
