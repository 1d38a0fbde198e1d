/**
 * Raw HTTP access to an MCP Streamable HTTP endpoint, for tests that send what no SDK client
 * would: malformed JSON, wrong types, foreign sessions. Responses may come as JSON or as an SSE
 * stream; both are read to the end and returned as JSON-RPC messages.
 */
export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  /** JSON-RPC messages in the body (one for a JSON body, every `data:` event for SSE). */
  readonly messages: readonly Record<string, unknown>[];
  readonly text: string;
}

export const ACCEPT_BOTH = 'application/json, text/event-stream';

export async function rawPost(url: string, body: string | object, headers: Record<string, string> = {}): Promise<RawResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT_BOTH, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return readResponse(response);
}

export async function readResponse(response: Response): Promise<RawResponse> {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let messages: Record<string, unknown>[] = [];
  if (type.includes('text/event-stream')) {
    messages = text
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trim())
      .filter((data) => data.length > 0)
      .map((data) => JSON.parse(data) as Record<string, unknown>);
  } else if (text.length > 0 && type.includes('json')) {
    const parsed = JSON.parse(text) as unknown;
    messages = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
  }
  return { status: response.status, headers: response.headers, messages, text };
}

/** Opens a session with a raw initialize + initialized; returns the session id. */
export async function rawInitialize(url: string, headers: Record<string, string>, protocolVersion = '2025-11-25'): Promise<{ sessionId: string; result: Record<string, unknown> }> {
  const init = await rawPost(url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw-test', version: '0' } } }, headers);
  const sessionId = init.headers.get('mcp-session-id');
  if (init.status !== 200 || sessionId === null) throw new Error(`initialize failed: HTTP ${init.status} ${init.text}`);
  const result = init.messages.find((m) => m['id'] === 1)?.['result'] as Record<string, unknown> | undefined;
  if (result === undefined) throw new Error(`initialize returned no result: ${init.text}`);
  const initialized = await rawPost(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) });
  if (initialized.status !== 202) throw new Error(`notifications/initialized: HTTP ${initialized.status} ${initialized.text}`);
  return { sessionId, result };
}

export function errorOf(response: RawResponse, id?: string | number | null): { code: number; message: string; data?: Record<string, unknown> } {
  const message = response.messages.find((m) => id === undefined || m['id'] === id);
  const error = message?.['error'] as { code: number; message: string; data?: Record<string, unknown> } | undefined;
  if (error === undefined) throw new Error(`expected a JSON-RPC error, got HTTP ${response.status}: ${response.text.slice(0, 500)}`);
  return error;
}
