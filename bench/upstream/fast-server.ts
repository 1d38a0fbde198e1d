/**
 * A minimal, fast upstream MCP server for benchmarks: raw node:http, Streamable HTTP with JSON
 * responses only (no SSE), one tool `echo` that returns its `payload` argument as text. It exists so
 * the upstream is not what a benchmark measures: no SDK, no schema validation, no per-request
 * allocation beyond parsing the body and serialising the answer.
 *
 * Spec: https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * (a server MAY answer a POSTed request with `application/json`; GET without an SSE stream is 405;
 * a request with an unknown `Mcp-Session-Id` is 404, which tells the client to initialize again).
 *
 *   node --conditions=attest-source bench/upstream/fast-server.ts [--port 0] [--host 127.0.0.1]
 * prints `LISTENING http://127.0.0.1:<port>/mcp` once it accepts connections.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

const PROTOCOL_VERSIONS = new Set(['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
const DEFAULT_PROTOCOL_VERSION = '2025-06-18';
/** Sessions are only ids; past this many the oldest are forgotten (their clients get 404 and re-initialize). */
const MAX_SESSIONS = 20_000;
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const ECHO_TOOL = {
  name: 'echo',
  description: 'Returns the payload argument as text.',
  inputSchema: { type: 'object', properties: { payload: { type: 'string' } }, required: ['payload'] },
};

type JsonObject = Record<string, unknown>;

interface RpcMessage {
  readonly jsonrpc?: unknown;
  readonly id?: unknown;
  readonly method?: unknown;
  readonly params?: unknown;
}

export interface FastServer {
  /** `http://host:port/mcp` */
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export interface FastServerOptions {
  readonly port?: number;
  readonly host?: string;
}

function asObject(value: unknown): JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : {};
}

function rpcError(id: unknown, code: number, message: string): JsonObject {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message } };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The answer to one request of a known session (or `initialize`), or undefined for a notification/response. */
function answer(message: RpcMessage): JsonObject | undefined {
  if (typeof message.method !== 'string') return undefined; // a response from the client: accepted, ignored
  if (message.id === undefined || message.id === null) return undefined; // a notification
  const params = asObject(message.params);
  switch (message.method) {
    case 'initialize': {
      const requested = params['protocolVersion'];
      const protocolVersion = typeof requested === 'string' && PROTOCOL_VERSIONS.has(requested) ? requested : DEFAULT_PROTOCOL_VERSION;
      return { jsonrpc: '2.0', id: message.id, result: { protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'attest-bench-fast', version: '1.0.0' } } };
    }
    case 'ping':
      return { jsonrpc: '2.0', id: message.id, result: {} };
    case 'tools/list':
      return { jsonrpc: '2.0', id: message.id, result: { tools: [ECHO_TOOL] } };
    case 'tools/call': {
      if (params['name'] !== 'echo') return rpcError(message.id, -32602, `Unknown tool: ${String(params['name'])}`);
      const payload = asObject(params['arguments'])['payload'];
      if (typeof payload !== 'string') return rpcError(message.id, -32602, 'echo: the "payload" argument must be a string');
      return { jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: payload }] } };
    }
    default:
      return rpcError(message.id, -32601, `Method not found: ${message.method}`);
  }
}

export function createFastServer(): Server {
  const sessions = new Set<string>();

  function openSession(): string {
    const id = randomUUID();
    if (sessions.size >= MAX_SESSIONS) {
      const oldest = sessions.values().next().value;
      if (oldest !== undefined) sessions.delete(oldest);
    }
    sessions.add(id);
    return id;
  }

  function onBody(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      send(res, 400, rpcError(null, -32700, 'Parse error'));
      return;
    }
    const messages = (Array.isArray(parsed) ? parsed : [parsed]) as RpcMessage[];
    const header = req.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : undefined;
    const isInitialize = messages.some((m) => m.method === 'initialize');
    let newSession: string | undefined;
    if (isInitialize) newSession = openSession();
    else if (sessionId === undefined) {
      send(res, 400, rpcError(null, -32600, 'Bad Request: Mcp-Session-Id header is required'));
      return;
    } else if (!sessions.has(sessionId)) {
      send(res, 404, rpcError(null, -32001, 'Session not found'));
      return;
    }
    const answers: JsonObject[] = [];
    for (const message of messages) {
      const reply = answer(message);
      if (reply !== undefined) answers.push(reply);
    }
    const headers: Record<string, string> = newSession === undefined ? {} : { 'mcp-session-id': newSession };
    if (answers.length === 0) {
      res.writeHead(202, headers);
      res.end();
      return;
    }
    send(res, 200, Array.isArray(parsed) ? answers : answers[0], headers);
  }

  return createServer({ keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 120_000 }, (req, res) => {
    if (req.url?.split('?')[0] !== '/mcp') {
      send(res, 404, rpcError(null, -32600, 'Not found: the endpoint is /mcp'));
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(405, { allow: 'POST, DELETE' });
      res.end();
      return;
    }
    if (req.method === 'DELETE') {
      const header = req.headers['mcp-session-id'];
      const known = typeof header === 'string' && sessions.delete(header);
      res.writeHead(known ? 200 : 404);
      res.end();
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST, DELETE' });
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        send(res, 413, rpcError(null, -32600, 'Body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!res.headersSent) onBody(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
  });
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startFastServer(options: FastServerOptions = {}): Promise<FastServer> {
  const host = options.host ?? '127.0.0.1';
  // Benchmarks send load only to this machine.
  if (!LOOPBACK.has(host)) throw new Error(`fast-server binds to loopback only (127.0.0.1, ::1, localhost), not "${host}"`);
  const server = createFastServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port ?? 0;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
  const fast = await startFastServer({ port: Number(values.port), host: values.host });
  process.stdout.write(`LISTENING ${fast.url}\n`);
  const stop = (): void => {
    void fast.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
