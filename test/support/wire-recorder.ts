/**
 * A pass-through HTTP proxy on 127.0.0.1 that keeps every exchange as it crossed the wire: the
 * request (method, path, headers, body) and the response (status, headers, body as far as it
 * came). For tests that must see the bytes a real client received, which the client itself may
 * not show (the Inspector CLI prints `{}` for a logging/setLevel whatever the server answered).
 */
import { createServer, request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WireExchange {
  readonly method: string;
  readonly path: string;
  readonly requestHeaders: IncomingHttpHeaders;
  requestBody: string;
  status: number | undefined;
  responseHeaders: IncomingHttpHeaders | undefined;
  responseBody: string;
}

export interface WireRecorder {
  readonly origin: string;
  readonly exchanges: readonly WireExchange[];
  /** The JSON-RPC messages the server sent in answer to POSTs (JSON bodies and SSE `data:` events), in order. */
  messagesReceived(): Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startWireRecorder(targetOrigin: string): Promise<WireRecorder> {
  const target = new URL(targetOrigin);
  const exchanges: WireExchange[] = [];
  const server = createServer((incoming, outgoing) => {
    const exchange: WireExchange = { method: incoming.method ?? '', path: incoming.url ?? '', requestHeaders: { ...incoming.headers }, requestBody: '', status: undefined, responseHeaders: undefined, responseBody: '' };
    exchanges.push(exchange);
    const headers = { ...incoming.headers, host: target.host };
    const forwarded = request({ host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers }, (answer) => {
      exchange.status = answer.statusCode;
      exchange.responseHeaders = { ...answer.headers };
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.setEncoding('utf8');
      answer.on('data', (chunk: string) => {
        exchange.responseBody += chunk;
        outgoing.write(chunk);
      });
      answer.on('end', () => outgoing.end());
    });
    forwarded.on('error', () => outgoing.destroy());
    outgoing.on('close', () => forwarded.destroy());
    incoming.setEncoding('utf8');
    incoming.on('data', (chunk: string) => {
      exchange.requestBody += chunk;
      forwarded.write(chunk);
    });
    incoming.on('end', () => forwarded.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo; // listening on a TCP port, so an AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    exchanges,
    messagesReceived() {
      return exchanges.filter((e) => e.method === 'POST').flatMap((e) => messagesOf(e));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function messagesOf(exchange: WireExchange): Record<string, unknown>[] {
  const type = String(exchange.responseHeaders?.['content-type'] ?? '');
  const body = exchange.responseBody;
  if (type.includes('text/event-stream')) {
    return body
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trim())
      .filter((data) => data.length > 0)
      .map((data) => JSON.parse(data) as Record<string, unknown>);
  }
  if (!type.includes('json') || body.length === 0) return [];
  const parsed = JSON.parse(body) as unknown;
  return (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
}
