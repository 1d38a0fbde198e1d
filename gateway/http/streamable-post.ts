/**
 * The fast path for the commonest message: one JSON-RPC request POSTed on an established
 * Streamable HTTP session. The SDK's Node transport costs 22 % of the gateway's busy time at
 * c64 (BENCHMARKS.md: Node↔web Request/Response conversion, a second zod parse, a stream per
 * POST), so this path writes the answer straight to the socket instead:
 *   - `application/json` when the response is the first message for the request,
 *   - `text/event-stream` when a related notification or server→client request must go first
 *     (MCP Streamable HTTP: the server chooses either for a POST that carries a request).
 * initialize, batches, GET streams and DELETE stay on the SDK transport, which also receives
 * every message that does not belong to a request posted here.
 */
import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage, JsonRpcId } from '../session/protocol.ts';

interface OpenPost {
  readonly res: ServerResponse;
  sse: boolean;
}

export class NativePosts {
  readonly #sessionId: string;
  readonly #open = new Map<JsonRpcId, OpenPost>();

  constructor(sessionId: string) {
    this.#sessionId = sessionId;
  }

  /** Takes over the response for request `id`; the session's messages for it arrive via deliver(). */
  open(id: JsonRpcId, res: ServerResponse): void {
    const post: OpenPost = { res, sse: false };
    this.#open.set(id, post);
    // A client that goes away before the answer: later messages fall back to the SDK's streams.
    res.once('close', () => {
      if (this.#open.get(id) === post) this.#open.delete(id);
    });
  }

  /** Writes a message related to a request posted here; false when no such request is open. */
  deliver(message: JSONRPCMessage, relatedRequestId: JsonRpcId): boolean {
    const post = this.#open.get(relatedRequestId);
    if (post === undefined) return false;
    const final = !('method' in message) && 'id' in message && message.id === relatedRequestId;
    const body = JSON.stringify(message);
    if (!post.sse && final) {
      this.#open.delete(relatedRequestId);
      post.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'mcp-session-id': this.#sessionId });
      post.res.end(body);
      return true;
    }
    if (!post.sse) {
      post.sse = true;
      post.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no', 'mcp-session-id': this.#sessionId });
    }
    post.res.write(`event: message\ndata: ${body}\n\n`);
    if (final) {
      this.#open.delete(relatedRequestId);
      post.res.end();
    }
    return true;
  }

  /** Ends every open POST (the session closed): unanswered ones get a JSON-RPC error, streams end. */
  closeAll(): void {
    for (const [id, post] of this.#open) {
      if (post.res.headersSent) {
        post.res.end();
        continue;
      }
      const body = JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32033, message: 'Session closed before the request was answered', data: { errorCode: 'ATTEST_UNKNOWN_SESSION' } } });
      post.res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      post.res.end(body);
    }
    this.#open.clear();
  }
}
