/**
 * A real MCP client (v2 SDK) for tests. It connects over Streamable HTTP, legacy HTTP+SSE or
 * stdio, can send extra HTTP headers (e.g. `Authorization`), declares sampling, elicitation and
 * roots and answers them deterministically (`CLIENT_ANSWERS`), and keeps an inbox of every
 * message the server sent it — notifications (progress, logging, list_changed,
 * resources/updated, …) and server→client requests — for assertions.
 */
import type * as ClientSdkModule from '@modelcontextprotocol/client';
import type { Client, ClientCapabilities, FetchLike, JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, Transport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { isJSONRPCNotification, isJSONRPCRequest } from '@modelcontextprotocol/server';

type ClientSdk = typeof ClientSdkModule;

/** The client SDK's main entry, loaded on first use. */
async function clientSdk(): Promise<ClientSdk> {
  return import('@modelcontextprotocol/client');
}

export type ClientTarget =
  | { transport: 'streamable-http'; url: string; headers?: Readonly<Record<string, string>> }
  | { transport: 'sse'; url: string; headers?: Readonly<Record<string, string>> }
  | { transport: 'stdio'; command: string; args?: readonly string[]; env?: Readonly<Record<string, string>>; cwd?: string };

export interface ConnectClientOptions {
  /** clientInfo.name. Default `attest-test-client`. */
  name?: string;
  /** Which client features to declare and answer. Default: all. */
  sampling?: boolean;
  elicitation?: boolean;
  roots?: boolean;
  /** Bound on connecting (handshake, and on Streamable HTTP the standalone GET stream). Default 15 s. */
  timeoutMs?: number;
}

/** The deterministic answers the test client gives to server→client requests. */
export const CLIENT_ANSWERS = {
  samplingModel: 'attest-test-model',
  /** The sampled text: this prefix plus the text of the last message the server sent. */
  samplingPrefix: 'sampled: ',
  elicitation: { action: 'accept', content: { name: 'Ada Lovelace', confirm: true } },
  roots: [
    { uri: 'file:///tmp/attest-test-root', name: 'attest-test-root' },
    { uri: 'file:///tmp/attest-test-root-2', name: 'attest-test-root-2' },
  ],
} as const;

export interface TestClient {
  readonly client: Client;
  readonly inbox: Inbox;
  /** Closes the connection (and, on stdio, the server process it started). Idempotent. */
  close(): Promise<void>;
}

type Waiter = { readonly offer: (message: JSONRPCMessage) => boolean };

/** Everything the server sent the client, in arrival order. */
export class Inbox {
  readonly notifications: JSONRPCNotification[] = [];
  readonly requests: JSONRPCRequest[] = [];
  private readonly waiters = new Set<Waiter>();

  record(message: JSONRPCMessage): void {
    if (isJSONRPCNotification(message)) this.notifications.push(message);
    else if (isJSONRPCRequest(message)) this.requests.push(message);
    else return;
    for (const waiter of this.waiters) {
      if (waiter.offer(message)) this.waiters.delete(waiter);
    }
  }

  notificationsOf(method: string): JSONRPCNotification[] {
    return this.notifications.filter((n) => n.method === method);
  }

  requestsOf(method: string): JSONRPCRequest[] {
    return this.requests.filter((r) => r.method === method);
  }

  /** The first notification with `method` matching `predicate`, already received or arriving within `timeoutMs`. */
  waitForNotification(method: string, predicate: (n: JSONRPCNotification) => boolean = () => true, timeoutMs = 5_000): Promise<JSONRPCNotification> {
    const seen = this.notifications.find((n) => n.method === method && predicate(n));
    if (seen !== undefined) return Promise.resolve(seen);
    return this.wait(
      (m): m is JSONRPCNotification => isJSONRPCNotification(m) && m.method === method && predicate(m),
      timeoutMs,
      `notification ${method}`,
    );
  }

  /** The first server→client request with `method` matching `predicate`, already received or arriving within `timeoutMs`. */
  waitForRequest(method: string, predicate: (r: JSONRPCRequest) => boolean = () => true, timeoutMs = 5_000): Promise<JSONRPCRequest> {
    const seen = this.requests.find((r) => r.method === method && predicate(r));
    if (seen !== undefined) return Promise.resolve(seen);
    return this.wait((m): m is JSONRPCRequest => isJSONRPCRequest(m) && m.method === method && predicate(m), timeoutMs, `request ${method}`);
  }

  private wait<T extends JSONRPCMessage>(matches: (m: JSONRPCMessage) => m is T, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        offer: (message) => {
          if (!matches(message)) return false;
          clearTimeout(timer);
          resolve(message);
          return true;
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const got = this.notifications.map((n) => n.method).join(', ') || 'nothing';
        reject(new Error(`no ${what} within ${timeoutMs} ms (notifications so far: ${got})`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

const open = new Set<TestClient>();

export async function connectClient(target: ClientTarget, options: ConnectClientOptions = {}): Promise<TestClient> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const capabilities: ClientCapabilities = {};
  if (options.sampling !== false) capabilities.sampling = {};
  if (options.elicitation !== false) capabilities.elicitation = { form: {} };
  if (options.roots !== false) capabilities.roots = { listChanged: true };

  const sdk = await clientSdk();
  const client = new sdk.Client({ name: options.name ?? 'attest-test-client', version: '1.0.0' }, { capabilities });
  if (options.sampling !== false) {
    client.setRequestHandler('sampling/createMessage', (request) => {
      const last = request.params.messages.at(-1);
      const blocks = last === undefined ? [] : Array.isArray(last.content) ? last.content : [last.content];
      const said = blocks.map((block) => (block.type === 'text' ? block.text : '')).join('');
      return { model: CLIENT_ANSWERS.samplingModel, role: 'assistant', content: { type: 'text', text: `${CLIENT_ANSWERS.samplingPrefix}${said}` }, stopReason: 'endTurn' };
    });
  }
  if (options.elicitation !== false) {
    client.setRequestHandler('elicitation/create', () => ({ action: CLIENT_ANSWERS.elicitation.action, content: { ...CLIENT_ANSWERS.elicitation.content } }));
  }
  if (options.roots !== false) {
    client.setRequestHandler('roots/list', () => ({ roots: CLIENT_ANSWERS.roots.map((root) => ({ ...root })) }));
  }

  const inbox = new Inbox();
  const { transport, standaloneStream } = createTransport(sdk, target);
  // Protocol.connect keeps a pre-existing onmessage and calls it before its own dispatch, so the
  // inbox sees every message exactly as it arrived on the wire.
  transport.onmessage = (message: JSONRPCMessage) => inbox.record(message);
  await client.connect(transport, { timeout: timeoutMs });
  if (standaloneStream !== undefined) await withTimeout(standaloneStream, timeoutMs, `standalone GET stream of ${describeTarget(target)}`);

  let closing: Promise<void> | undefined;
  const handle: TestClient = {
    client,
    inbox,
    close: () => {
      closing ??= client.close().finally(() => open.delete(handle));
      return closing;
    },
  };
  open.add(handle);
  return handle;
}

/** Closes every client `connectClient` opened that is still open. For `after()` hooks. */
export async function closeAllClients(): Promise<void> {
  await Promise.allSettled([...open].map((c) => c.close()));
}

export function describeTarget(target: ClientTarget): string {
  return target.transport === 'stdio' ? `stdio ${target.command} ${(target.args ?? []).join(' ')}` : `${target.transport} ${target.url}`;
}

function createTransport(sdk: ClientSdk, target: ClientTarget): { transport: Transport; standaloneStream?: Promise<void> } {
  switch (target.transport) {
    case 'stdio':
      return {
        transport: new StdioClientTransport({
          command: target.command,
          args: [...(target.args ?? [])],
          env: { ...definedEnv(process.env), ...target.env },
          cwd: target.cwd,
          stderr: 'pipe',
        }),
      };
    case 'sse':
      return { transport: new sdk.SSEClientTransport(new URL(target.url), { fetch: fetchWithHeaders(target.headers ?? {}) }) };
    case 'streamable-http': {
      // After `notifications/initialized` the SDK opens the standalone GET stream in the
      // background; notifications that belong to no request (list_changed, resources/updated)
      // travel only on it. Connecting is done when the server has answered that GET (any
      // status: 405 is a server's legitimate "no standalone stream").
      let opened: () => void = () => undefined;
      const standaloneStream = new Promise<void>((resolve) => {
        opened = resolve;
      });
      const base = fetchWithHeaders(target.headers ?? {});
      const observingFetch: FetchLike = async (url, init) => {
        const response = await base(url, init);
        if ((init?.method ?? 'GET').toUpperCase() === 'GET') opened();
        return response;
      };
      return { transport: new sdk.StreamableHTTPClientTransport(new URL(target.url), { fetch: observingFetch }), standaloneStream };
    }
  }
}

/** A fetch that adds `headers` to every request the transport makes (POST, GET stream, DELETE). */
function fetchWithHeaders(headers: Readonly<Record<string, string>>): FetchLike {
  return (url, init) => {
    const merged = new Headers(init?.headers);
    for (const [name, value] of Object.entries(headers)) merged.set(name, value);
    return fetch(url, { ...init, headers: merged });
  };
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}
