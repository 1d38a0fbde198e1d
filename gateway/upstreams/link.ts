/**
 * One connection from one agent session to one upstream MCP server, at the JSON-RPC message level.
 *
 * Each session gets links of its own, so roots, sampling, log level and subscriptions never leak between
 * agents. The link frames and delivers messages and keeps the connection alive; it does not speak MCP
 * itself: the session layer sends `initialize` and `notifications/initialized` through `send()`, remaps ids
 * and fails its own in-flight requests when the link reports `lost`. The one piece of protocol the link
 * knows is the handshake, which it replays on its own when it had to reconnect (see `handshake.ts`).
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '#schemas';
import { createHttpLink } from './http.ts';
import { createStdioLink } from './stdio.ts';
import type { UpstreamError, UpstreamTransportKind } from './upstream-error.ts';
import type { TraceHeaders } from '../observability/tracing.ts';

export { UpstreamError, formatStderrTail, startFailureForOperator, stdioStartFailureForAgent } from './upstream-error.ts';
export type { UpstreamErrorCode, UpstreamErrorFacts, UpstreamTransportKind } from './upstream-error.ts';

export type UpstreamLinkState = 'idle' | 'connecting' | 'ready' | 'restarting' | 'closed';

export type UpstreamLinkEvent =
  /** `start()` succeeded: the process is spawned, or the HTTP transport is open. */
  | { readonly type: 'connected'; readonly pid?: number }
  /**
   * The upstream went away without `close()`. Requests in flight will not be answered. When `willRestart`
   * is false the link is now `closed` and `error` says why for good.
   */
  | {
      readonly type: 'lost';
      readonly reason: string;
      readonly willRestart: boolean;
      readonly exitCode?: number | null;
      readonly signal?: NodeJS.Signals | null;
      readonly error: UpstreamError;
    }
  /**
   * The upstream is back (new process, new HTTP session) and, when the session had initialized, the handshake
   * was replayed. State beyond the handshake (log level, subscriptions, cached lists) is fresh: the session
   * should re-apply it and tell the agent, e.g. with list_changed notifications.
   */
  | { readonly type: 'restarted'; readonly attempt: number; readonly replayedInitialize: boolean; readonly pid?: number }
  /** A line the stdio process wrote to stderr (also logged at debug level). */
  | { readonly type: 'stderr'; readonly line: string; readonly pid: number };

export interface UpstreamLink {
  readonly name: string;
  readonly transport: UpstreamTransportKind;
  readonly state: UpstreamLinkState;
  /**
   * Spawns the process (stdio) or opens the event stream and waits for the POST endpoint (SSE), within
   * `connectTimeoutMs`; Streamable HTTP has nothing to open, so an unreachable server shows on the first
   * `send()`. Does not initialize. Rejects with an `UpstreamError`; a failed start may be retried.
   */
  start(signal?: AbortSignal): Promise<void>;
  /**
   * Rejects with an `UpstreamError` when the upstream is not `ready` or the message could not be delivered.
   * `trace` (W3C `traceparent` and `tracestate`) goes on the HTTP request that carries the message;
   * stdio has nowhere to put it.
   */
  send(message: JSONRPCMessage, trace?: TraceHeaders): Promise<void>;
  /** Sets the MCP-Protocol-Version header the HTTP transports send after initialization; a no-op for stdio. */
  setProtocolVersion(version: string): void;
  /** Idempotent. Ends the process (stdin EOF, SIGTERM, SIGKILL) and waits for it, or ends the HTTP session. */
  close(): Promise<void>;
  onmessage?: (message: JSONRPCMessage) => void;
  onevent?: (event: UpstreamLinkEvent) => void;
}

export interface UpstreamLinkOptions {
  readonly logger: Logger;
  /** stdio: how long a process must stay up before its run of restarts counts as over. Default 30 s. */
  readonly stableAfterMs?: number;
  /** stdio: how long `close()` waits after closing stdin, and again after SIGTERM, before escalating. Default 2 s. */
  readonly terminateGraceMs?: number;
}

export function createUpstreamLink(name: string, config: UpstreamConfig, options: UpstreamLinkOptions): UpstreamLink {
  return config.transport === 'stdio' ? createStdioLink(name, config, options) : createHttpLink(name, config, options);
}
