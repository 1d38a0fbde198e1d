/**
 * HTTP upstreams: Streamable HTTP (StreamableHTTPClientTransport) and the deprecated HTTP+SSE transport
 * (SSEClientTransport). The configured headers go on every request the SDK makes (POST, the GET event
 * stream, DELETE); their values never reach a log line or an error message, and neither do URL credentials
 * or query values.
 *
 * Timeouts: the SDK gives fetch no deadline, so every request gets one here, on the time to response
 * headers: `connectTimeoutMs` for the handshake, notifications, the event stream and session termination,
 * `timeoutMs` for other requests (a server answering in JSON sends its headers only with the result).
 * A body that streams for longer (SSE) is not cut.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { SSEClientTransport, SdkHttpError, SseError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { FetchLike, JSONRPCMessage } from '@modelcontextprotocol/client';
import type { Logger } from 'pino';
import type { HttpUpstreamConfig } from '#schemas';
import { Handshake } from './handshake.ts';
import { createNativePoster, PostFailure, responseTooLarge } from './http-post.ts';
import type { NativePoster } from './http-post.ts';
import type { UpstreamLink, UpstreamLinkEvent, UpstreamLinkOptions, UpstreamLinkState } from './link.ts';
import { SingleFlight } from './single-flight.ts';
import { UpstreamError } from './upstream-error.ts';
import type { UpstreamErrorCode, UpstreamErrorFacts } from './upstream-error.ts';
import type { TraceHeaders } from '../observability/tracing.ts';

type HttpTransportKind = HttpUpstreamConfig['transport'];
type SdkTransport = StreamableHTTPClientTransport | SSEClientTransport;

interface Deadline {
  readonly ms: number;
  readonly setting: 'connectTimeoutMs' | 'timeoutMs';
  /** W3C trace context for the request the SDK is about to make. */
  readonly trace?: TraceHeaders;
  /** Sending `notifications/initialized`: told once the standalone GET stream the SDK opens after it was answered (or will not be opened). */
  readonly streamAnswered?: () => void;
}

const RESPONSE_TEXT_MAX_CHARS = 300;
/** The longest `send(notifications/initialized)` waits for the upstream to answer the GET of its event stream (bounded by connectTimeoutMs too). */
const STANDALONE_STREAM_WAIT_MS = 5_000;

export function createHttpLink(name: string, config: HttpUpstreamConfig, options: UpstreamLinkOptions): UpstreamLink {
  return new HttpLink(name, config, options);
}

class HttpLink implements UpstreamLink {
  readonly name: string;
  readonly transport: HttpTransportKind;
  onmessage?: (message: JSONRPCMessage) => void;
  onevent?: (event: UpstreamLinkEvent) => void;

  readonly #config: HttpUpstreamConfig;
  readonly #log: Logger;
  readonly #url: URL;
  readonly #displayUrl: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #connectDeadline: Deadline;
  readonly #requestDeadline: Deadline;
  /** Which deadline applies to the fetch the SDK is about to make; set around each `send()`. */
  readonly #deadline = new AsyncLocalStorage<Deadline>();
  readonly #handshake = new Handshake();
  readonly #closed = new AbortController();
  #sdk: SdkTransport | undefined;
  #state: UpstreamLinkState = 'idle';
  #protocolVersion: string | undefined;
  readonly #starting = new SingleFlight();
  #reinitializing: Promise<void> | undefined;
  #poster: NativePoster | undefined;
  #closing: Promise<void> | undefined;
  #reinitializations = 0;
  #lastFailure: UpstreamError | undefined;
  #lastFetchFailure: UpstreamError | undefined;

  constructor(name: string, config: HttpUpstreamConfig, options: UpstreamLinkOptions) {
    this.name = name;
    this.transport = config.transport;
    this.#config = config;
    const { url, headers } = withoutUrlCredentials(new URL(config.url), config.headers);
    this.#url = url;
    this.#headers = headers;
    this.#displayUrl = displayUrl(url);
    this.#connectDeadline = { ms: config.connectTimeoutMs, setting: 'connectTimeoutMs' };
    this.#requestDeadline = { ms: config.timeoutMs, setting: 'timeoutMs' };
    this.#log = options.logger.child({ upstream: name, transport: config.transport, url: this.#displayUrl });
  }

  get state(): UpstreamLinkState {
    return this.#state;
  }

  /** Concurrent calls share one attempt; after a failure the next call tries again. */
  start(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(this.#unavailable());
    return this.#starting.run(() => this.#startOnce(signal));
  }

  async send(message: JSONRPCMessage, trace?: TraceHeaders): Promise<void> {
    const sdk = this.#sdk;
    if (this.#state !== 'ready' || sdk === undefined) throw this.#unavailable();
    this.#handshake.noteSent(message);
    const isRequest = 'method' in message && 'id' in message;
    if (isRequest && message.method !== 'initialize' && sdk instanceof StreamableHTTPClientTransport && sdk.sessionId !== undefined) {
      await this.#postNatively(sdk, sdk.sessionId, message, trace);
      return;
    }
    const deadline = withTrace(isRequest && message.method !== 'initialize' ? this.#requestDeadline : this.#connectDeadline, trace);
    const sessionBefore = sdk instanceof StreamableHTTPClientTransport ? sdk.sessionId : undefined;
    try {
      await this.#sendThroughSdk(sdk, message, deadline);
    } catch (error) {
      const failure = this.#asUpstreamError(error, `could not deliver ${describe(message)}`);
      // Streamable HTTP, session management: a 404 for a request carrying a session id means the server no
      // longer knows the session (it restarted, or expired it), and the client must initialize a new one.
      if (sessionBefore !== undefined && failure.facts.cause === 'HTTP 404' && !(isRequest && message.method === 'initialize')) {
        this.#reinitializing ??= this.#reinitialize(failure).finally(() => (this.#reinitializing = undefined));
      }
      throw failure;
    }
  }

  /**
   * Streamable HTTP: the SDK opens the standalone GET event stream only after the server accepted
   * `notifications/initialized` (HTTP 202), in the background. A server→client request the upstream
   * sends without a related request (McpServer's `elicitInput` and `createMessage` do) travels on that
   * stream, and a server with no stream open yet drops it (the SDK's server transport does, silently):
   * the call then waits for an answer that never comes. So `send(notifications/initialized)` resolves
   * only once the GET was answered (any status: 405 is a server's "no stream"), failed, or was never
   * going to be made (the POST was not answered 202); the session holds its requests to this upstream
   * until then (session.ts, #requestUpstream).
   */
  async #sendThroughSdk(sdk: SdkTransport, message: JSONRPCMessage, deadline: Deadline): Promise<void> {
    const opensStream = sdk instanceof StreamableHTTPClientTransport && 'method' in message && message.method === 'notifications/initialized' && !('id' in message);
    if (!opensStream) {
      await this.#deadline.run(deadline, () => sdk.send(message));
      return;
    }
    const answered = Promise.withResolvers<void>();
    // The SDK's GET runs in the async context of this send, so #fetch sees this deadline on it.
    await this.#deadline.run({ ...deadline, streamAnswered: answered.resolve }, () => sdk.send(message));
    const waitMs = Math.min(STANDALONE_STREAM_WAIT_MS, this.#config.connectTimeoutMs);
    try {
      await within(answered.promise, waitMs, this.#closed.signal);
    } catch {
      if (!this.#closed.signal.aborted) this.#log.warn({ waitMs }, 'the upstream did not answer the GET of its event stream in time; server→client requests it sends without a related request may be lost until it does');
    }
  }

  /** A request on an established session: straight over a keep-alive socket (http-post.ts). */
  async #postNatively(sdk: StreamableHTTPClientTransport, sessionId: string, message: JSONRPCMessage, trace: TraceHeaders | undefined): Promise<void> {
    this.#poster ??= createNativePoster(this.#url, this.#config.maxResponseBytes);
    const headers: Record<string, string> = { ...this.#headers, 'mcp-session-id': sessionId };
    if (trace !== undefined) {
      headers['traceparent'] = trace.traceparent;
      if (trace.tracestate !== undefined) headers['tracestate'] = trace.tracestate;
    }
    if (this.#protocolVersion !== undefined) headers['mcp-protocol-version'] = this.#protocolVersion;
    const deliver = (received: JSONRPCMessage): void => {
      if (sdk !== this.#sdk || this.#handshake.noteReceived(received)) return;
      this.onmessage?.(received);
    };
    let status: number;
    try {
      ({ status } = await this.#poster.post(JSON.stringify(message), headers, this.#requestDeadline.ms, deliver, (error) => this.#log.warn({ err: error }, 'an upstream response stream broke off')));
    } catch (error) {
      throw this.#asUpstreamError(error, `could not deliver ${describe(message)}`);
    }
    if (status >= 200 && status < 300) return;
    const failure = this.#error('ATTEST_UPSTREAM_UNAVAILABLE', `could not deliver ${describe(message)}: it answered HTTP ${status}`, `HTTP ${status}`, undefined, refusedUnrun(status));
    // Streamable HTTP, session management: 404 → the server no longer knows the session; initialize a new one.
    if (status === 404) this.#reinitializing ??= this.#reinitialize(failure).finally(() => (this.#reinitializing = undefined));
    throw failure;
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
    this.#sdk?.setProtocolVersion(version);
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeNow();
    return this.#closing;
  }

  async #startOnce(signal: AbortSignal | undefined): Promise<void> {
    this.#state = 'connecting';
    this.#log.info({ headerNames: Object.keys(this.#headers) }, 'connecting to upstream');
    const requestInit = { headers: this.#headers };
    const sdk: SdkTransport =
      this.transport === 'sse'
        ? new SSEClientTransport(this.#url, { requestInit, fetch: this.#fetch })
        : new StreamableHTTPClientTransport(this.#url, { requestInit, fetch: this.#fetch });
    if (this.#protocolVersion !== undefined) sdk.setProtocolVersion(this.#protocolVersion);
    sdk.onmessage = (message) => {
      if (sdk !== this.#sdk || this.#handshake.noteReceived(message)) return;
      this.onmessage?.(message);
    };
    sdk.onerror = (error) => this.#onTransportError(sdk, error);
    this.#sdk = sdk;
    this.#lastFetchFailure = undefined;
    try {
      // Streamable HTTP opens nothing here (its first request is the session's initialize); SSE opens the
      // event stream and waits for the server to name the endpoint to POST to.
      await within(sdk.start(), this.#config.connectTimeoutMs, signal);
      if (this.#isClosed()) throw this.#unavailable();
    } catch (error) {
      this.#sdk = undefined;
      await sdk.close().catch(() => undefined);
      if (this.#state === 'connecting') this.#state = 'idle';
      if (signal?.aborted === true) throw signal.reason;
      if (error instanceof UpstreamError) throw error;
      if (error instanceof Error && error.name === 'TimeoutError') {
        throw this.#error('ATTEST_UPSTREAM_TIMEOUT', `did not open its event stream within ${this.#config.connectTimeoutMs} ms (connectTimeoutMs)`, undefined, error);
      }
      throw this.#lastFetchFailure ?? this.#asUpstreamError(error, 'could not be connected to');
    }
    this.#state = 'ready';
    this.#emit({ type: 'connected' });
  }

  /** Every request the SDK makes goes through here: a deadline on the response headers, failures named. */
  readonly #fetch: FetchLike = async (url, init) => {
    const deadline = this.#deadline.getStore() ?? this.#connectDeadline;
    const expired = new AbortController();
    const timer = setTimeout(() => expired.abort(), deadline.ms);
    const callerSignal = init?.signal ?? undefined;
    const method = init?.method ?? 'GET';
    let headers = init?.headers;
    if (deadline.trace !== undefined) {
      const traced = new Headers(headers);
      traced.set('traceparent', deadline.trace.traceparent);
      if (deadline.trace.tracestate !== undefined) traced.set('tracestate', deadline.trace.tracestate);
      headers = traced;
    }
    try {
      const response = await fetch(url, { ...init, ...(headers !== undefined && { headers }), signal: callerSignal === undefined ? expired.signal : AbortSignal.any([callerSignal, expired.signal]) });
      // The GET of the event stream was answered, or the POST of `initialized` was not accepted with 202 (the SDK then opens no stream).
      if (method === 'GET' || (method === 'POST' && response.status !== 202)) deadline.streamAnswered?.();
      // The answer to a POST is bounded like on the native path; the GET event stream lives for the session and is not.
      return method === 'POST' ? limitBody(response, this.#config.maxResponseBytes) : response;
    } catch (error) {
      deadline.streamAnswered?.();
      if (callerSignal?.aborted === true) throw error; // the SDK is closing on purpose
      const failure = expired.signal.aborted
        ? this.#error('ATTEST_UPSTREAM_TIMEOUT', `did not answer within ${deadline.ms} ms (${deadline.setting})`, undefined, error)
        : this.#error('ATTEST_UPSTREAM_UNAVAILABLE', `is unreachable: ${describeNetworkError(error)}`, networkErrorCode(error), error);
      this.#lastFetchFailure = failure;
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  };

  #onTransportError(sdk: SdkTransport, error: Error): void {
    if (sdk !== this.#sdk) return;
    // Legacy SSE: the event stream is the session; when it breaks, the server has forgotten us.
    if (this.transport === 'sse' && error instanceof SseError && this.#state === 'ready') {
      const failure = this.#lastFetchFailure ?? this.#asUpstreamError(error, 'closed its event stream');
      this.#lostForGood(failure);
      this.#sdk = undefined;
      // EventSource arms its reconnect timer only after this callback returns; closing later clears it.
      queueMicrotask(() => void sdk.close().catch(() => undefined));
      return;
    }
    // Send failures are also rejected to the caller of send(); only the event stream's troubles are news here.
    const level = /SSE stream|reconnect/i.test(error.message) ? 'warn' : 'debug';
    this.#log[level]({ err: error }, 'upstream transport error');
  }

  async #reinitialize(cause: UpstreamError): Promise<void> {
    const sdk = this.#sdk;
    if (this.#state !== 'ready' || sdk === undefined) return;
    const reason = `upstream "${this.name}" (${this.transport} ${this.#displayUrl}) no longer knows this session (HTTP 404)`;
    if (!this.#handshake.replayable) {
      this.#lostForGood(new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `${reason}; it was never initialized, so there is nothing to resume`, cause.facts, { cause }));
      return;
    }
    this.#state = 'restarting';
    this.#log.warn(`${reason}; starting a new one`);
    this.#emit({ type: 'lost', reason: `${reason}; starting a new one`, willRestart: true, error: cause });
    try {
      const signal = AbortSignal.any([this.#closed.signal, AbortSignal.timeout(this.#config.connectTimeoutMs)]);
      await this.#deadline.run(this.#connectDeadline, () => this.#handshake.replay((message) => this.#sendThroughSdk(sdk, message, this.#connectDeadline), signal));
      if (!this.#isRestarting()) return;
      this.#state = 'ready';
      this.#reinitializations += 1;
      this.#log.info({ attempt: this.#reinitializations }, 'upstream session re-established');
      this.#emit({ type: 'restarted', attempt: this.#reinitializations, replayedInitialize: true });
    } catch (error) {
      if (!this.#isRestarting()) return;
      this.#lostForGood(this.#asUpstreamError(error, 'refused a new session'));
    }
  }

  #lostForGood(error: UpstreamError): void {
    this.#state = 'closed';
    this.#lastFailure = error;
    this.#log.error({ cause: error.facts.cause }, error.message);
    this.#emit({ type: 'lost', reason: error.message, willRestart: false, error });
  }

  async #closeNow(): Promise<void> {
    this.#state = 'closed';
    this.#closed.abort();
    this.#poster?.close();
    await Promise.allSettled([this.#starting.current, this.#reinitializing]);
    const sdk = this.#sdk;
    this.#sdk = undefined;
    if (sdk === undefined) return;
    // Streamable HTTP session management: a client that is done with a session SHOULD DELETE it.
    if (sdk instanceof StreamableHTTPClientTransport && sdk.sessionId !== undefined) {
      try {
        await this.#deadline.run(this.#connectDeadline, () => sdk.terminateSession());
      } catch (error) {
        this.#log.warn({ err: error }, 'could not end the upstream session');
      }
    }
    await sdk.close();
    this.#log.debug('upstream link closed');
  }

  #asUpstreamError(error: unknown, doing: string): UpstreamError {
    if (error instanceof UpstreamError) return error;
    const status = httpStatusOf(error);
    if (status !== undefined) {
      const hint = status === 401 || status === 403 ? ' (check the credentials in the headers configured for this upstream)' : '';
      return this.#error('ATTEST_UPSTREAM_UNAVAILABLE', `${doing}: it answered HTTP ${status}${hint}: ${truncate(errorText(error))}`, `HTTP ${status}`, error, refusedUnrun(status));
    }
    const code = networkErrorCode(error);
    const unsent = error instanceof PostFailure ? !error.requestSent : code !== undefined && NOT_SENT_CODES.has(code);
    return this.#error('ATTEST_UPSTREAM_UNAVAILABLE', `${doing}: ${truncate(errorText(error))}`, code, error, unsent ? false : undefined);
  }

  #error(code: UpstreamErrorCode, what: string, cause: string | undefined, error: unknown, reached?: boolean): UpstreamError {
    const facts: UpstreamErrorFacts = { upstream: this.name, transport: this.transport, url: this.#displayUrl, cause, ...(reached !== undefined && { reached }) };
    return new UpstreamError(code, `upstream "${this.name}" (${this.transport} ${this.#displayUrl}) ${what}`, facts, { cause: error });
  }

  #unavailable(): UpstreamError {
    if (this.#state === 'closed' && this.#closing === undefined && this.#lastFailure !== undefined) {
      return new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', this.#lastFailure.message, this.#lastFailure.facts);
    }
    const what =
      this.#state === 'closed' ? 'the link is closed' : this.#state === 'restarting' ? 'a new upstream session is being started' : `the link is not started (state: ${this.#state})`;
    return this.#error('ATTEST_UPSTREAM_UNAVAILABLE', `is unavailable: ${what}; nothing was sent`, undefined, undefined, false);
  }

  /** Methods, not comparisons, because the state changes across awaits and TypeScript narrows comparisons. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #isRestarting(): boolean {
    return this.#state === 'restarting';
  }

  #emit(event: UpstreamLinkEvent): void {
    try {
      this.onevent?.(event);
    } catch (error) {
      this.#log.error({ err: error, event: event.type }, 'upstream link event listener threw');
    }
  }
}

/** The response with a body that errors once it has brought more than `max` bytes. */
function limitBody(response: Response, max: number): Response {
  if (response.body === null) return response;
  let received = 0;
  const limited = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.byteLength;
        if (received > max) controller.error(responseTooLarge(max));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(limited, { status: response.status, statusText: response.statusText, headers: response.headers });
}

function withTrace(deadline: Deadline, trace: TraceHeaders | undefined): Deadline {
  return trace === undefined ? deadline : { ...deadline, trace };
}

/** fetch refuses URLs with credentials; they become a Basic Authorization header unless one is configured. */
function withoutUrlCredentials(url: URL, headers: Readonly<Record<string, string>>): { url: URL; headers: Readonly<Record<string, string>> } {
  if (url.username === '' && url.password === '') return { url, headers };
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  const hasAuthorization = Object.keys(headers).some((name) => name.toLowerCase() === 'authorization');
  if (hasAuthorization) return { url: bare, headers };
  return { url: bare, headers: { ...headers, Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } };
}

/** The URL as it may appear in logs and messages: no credentials, no query values (they often carry keys). */
function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search === '' ? '' : '?…'}`;
}

function describe(message: JSONRPCMessage): string {
  if ('method' in message) return 'id' in message ? `the "${message.method}" request` : `the "${message.method}" notification`;
  return 'a response';
}

/** Resolves with `work`, or rejects when `ms` pass (TimeoutError) or `signal` aborts first. */
async function within<T>(work: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  const stop = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  let onStop: (() => void) | undefined;
  const stopped = new Promise<never>((_resolve, reject) => {
    onStop = () => {
      const reason: unknown = signal?.aborted === true ? signal.reason : timeout.reason;
      reject(reason instanceof Error ? reason : new Error(String(reason)));
    };
    stop.addEventListener('abort', onStop, { once: true });
  });
  try {
    return await Promise.race([work, stopped]);
  } finally {
    if (onStop !== undefined) stop.removeEventListener('abort', onStop);
  }
}

const NETWORK_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed by the server',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS certificate chain is self-signed',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate cannot be verified',
  CERT_HAS_EXPIRED: 'TLS certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host name',
};

/** Failures that come before a request leaves the gateway: the upstream cannot have received it. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'EADDRNOTAVAIL', ...Object.keys(NETWORK_ERRORS).filter((code) => code.includes('CERT') || code.includes('SIGNATURE'))]);

/** A 4xx is the server refusing the request as sent (it did not run it); a 5xx may come after it ran. */
function refusedUnrun(status: number): false | undefined {
  return status >= 400 && status < 500 ? false : undefined;
}

/** fetch wraps the system error: `TypeError: fetch failed` → cause (→ AggregateError.errors) → `{ code }`. */
function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth += 1) {
    if ('code' in current && typeof current.code === 'string') return current.code;
    current = current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause;
  }
  return undefined;
}

function describeNetworkError(error: unknown): string {
  const code = networkErrorCode(error);
  if (code === undefined) return errorText(error);
  return `${NETWORK_ERRORS[code] ?? errorText(error)} (${code})`;
}

function httpStatusOf(error: unknown): number | undefined {
  if (error instanceof SdkHttpError) return error.status;
  if (error instanceof SseError && error.code !== undefined && error.code >= 400) return error.code;
  // SSEClientTransport reports a failed POST as a plain Error: "Error POSTing to endpoint (HTTP 404): …".
  const match = error instanceof Error ? /\(HTTP (\d{3})\)/.exec(error.message) : null;
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function truncate(text: string): string {
  return text.length > RESPONSE_TEXT_MAX_CHARS ? `${text.slice(0, RESPONSE_TEXT_MAX_CHARS)}…` : text;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
