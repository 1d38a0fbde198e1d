/**
 * A client without a key, as fast as it can: `connections` keep-alive loops POST a JSON-RPC ping
 * with no Authorization (each answered 401), with a User-Agent of `userAgentBytes`, for `seconds`.
 * Runs in a process of its own so it does not take the CPU of the agents' load generator, from its
 * own loopback address (`--source`, default 127.0.0.2) so the gateway sees another client than the
 * agents on 127.0.0.1 (budgets and connection caps are per address).
 *
 *   node --conditions=attest-source bench/load/refusal-flooder.ts --url URL --seconds S [--connections N] [--source ADDR] [--user-agent-bytes B]
 * prints `FLOODING` when it starts and `FLOODED {"requests":…,"refused":…,"other":…,"elapsedMs":…}` when done.
 */
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import { assertLoopback, exchange } from './mcp-http.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    connections: { type: 'string', default: '32' },
    'user-agent-bytes': { type: 'string', default: '1024' },
    source: { type: 'string', default: '127.0.0.2' },
  },
});
if (values.url === undefined) throw new Error('--url is required');
const url = new URL(values.url);
assertLoopback(url);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
if (!(seconds > 0 && seconds <= 600) || !(connections >= 1 && connections <= 1024)) throw new Error('--seconds in (0, 600], --connections in [1, 1024]');
if (!/^127\.\d+\.\d+\.\d+$/.test(values.source)) throw new Error('--source must be a loopback address');
const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, localAddress: values.source });
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'user-agent': `flood/${'u'.repeat(Number(values['user-agent-bytes']))}` };
const body = ['{"jsonrpc":"2.0","id":1,"method":"ping"}'];

let requests = 0;
let refused = 0;
let other = 0;
const started = performance.now();
const until = started + seconds * 1000;
process.stdout.write('FLOODING\n');
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (performance.now() < until) {
      requests++;
      try {
        const reply = await exchange(agent, url, 'POST', headers, body, 10_000);
        if (reply.status === 401) refused++;
        else other++;
      } catch {
        other++;
      }
    }
  }),
);
process.stdout.write(`FLOODED ${JSON.stringify({ requests, refused, other, elapsedMs: Math.round(performance.now() - started) })}\n`);
agent.destroy();
