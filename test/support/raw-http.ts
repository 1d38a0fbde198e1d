/**
 * HTTP below any client: bytes written to a TCP socket as they are given, for what no HTTP
 * client sends (bytes the parser refuses, headers sent one byte at a time, connections left
 * half-open). Every socket is closed by the time the promise settles or by `close()`.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface RawExchange {
  /** Everything the server sent. */
  readonly response: string;
  /** The status code of the first response line, if any. */
  readonly status: number | undefined;
  /** The server closed the connection (or reset it) before `timeoutMs`. */
  readonly closedByServer: boolean;
  /** Milliseconds from connecting until the server closed it (or until the timeout). */
  readonly elapsedMs: number;
}

/** Port of `http://host:port`. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}

/**
 * Connects, then writes each string of `script`, waiting the given milliseconds at each number,
 * and reads until the server closes the connection or `timeoutMs` passes. Writes after the
 * server closed are dropped.
 */
export async function rawExchange(port: number, script: readonly (string | number)[], timeoutMs: number): Promise<RawExchange> {
  const connection = await openRaw(port);
  const started = Date.now();
  const writing = (async () => {
    for (const step of script) {
      if (connection.closed()) return;
      if (typeof step === 'number') await delay(step);
      else connection.socket.write(step);
    }
  })();
  const closedByServer = await connection.waitClosed(timeoutMs);
  connection.close();
  await writing;
  const response = connection.received();
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1];
  return { response, status: status === undefined ? undefined : Number(status), closedByServer, elapsedMs: Date.now() - started };
}

export interface RawConnection {
  readonly socket: Socket;
  received(): string;
  closed(): boolean;
  /** True when the server closed or reset the connection within `timeoutMs`. */
  waitClosed(timeoutMs: number): Promise<boolean>;
  close(): void;
}

export async function openRaw(port: number): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let isClosed = false;
  const closed = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      isClosed = true;
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    received: () => Buffer.concat(chunks).toString('latin1'),
    closed: () => isClosed,
    async waitClosed(timeoutMs) {
      const stop = new AbortController();
      const timer = delay(timeoutMs, 'timeout' as const, { signal: stop.signal }).catch(() => 'aborted' as const);
      const outcome = await Promise.race([closed.then(() => 'closed' as const), timer]);
      stop.abort();
      return outcome === 'closed';
    },
    close() {
      socket.destroy();
    },
  };
}
