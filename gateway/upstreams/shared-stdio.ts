/**
 * One stdio upstream process shared by every session (`share: true`), instead of one per session.
 *
 * Each session gets a lease: an UpstreamLink of its own over the one process, so the session layer works as
 * with a link of its own. The process is initialized once, by the gateway, as client "attest" with no client
 * capabilities (no roots, sampling or elicitation: no session could answer for all of them); a lease's
 * `initialize` is answered from that result and its `notifications/initialized` goes no further. What
 * crosses is remapped so that it reaches the session it belongs to:
 *   - request ids: each lease's request gets a process-wide id; the answer goes back under the lease's own id;
 *   - progress tokens (`params._meta.progressToken`) likewise, and `notifications/progress` follows its token;
 *   - `notifications/cancelled` from a session names the process-wide id;
 *   - `resources/subscribe` / `unsubscribe`: subscriptions are counted per URI and lease, the process is told
 *     of the first and the last, and `notifications/resources/updated` goes to the leases subscribed;
 *   - `logging/setLevel` is answered `{}` by the gateway and not forwarded: the process's level is not any
 *     one session's to set;
 *   - `*list_changed` notifications go to every lease;
 *   - a server→client request (a server that sends one although no capability was declared), a log message
 *     or any other notification goes to the one lease with requests in flight; when none or several have,
 *     a request is answered with an error and a notification dropped, both logged: the gateway cannot tell
 *     whose they are (docs/configuration.md "Shared stdio upstreams").
 * The process is supervised as any stdio link (restarts, handshake replay, parent-death signal); a loss and
 * a restart are told to every lease. It is closed SHARED_LINGER_MS after its last lease ended, so one-shot
 * clients that come one after another reuse it.
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/client';
import type { Logger } from 'pino';
import type { StdioUpstreamConfig } from '#schemas';
import type { UpstreamLink, UpstreamLinkEvent, UpstreamLinkState } from './link.ts';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../session/protocol.ts';
import { SingleFlight } from './single-flight.ts';
import { UpstreamError } from './upstream-error.ts';

/** How long a shared process with no lease stays up for the next session. */
export const SHARED_LINGER_MS = 60_000;
const JSONRPC_INTERNAL_ERROR = -32603;

type Message = Record<string, unknown>;

interface Forwarded {
  /** The lease that sent it; undefined for the gateway's own requests (initialize, re-subscriptions), answered to `answer`. */
  readonly lease: Lease | undefined;
  readonly id: RequestId;
  readonly progressToken: RequestId | undefined;
  readonly answer?: (message: Message) => void;
}

export interface SharedStdioPoolOptions {
  readonly logger: Logger;
  readonly version: string;
  /** The protocol version the gateway initializes each shared process with. */
  readonly protocolVersion: string;
  /** Creates the supervised process link (stdio.ts). */
  readonly createProcessLink: (name: string, config: StdioUpstreamConfig) => UpstreamLink;
  readonly lingerMs?: number;
}

/** The shared processes of one gateway, one per upstream (per config version: a reload brings a new one). */
export class SharedStdioPool {
  readonly #options: SharedStdioPoolOptions;
  readonly #shared = new Map<string, SharedProcess>();
  #closed = false;

  constructor(options: SharedStdioPoolOptions) {
    this.#options = options;
  }

  /** A link of the session's own over the upstream's shared process. */
  lease(name: string, config: StdioUpstreamConfig): UpstreamLink {
    let shared = this.#shared.get(name);
    // A reload parses the config anew: the same settings keep the process, changed ones start another.
    if (shared === undefined || (shared.config !== config && settingsOf(shared.config) !== settingsOf(config)) || shared.retired) {
      shared?.retire();
      shared = new SharedProcess(name, config, this.#options, () => {
        if (this.#shared.get(name) === shared) this.#shared.delete(name);
      });
      if (this.#closed) shared.retire();
      else this.#shared.set(name, shared);
    }
    return shared.lease();
  }

  /** Shared processes alive (for /healthz, tests and benchmarks). */
  get processes(): number {
    return [...this.#shared.values()].filter((shared) => shared.running).length;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#shared.values()];
    this.#shared.clear();
    await Promise.all(all.map((shared) => shared.close()));
  }
}

const settings = new WeakMap<StdioUpstreamConfig, string>();

/** A config's settings as one string, computed once per config object. */
function settingsOf(config: StdioUpstreamConfig): string {
  let text = settings.get(config);
  if (text === undefined) settings.set(config, (text = JSON.stringify(config)));
  return text;
}

class SharedProcess {
  readonly name: string;
  readonly config: StdioUpstreamConfig;
  readonly #options: SharedStdioPoolOptions;
  readonly #log: Logger;
  readonly #onGone: () => void;
  readonly #leases = new Set<Lease>();
  readonly #forwarded = new Map<number, Forwarded>();
  /** Process-wide progress token → the forward it belongs to. */
  readonly #progress = new Map<string, number>();
  /** Server→client request id → the lease it was given to. */
  readonly #serverRequests = new Map<RequestId, Lease>();
  readonly #subscriptions = new Map<string, Set<Lease>>();
  readonly #starting = new SingleFlight();
  #link: UpstreamLink | undefined;
  #initResult: Message | undefined;
  #nextId = 1;
  #linger: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  retired = false;

  constructor(name: string, config: StdioUpstreamConfig, options: SharedStdioPoolOptions, onGone: () => void) {
    this.name = name;
    this.config = config;
    this.#options = options;
    this.#log = options.logger.child({ upstream: name, transport: 'stdio', shared: true });
    this.#onGone = onGone;
  }

  get running(): boolean {
    return this.#link !== undefined && this.#link.state !== 'closed';
  }

  get state(): UpstreamLinkState {
    return this.#link?.state ?? 'idle';
  }

  lease(): Lease {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    const lease = new Lease(this);
    this.#leases.add(lease);
    return lease;
  }

  /** The process started and initialized by the gateway; concurrent leases share one attempt. */
  ready(signal: AbortSignal | undefined): Promise<void> {
    if (this.#initResult !== undefined && this.#link?.state === 'ready') return Promise.resolve();
    return this.#starting.run(() => this.#start(signal));
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (this.#link === undefined || this.#link.state === 'closed') {
      const link = this.#options.createProcessLink(this.name, this.config);
      link.onmessage = (message) => {
        if (this.#link === link) this.#fromProcess(message);
      };
      link.onevent = (event) => {
        if (this.#link === link) this.#onEvent(event);
      };
      this.#link = link;
      this.#initResult = undefined;
    }
    const link = this.#link;
    // A process being restarted is the link's to bring back (and to replay the handshake into); a second start would spawn another.
    if (link.state === 'restarting') throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, shared) is restarting; try again shortly`, { upstream: this.name, transport: 'stdio' });
    if (link.state !== 'ready') await link.start(signal);
    if (this.#initResult !== undefined) return;
    const id = this.#nextId++;
    const answer = new Promise<Message>((resolve, reject) => {
      this.#forwarded.set(id, { lease: undefined, id, progressToken: undefined, answer: resolve });
      const timeout = AbortSignal.any([AbortSignal.timeout(this.config.connectTimeoutMs), ...(signal === undefined ? [] : [signal])]);
      timeout.addEventListener('abort', () => reject(new UpstreamError('ATTEST_UPSTREAM_TIMEOUT', `upstream "${this.name}" (stdio, shared) did not answer initialize within ${this.config.connectTimeoutMs} ms`, { upstream: this.name, transport: 'stdio' })), { once: true });
    });
    answer.catch(() => undefined);
    const { protocolVersion, version } = this.#options;
    try {
      await link.send({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'attest', title: 'Attest MCP gateway (shared connection)', version } } });
      const response = await answer;
      const error = response['error'] as { message?: unknown } | undefined;
      if (error !== undefined) throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, shared) refused initialize: ${String(error.message)}`, { upstream: this.name, transport: 'stdio' });
      await link.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      this.#initResult = response['result'] as Message;
    } catch (error) {
      this.#forwarded.delete(id);
      // A process that cannot be initialized is of no use to the next lease either.
      this.#link = undefined;
      await link.close().catch(() => undefined);
      throw error;
    }
  }

  /** A lease's message to the process (see the module comment for what is remapped or answered here). */
  async send(lease: Lease, message: Message): Promise<void> {
    const link = this.#link;
    if (link === undefined || this.#initResult === undefined) throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, shared) is not started; nothing was sent`, { upstream: this.name, transport: 'stdio' });
    const method = typeof message['method'] === 'string' ? message['method'] : undefined;
    const id = message['id'] as RequestId | undefined;
    if (method === undefined) {
      // An answer to a server→client request: only the lease it was given to may answer it.
      if (id !== undefined && this.#serverRequests.get(id) === lease) {
        this.#serverRequests.delete(id);
        await link.send(message as unknown as JSONRPCMessage);
      }
      return;
    }
    if (id === undefined) {
      await this.#notify(lease, link, method, message);
      return;
    }
    const params = (message['params'] ?? undefined) as Message | undefined;
    switch (method) {
      case 'initialize': {
        // The version the session asked for when the gateway speaks it: the gateway, not the session, talks to the process.
        const asked = params?.['protocolVersion'];
        const protocolVersion = typeof asked === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : this.#initResult['protocolVersion'];
        lease.deliver({ jsonrpc: '2.0', id, result: { ...this.#initResult, protocolVersion } });
        return;
      }
      case 'logging/setLevel':
        lease.deliver({ jsonrpc: '2.0', id, result: {} });
        return;
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = String(params?.['uri']);
        const subscribers = this.#subscriptions.get(uri) ?? new Set<Lease>();
        const first = subscribers.size === 0;
        if (method === 'resources/subscribe') subscribers.add(lease);
        else subscribers.delete(lease);
        if (subscribers.size > 0) this.#subscriptions.set(uri, subscribers);
        else this.#subscriptions.delete(uri);
        const tellProcess = method === 'resources/subscribe' ? first && subscribers.size > 0 : !first && subscribers.size === 0;
        if (!tellProcess) {
          lease.deliver({ jsonrpc: '2.0', id, result: {} });
          return;
        }
        break;
      }
      default:
        break;
    }
    const globalId = this.#nextId++;
    const meta = params?.['_meta'] as Message | undefined;
    const token = meta?.['progressToken'];
    const progressToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    let out = message;
    if (progressToken !== undefined) {
      const globalToken = `attest-${globalId}`;
      this.#progress.set(globalToken, globalId);
      out = { ...message, params: { ...params, _meta: { ...meta, progressToken: globalToken } } };
    }
    this.#forwarded.set(globalId, { lease, id, progressToken });
    try {
      await link.send({ ...out, id: globalId } as unknown as JSONRPCMessage);
    } catch (error) {
      this.#forget(globalId);
      throw error;
    }
  }

  async #notify(lease: Lease, link: UpstreamLink, method: string, message: Message): Promise<void> {
    if (method === 'notifications/initialized') return; // the gateway sent its own
    if (method === 'notifications/cancelled') {
      const params = (message['params'] ?? {}) as Message;
      const requestId = params['requestId'];
      const globalId = [...this.#forwarded.entries()].find(([, f]) => f.lease === lease && f.id === requestId)?.[0];
      if (globalId === undefined) return;
      this.#forget(globalId);
      await link.send({ ...message, params: { ...params, requestId: globalId } } as unknown as JSONRPCMessage);
      return;
    }
    // roots/list_changed and the like: the process was told of no roots, and one session's change is not the others'.
    this.#log.debug({ method }, 'a session notification for a shared upstream process is not relayed');
  }

  #fromProcess(message: Message): void {
    const method = typeof message['method'] === 'string' ? message['method'] : undefined;
    const id = message['id'] as RequestId | undefined;
    if (method === undefined) {
      if (typeof id !== 'number') return;
      const forward = this.#forwarded.get(id);
      if (forward === undefined) return; // late, after the lease ended or cancelled
      this.#forget(id);
      if (forward.lease === undefined) forward.answer?.(message);
      else forward.lease.deliver({ ...message, id: forward.id });
      return;
    }
    const params = (message['params'] ?? {}) as Message;
    if (id !== undefined) {
      if (method === 'ping') {
        void this.#link?.send({ jsonrpc: '2.0', id, result: {} }).catch(() => undefined);
        return;
      }
      const owner = this.#soleBusyLease();
      if (owner === undefined) {
        this.#log.warn({ method }, `shared upstream "${this.name}" sent a ${method} request that no one session can be told apart for; refused (set share: false for servers that send requests to clients)`);
        void this.#link
          ?.send({ jsonrpc: '2.0', id, error: { code: JSONRPC_INTERNAL_ERROR, message: `the gateway shares this server process across sessions and cannot tell which session ${method} is for; nothing was relayed` } })
          .catch(() => undefined);
        return;
      }
      this.#serverRequests.set(id, owner);
      owner.deliver(message);
      return;
    }
    switch (method) {
      case 'notifications/progress': {
        const globalId = this.#progress.get(String(params['progressToken']));
        const forward = globalId === undefined ? undefined : this.#forwarded.get(globalId);
        if (forward?.progressToken !== undefined) forward.lease?.deliver({ ...message, params: { ...params, progressToken: forward.progressToken } });
        return;
      }
      case 'notifications/cancelled': {
        const owner = this.#serverRequests.get(params['requestId'] as RequestId);
        if (owner === undefined) return;
        this.#serverRequests.delete(params['requestId'] as RequestId);
        owner.deliver(message);
        return;
      }
      case 'notifications/resources/updated':
        for (const lease of this.#subscriptions.get(String(params['uri'])) ?? []) lease.deliver(message);
        return;
      case 'notifications/tools/list_changed':
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed':
        for (const lease of this.#leases) lease.deliver(message);
        return;
      default: {
        const owner = this.#soleBusyLease();
        if (owner !== undefined) owner.deliver(message);
        else this.#log.debug({ method }, `shared upstream "${this.name}" sent ${method}, which no one session can be told apart for; dropped`);
      }
    }
  }

  /** The one lease with requests in flight, or undefined when none or several have. */
  #soleBusyLease(): Lease | undefined {
    let sole: Lease | undefined;
    for (const forward of this.#forwarded.values()) {
      if (forward.lease === undefined || !this.#leases.has(forward.lease)) continue;
      if (sole !== undefined && sole !== forward.lease) return undefined;
      sole = forward.lease;
    }
    return sole;
  }

  #forget(globalId: number): void {
    const forward = this.#forwarded.get(globalId);
    this.#forwarded.delete(globalId);
    if (forward?.progressToken !== undefined) this.#progress.delete(`attest-${globalId}`);
  }

  #onEvent(event: UpstreamLinkEvent): void {
    if (event.type === 'lost') {
      // Requests in flight will not be answered: each lease's session fails its own on the event.
      for (const id of [...this.#forwarded.keys()]) this.#forget(id);
      this.#serverRequests.clear();
      if (!event.willRestart) {
        this.#initResult = undefined;
        this.#link = undefined;
      }
    } else if (event.type === 'restarted') {
      // The link replayed the gateway's initialize; subscriptions are the process's state and are made again.
      for (const uri of this.#subscriptions.keys()) {
        void this.#ownRequest('resources/subscribe', { uri });
      }
    } else if (event.type === 'stderr') {
      return;
    }
    for (const lease of this.#leases) lease.event(event);
  }

  /** A request of the gateway's own whose answer nobody waits for (re-subscriptions); its id is forgotten when answered. */
  async #ownRequest(method: string, params: Message): Promise<void> {
    const id = this.#nextId++;
    this.#forwarded.set(id, { lease: undefined, id, progressToken: undefined });
    await this.#link?.send({ jsonrpc: '2.0', id, method, params }).catch(() => this.#forget(id));
  }

  /** A lease ended: what was its is forgotten, and the process closes after the linger when it was the last. */
  async release(lease: Lease): Promise<void> {
    if (!this.#leases.delete(lease)) return;
    for (const [id, forward] of [...this.#forwarded]) if (forward.lease === lease) this.#forget(id);
    for (const [id, owner] of [...this.#serverRequests]) if (owner === lease) this.#serverRequests.delete(id);
    for (const [uri, subscribers] of [...this.#subscriptions]) {
      if (!subscribers.delete(lease) || subscribers.size > 0) continue;
      this.#subscriptions.delete(uri);
      await this.#ownRequest('resources/unsubscribe', { uri });
    }
    if (this.#leases.size > 0) return;
    if (this.retired) {
      await this.close();
      return;
    }
    clearTimeout(this.#linger);
    this.#linger = setTimeout(() => {
      if (this.#leases.size === 0) void this.close();
    }, this.#options.lingerMs ?? SHARED_LINGER_MS);
    this.#linger.unref();
  }

  /** No new leases (a reload changed the config, or the pool closed): closes once the last lease ended. */
  retire(): void {
    this.retired = true;
    if (this.#leases.size === 0) void this.close();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.retired = true;
      clearTimeout(this.#linger);
      this.#onGone();
      const link = this.#link;
      this.#link = undefined;
      this.#initResult = undefined;
      await link?.close();
      for (const lease of [...this.#leases]) lease.event({ type: 'lost', reason: `upstream "${this.name}" (stdio, shared): the gateway closed the shared process`, willRestart: false, error: new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, shared) was closed`, { upstream: this.name, transport: 'stdio' }) });
    })();
    return this.#closing;
  }
}

/** One session's link over a shared process. */
class Lease implements UpstreamLink {
  readonly transport = 'stdio' as const;
  onmessage?: (message: JSONRPCMessage) => void;
  onevent?: (event: UpstreamLinkEvent) => void;
  readonly #shared: SharedProcess;
  #closed = false;

  constructor(shared: SharedProcess) {
    this.#shared = shared;
  }

  get name(): string {
    return this.#shared.name;
  }

  get state(): UpstreamLinkState {
    return this.#closed ? 'closed' : this.#shared.state;
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, shared): the link is closed; nothing was sent`, { upstream: this.name, transport: 'stdio' });
    await this.#shared.ready(signal);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) throw new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" (stdio, shared): the link is closed; nothing was sent`, { upstream: this.name, transport: 'stdio' });
    await this.#shared.send(this, message);
  }

  setProtocolVersion(_version: string): void {
    // stdio carries no protocol version header.
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#shared.release(this);
  }

  /** A message for this lease's session, delivered after the current turn (as a transport would). */
  deliver(message: Message): void {
    if (this.#closed) return;
    queueMicrotask(() => {
      if (!this.#closed) this.onmessage?.(message as unknown as JSONRPCMessage);
    });
  }

  event(event: UpstreamLinkEvent): void {
    if (!this.#closed) this.onevent?.(event);
  }
}
