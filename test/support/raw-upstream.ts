/**
 * A raw Streamable HTTP upstream on 127.0.0.1 for tests that need an MCP server to misbehave in
 * ways no SDK server would. It reads each POST whole and parses it; GETs get 405, notifications and
 * responses 202; every request goes to `handle`, which answers (or does not) as it likes.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawRequest {
  readonly id: number;
  readonly method?: string;
  readonly params?: { readonly name?: string; readonly arguments?: Readonly<Record<string, unknown>> };
}

export interface RawUpstream {
  readonly url: string;
  close(): Promise<void>;
}

export async function startRawUpstream(handle: (message: RawRequest, request: IncomingMessage, response: ServerResponse) => void): Promise<RawUpstream> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST') {
        response.writeHead(405).end();
        return;
      }
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as Partial<RawRequest> | null;
      if (message === null || message.id === undefined) {
        response.writeHead(202).end();
        return;
      }
      handle(message as RawRequest, request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers a request with a JSON-RPC result, as one JSON body on session `sessionId` (so the gateway posts natively). */
export function answerJson(response: ServerResponse, id: number, result: unknown, sessionId = 'raw-1'): void {
  response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': sessionId }).end(JSON.stringify({ jsonrpc: '2.0', id, result }));
}
