/**
 * An agent on the other end of an in-process stdio gateway (`serveStdio` with PassThrough streams):
 * writes JSON-RPC lines to its stdin, collects the lines it writes to stdout, and waits for the
 * answer to a request id.
 */
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StdioAgent {
  readonly stdin: PassThrough;
  readonly stdout: PassThrough;
  /** Writes one message (an object is serialised; a string is sent as is, for bytes no serialiser would produce). */
  send(message: object | string): void;
  /** The gateway's answer to request `id`, waited for up to 10 s. */
  answer(id: number): Promise<Record<string, unknown>>;
  /** initialize, its answer, notifications/initialized. */
  initialize(): Promise<void>;
}

export function stdioAgent(): StdioAgent {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: stdout }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const send = (message: object | string): void => void stdin.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
  const answer = async (id: number): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 400; i++) {
      const found = lines.find((m) => m['id'] === id);
      if (found !== undefined) return found;
      await sleep(25);
    }
    throw new Error(`no answer to request ${id}`);
  };
  return {
    stdin,
    stdout,
    send,
    answer,
    async initialize() {
      send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'stdio-test', version: '0' } } });
      await answer(1);
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    },
  };
}
