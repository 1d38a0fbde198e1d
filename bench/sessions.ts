/**
 * What sessions cost (issues 15 and 16): one `attest gateway` process (the CLI) fronting the fixture MCP
 * server (test/fixtures/upstream/server.ts, the SDK's McpServer) over stdio, with `share: true` or
 * `false`. `--sessions` one-shot clients, one after another, each: initialize, notifications/initialized,
 * one tools/call (fixture__echo), and never a DELETE — as the MCP Inspector CLI and test clients do.
 * Measured after the last one: the gateway's RSS (VmRSS, and its growth over the RSS before the first
 * session), the gateway's descendant processes and their summed RSS, from /proc.
 *
 *   node --conditions=attest-source bench/sessions.ts [--sessions 1000] [--share true|false] [--concurrency 4]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { call, loopbackAgent, openSession } from './load/mcp-http.ts';
import { stopAllChildren } from './support/child.ts';
import { BENCH_API_KEY, gatewayConfig, REPO_ROOT, startGatewayProcess } from './support/gateway-process.ts';
import { machineInfo, processMemory } from './support/proc-stats.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    share: { type: 'string', default: 'true' },
    concurrency: { type: 'string', default: '4' },
    /** Bound on the whole run of sessions. */
    'max-seconds': { type: 'string', default: '600' },
  },
});
const sessions = Number(values.sessions);
const share = values.share === 'true';
const concurrency = Number(values.concurrency);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'upstream', 'server.ts');
const MiB = 1024 * 1024;

/** Every process whose ancestry leads to `root`, with its RSS (from /proc). */
function descendants(root: number): { pid: number; rssBytes: number }[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') parents.set(Number(entry), Number(fields[1]));
    } catch {
      // gone between the listing and the read
    }
  }
  const out: { pid: number; rssBytes: number }[] = [];
  for (const pid of parents.keys()) {
    let parent = parents.get(pid);
    for (let hops = 0; parent !== undefined && parent > 1 && hops < 64; hops++) {
      if (parent === root) {
        try {
          out.push({ pid, rssBytes: processMemory(pid).rssBytes });
        } catch {
          // gone
        }
        break;
      }
      parent = parents.get(parent);
    }
  }
  return out;
}

const workDir = mkdtempSync(join(tmpdir(), 'attest-bench-sessions-'));
try {
  const config = gatewayConfig({ backend: 'file', dir: join(workDir, 'log') }, {});
  config['gateway'] = { ...(config['gateway'] as object), sessionLimits: { perKey: sessions + 10, perTenant: sessions + 10, total: sessions + 10 } };
  config['upstreams'] = { fixture: { transport: 'stdio', command: process.execPath, args: [FIXTURE, '--stdio'], share, probeAtStart: false } };
  const gateway = await startGatewayProcess({ launcher: 'cli', config, workDir });
  await sleep(2_000);
  const before = processMemory(gateway.pid).rssBytes;
  const agent = loopbackAgent(concurrency);
  const url = new URL(gateway.mcpUrl);
  const headers = { authorization: `Bearer ${BENCH_API_KEY}` };
  let opened = 0;
  let failed = 0;
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < sessions && Date.now() < deadline) {
        const i = next++;
        try {
          const session = await openSession(agent, url, headers, 60_000, `one-shot-${i}`);
          const answer = await call(agent, url, session, 1, 'tools/call', { name: 'fixture__echo', arguments: { text: `one-shot ${i}` } }, 60_000);
          if ('error' in answer) throw new Error(JSON.stringify(answer['error']));
          opened++;
        } catch (error) {
          failed++;
          if (failed <= 3) process.stderr.write(`session ${i}: ${String(error)}\n`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await sleep(2_000);
  const after = processMemory(gateway.pid).rssBytes;
  const children = descendants(gateway.pid);
  const childRss = children.reduce((sum, c) => sum + c.rssBytes, 0);
  const health = (await (await fetch(`${gateway.baseUrl}/healthz`)).json()) as { sessions: number; logEvents: number };
  const result = {
    at: new Date().toISOString(),
    machine: machineInfo(),
    share,
    sessionsAsked: sessions,
    sessionsOpened: opened,
    failed,
    openSessionsOnHealthz: health.sessions,
    seconds: Math.round(seconds * 10) / 10,
    gatewayRssBeforeMiB: Math.round((before / MiB) * 10) / 10,
    gatewayRssAfterMiB: Math.round((after / MiB) * 10) / 10,
    gatewayRssPerSessionKiB: opened === 0 ? null : Math.round((after - before) / opened / 1024),
    upstreamProcesses: children.length,
    upstreamRssMiB: Math.round((childRss / MiB) * 10) / 10,
    upstreamRssPerSessionMiB: opened === 0 ? null : Math.round((childRss / opened / MiB) * 10) / 10,
    logEvents: health.logEvents,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  await gateway.stop();
} finally {
  await stopAllChildren();
  rmSync(workDir, { recursive: true, force: true });
}
