/**
 * The client side of MCP Streamable HTTP, reduced to what a load generator needs and written for
 * speed: node:http on a keep-alive agent (one socket per call in flight, reused), request bodies
 * pre-serialised once per run (only the JSON-RPC id changes per call, written as a separate
 * chunk), responses read as `application/json` or as an SSE stream — the gateway answers a POST
 * with SSE, the fast upstream with JSON.
 *
 * Spec: https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 */
import { Agent, request } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export type JsonObject = Record<string, unknown>;

export interface HttpReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export const PROTOCOL_VERSION = '2025-06-18';
const ACCEPT = 'application/json, text/event-stream';

export function loopbackAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'lifo' });
}

/** Checks a URL is on this machine: benchmarks never send load anywhere else. */
export function assertLoopback(url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new Error(`benchmarks send load to loopback addresses only, not ${url.host}`);
  }
}

/** One HTTP exchange; `body` chunks are written in order (no concatenation of a large payload). */
export function exchange(agent: Agent, url: URL, method: 'POST' | 'DELETE', headers: OutgoingHttpHeaders, body: readonly (Buffer | string)[], timeoutMs: number): Promise<HttpReply> {
  return new Promise<HttpReply>((resolve, reject) => {
    let length = 0;
    for (const chunk of body) length += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    const req = request(
      { agent, protocol: url.protocol, hostname: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: { ...headers, 'content-length': length } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no complete answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    // No Nagle: a small last chunk must not wait for the delayed ACK of the one before. (Chunks written
    // in the same tick, before the agent hands over a socket, leave in one flush anyway.)
    req.setNoDelay(true);
    for (let i = 0; i < body.length - 1; i++) req.write(body[i]);
    req.end(body[body.length - 1]);
  });
}

/** The JSON-RPC messages of a reply: one JSON body (or batch), or every `data:` event of an SSE stream. */
export function messagesOf(reply: HttpReply): JsonObject[] {
  const type = reply.headers['content-type'] ?? '';
  if (type.startsWith('text/event-stream')) {
    const out: JsonObject[] = [];
    let data = '';
    // SSE: an event's data lines are joined with "\n"; a blank line ends the event.
    for (const line of reply.body.split('\n')) {
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text.startsWith('data:')) data += (data === '' ? '' : '\n') + text.slice(text.startsWith('data: ') ? 6 : 5);
      else if (text === '' && data !== '') {
        out.push(JSON.parse(data) as JsonObject);
        data = '';
      }
    }
    if (data !== '') out.push(JSON.parse(data) as JsonObject);
    return out;
  }
  if (reply.body.length === 0) return [];
  const parsed = JSON.parse(reply.body) as unknown;
  return (Array.isArray(parsed) ? parsed : [parsed]) as JsonObject[];
}

export interface McpSession {
  readonly id: string;
  readonly protocolVersion: string;
  /** Headers every request of this session carries. */
  readonly headers: OutgoingHttpHeaders;
}

/** Opens a session: `initialize`, then `notifications/initialized` (MCP lifecycle). */
export async function openSession(agent: Agent, url: URL, baseHeaders: OutgoingHttpHeaders, timeoutMs: number, clientName = 'attest-bench'): Promise<McpSession> {
  const headers = { ...baseHeaders, 'content-type': 'application/json', accept: ACCEPT };
  const init = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: clientName, version: '1.0.0' } } });
  const reply = await exchange(agent, url, 'POST', headers, [init], timeoutMs);
  const sessionHeader = reply.headers['mcp-session-id'];
  if (reply.status !== 200 || typeof sessionHeader !== 'string') throw new Error(`initialize failed: HTTP ${reply.status} ${reply.body.slice(0, 300)}`);
  const result = messagesOf(reply).find((m) => m['id'] === 0)?.['result'] as JsonObject | undefined;
  if (result === undefined) throw new Error(`initialize returned no result: ${reply.body.slice(0, 300)}`);
  const protocolVersion = typeof result['protocolVersion'] === 'string' ? result['protocolVersion'] : PROTOCOL_VERSION;
  const session: McpSession = { id: sessionHeader, protocolVersion, headers: { ...headers, 'mcp-session-id': sessionHeader, 'mcp-protocol-version': protocolVersion } };
  const initialized = await exchange(agent, url, 'POST', session.headers, [JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })], timeoutMs);
  if (initialized.status !== 202 && initialized.status !== 200) throw new Error(`notifications/initialized: HTTP ${initialized.status} ${initialized.body.slice(0, 300)}`);
  return session;
}

/** Sends one request of the session and returns its response message (throws on HTTP errors or a missing answer). */
export async function call(agent: Agent, url: URL, session: McpSession, id: number, method: string, params: JsonObject, timeoutMs: number): Promise<JsonObject> {
  const reply = await exchange(agent, url, 'POST', session.headers, [JSON.stringify({ jsonrpc: '2.0', id, method, params })], timeoutMs);
  if (reply.status !== 200) throw new Error(`${method}: HTTP ${reply.status} ${reply.body.slice(0, 300)}`);
  const response = messagesOf(reply).find((m) => m['id'] === id);
  if (response === undefined) throw new Error(`${method}: no response with id ${id} in ${reply.body.slice(0, 300)}`);
  return response;
}

/**
 * Ends a session (DELETE) and returns the reply; a server that does not support it answers 405.
 * No Content-Type: the request has no body (the gateway's HTTP layer answers an empty body declared
 * as application/json with 400 Parse error, and the session stays open).
 */
export async function closeSession(agent: Agent, url: URL, session: McpSession, timeoutMs: number): Promise<HttpReply> {
  const { 'content-type': _contentType, ...headers } = session.headers;
  return exchange(agent, url, 'DELETE', headers, [''], timeoutMs);
}
