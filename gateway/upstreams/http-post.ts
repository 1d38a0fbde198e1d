/**
 * The fast path for the commonest upstream message: a JSON-RPC request POSTed on an established
 * Streamable HTTP session. The SDK's client transport (fetch, web streams, an AbortSignal and an
 * AsyncLocalStorage hop per request) was 29 % of the gateway's busy time at c64 (BENCHMARKS.md);
 * this path uses one keep-alive `node:http(s)` agent per upstream, reads an `application/json`
 * answer as one buffer, and parses `text/event-stream` (the server streaming notifications or
 * requests before its response) with eventsource-parser. initialize, notifications, responses to
 * server requests, the GET stream and DELETE stay on the SDK transport, which also owns the session.
 */
import http from 'node:http';
import https from 'node:https';
import { createParser } from 'eventsource-parser';
import type { JSONRPCMessage } from '@modelcontextprotocol/client';

export interface PostOutcome {
  readonly status: number;
}

export interface NativePoster {
  /**
   * POSTs one message; resolves once the response headers arrived (and, for a JSON answer, after it
   * was delivered). Messages in the body go to `deliver` in order; a body that breaks off is
   * reported through `onBodyError` (the caller's pending request then times out or is failed).
   */
  post(body: string, headers: Readonly<Record<string, string>>, timeoutMs: number, deliver: (message: JSONRPCMessage) => void, onBodyError: (error: Error) => void): Promise<PostOutcome>;
  close(): void;
}

/**
 * A POST that failed, and whether its request had been sent whole by then: before that the
 * upstream cannot have read the request (so cannot have run it), after it may have.
 */
export class PostFailure extends Error {
  readonly requestSent: boolean;
  constructor(error: Error, requestSent: boolean) {
    super(error.message, { cause: error });
    this.name = 'PostFailure';
    this.requestSent = requestSent;
  }
}

/** The failure of an upstream answer cut off at `maxResponseBytes` (here and on the SDK transport's path, http.ts). */
export function responseTooLarge(maxResponseBytes: number): Error {
  return new Error(`the upstream's answer exceeds maxResponseBytes (${maxResponseBytes} bytes); it was cut off and dropped`);
}

/** `maxResponseBytes`: the most one response body may bring (JSON, or the whole event stream of one POST); beyond it the response is destroyed and the post fails. */
export function createNativePoster(url: URL, maxResponseBytes: number): NativePoster {
  const tooLarge = (): Error => responseTooLarge(maxResponseBytes);
  const secure = url.protocol === 'https:';
  const agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const request = secure ? https.request : http.request;
  return {
    post(body, headers, timeoutMs, deliver, onBodyError) {
      return new Promise<PostOutcome>((resolve, fail) => {
        let sent = false;
        // An answer (even a broken one) means the request was read: only a failure before the whole body left says otherwise.
        let answered = false;
        const reject = (error: Error): void => fail(new PostFailure(error, sent || answered));
        const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body) } }, (res) => {
          answered = true;
          req.setTimeout(0);
          const status = res.statusCode ?? 0;
          const type = res.headers['content-type'] ?? '';
          if (status < 200 || status >= 300 || status === 202 || res.headers['content-length'] === '0') {
            res.resume();
            resolve({ status });
            return;
          }
          if (type.includes('text/event-stream')) {
            const parser = createParser({
              onEvent: (event) => {
                if (event.data.length === 0) return;
                try {
                  deliver(JSON.parse(event.data) as JSONRPCMessage);
                } catch (error) {
                  onBodyError(error as Error);
                }
              },
            });
            res.setEncoding('utf8');
            let received = 0;
            res.on('data', (chunk: string) => {
              received += Buffer.byteLength(chunk);
              if (received > maxResponseBytes) {
                res.destroy();
                onBodyError(tooLarge());
                return;
              }
              parser.feed(chunk);
            });
            res.once('error', onBodyError);
            res.once('aborted', () => onBodyError(new Error('the upstream closed the event stream early')));
            resolve({ status });
            return;
          }
          const chunks: Buffer[] = [];
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > maxResponseBytes) {
              res.destroy();
              reject(tooLarge());
              return;
            }
            chunks.push(chunk);
          });
          res.once('error', reject);
          res.once('end', () => {
            try {
              const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JSONRPCMessage | JSONRPCMessage[];
              for (const message of Array.isArray(parsed) ? parsed : [parsed]) deliver(message);
              resolve({ status });
            } catch (error) {
              reject(new Error(`the upstream answered with invalid JSON: ${(error as Error).message}`));
            }
          });
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no response headers within ${timeoutMs} ms`)));
        req.once('error', reject);
        req.once('finish', () => {
          sent = true;
        });
        req.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}
