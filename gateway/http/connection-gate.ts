/**
 * A cap on the connections one remote address may hold open (frontDoor.maxConnectionsPerSource):
 * half-open or slow connections from one client cannot take every socket. A connection beyond the
 * cap is answered with the given raw response and closed before the HTTP parser sees a byte.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export function gateConnectionsPerSource(server: Server, maxPerSource: number, refuse: (socket: Socket) => string): void {
  const open = new Map<string, number>();
  // http.Server parses every connection in the 'connection' listener it adds at construction;
  // taking it over lets a refused socket bypass it instead of racing it.
  const parsers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? 'unknown';
    const count = open.get(source) ?? 0;
    if (count >= maxPerSource) {
      socket.on('error', () => undefined);
      socket.end(refuse(socket));
      socket.destroySoon();
      return;
    }
    open.set(source, count + 1);
    socket.once('close', () => {
      const left = (open.get(source) ?? 1) - 1;
      if (left === 0) open.delete(source);
      else open.set(source, left);
    });
    for (const parse of parsers) parse.call(server, socket);
  });
}
