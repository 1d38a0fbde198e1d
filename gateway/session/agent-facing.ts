/**
 * What an agent may be told of a failure. Messages built for the operator name where things are:
 * the log's directory, an upstream's URL, a process id, its stderr; an agent learns the layout of
 * the machine from them, so they go only to the operator's log (issue 15). The messages the
 * gateway builds for agents say what happened without them; this is the last check at the
 * boundary, for the texts that quote a lower layer (an upstream link's error, a log's refusal).
 */
import { GatewayError } from '#schemas';

/** The `\nlast stderr lines:` block formatStderrTail appends (upstreams/upstream-error.ts): the process's own words. */
const STDERR_TAIL = /\n+last stderr lines:[\s\S]*$/;
/** `(stdio, pid 4242)`, `(streamable-http http://10.0.0.5:8080/mcp)`: how a link names its upstream for the operator. */
const LINK_NAME = /\s*\((?:stdio|streamable-http|sse)(?:,? [^)]*)?\)/g;
const URL_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)]+/gi;
/** Two or more segments from the root: `/var/lib/attest/log`, not `/healthz` nor `tools/call`. */
const ABSOLUTE_PATH = /(?<![\w.:/-])\/(?:[\w.@+-]+\/)+[\w.@+-]*/g;
const PID = /\bpid[ =:]*\d+\b/gi;
/** `10.0.0.5:9092`, `kafka-1:9092`: a broker or host with its port (not the `T09:30:00` of a timestamp). */
const HOST_PORT = /\b(?:\d{1,3}(?:\.\d{1,3}){3}|[a-z][\w-]*(?:\.[\w-]+)*):\d{2,5}\b(?![:.]\d)/gi;

/** `text` without file paths, URLs, host:port pairs, pids or stderr tails. */
export function withoutOperatorDetail(text: string): string {
  return text
    .replace(STDERR_TAIL, '')
    .replace(LINK_NAME, '')
    .replace(URL_TEXT, '[url]')
    .replace(ABSOLUTE_PATH, '[path]')
    .replace(HOST_PORT, '[address]')
    .replace(PID, 'its process');
}

/**
 * The error as the agent gets it (and as ErrorReturned records it): the same code, and the message
 * without operator detail. `changed` says whether anything was taken out (the original then belongs
 * in the operator's log).
 */
export function agentFacing(error: GatewayError): { readonly error: GatewayError; readonly changed: boolean } {
  const message = withoutOperatorDetail(error.message);
  const detail = error.detail === undefined ? undefined : scrubDetail(error.detail);
  if (message === error.message && detail === error.detail) return { error, changed: false };
  return { error: new GatewayError(error.code, message, detail === undefined ? undefined : { ...detail }, { cause: error }), changed: true };
}

function scrubDetail(detail: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(detail)) {
    const clean = typeof value === 'string' ? withoutOperatorDetail(value) : value;
    if (clean !== value) changed = true;
    out[key] = clean;
  }
  return changed ? out : detail;
}
