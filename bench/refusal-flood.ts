/**
 * The refusal flood of issue 15: a client without a key floods the gateway as fast as it can, on as
 * many connections as one address may hold (frontDoor.maxConnectionsPerSource, 256), from
 * 127.0.0.2; agents with a valid key load it from 127.0.0.1 (closed loop, 100 B echo calls through a
 * fast upstream). Bounded phases, each on a fresh gateway process and a fresh durable file log:
 *   baseline          the agents alone;
 *   flood-alone       the flood alone, frontDoor defaults: the log's growth is the flood's;
 *   unbudgeted-alone  the same with a budget too large to matter: every refusal recorded (as before);
 *   agents+flood      both at once, frontDoor defaults: the agents' calls/s against the baseline.
 * With --rounds R, baseline and agents+flood run R times each, alternating (the machine may be
 * shared: alternation spreads its noise over both), and the medians are compared. With
 * --flooder-nice N the flooder runs at that nice value: an attacker is another machine, and on a
 * 2-core box its own CPU would otherwise be counted against the gateway (default 0: it competes).
 * --over-budget-delay MS sets frontDoor.refusals.overBudgetDelayMs in the budgeted phases (default:
 * the config's default).
 * Reported per phase: the agents' calls/s, the flood's requests/s, and the log's growth over the
 * measured window, extrapolated to MB per minute.
 *
 *   node --conditions=attest-source bench/refusal-flood.ts [--duration 30] [--rounds 1] [--flooder-nice 0] [--over-budget-delay MS] [--concurrency 16] [--connections 256] [--out FILE]
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from './load/load-generator.ts';
import { SOURCE_CONDITION, spawnListening, spawnNode, stopAllChildren } from './support/child.ts';
import { BENCH_API_KEY, gatewayConfig, REPO_ROOT, startGatewayProcess } from './support/gateway-process.ts';
import type { GatewayProcess } from './support/gateway-process.ts';
import { machineInfo } from './support/proc-stats.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '16' },
    connections: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '1' },
    'flooder-nice': { type: 'string', default: '0' },
    'over-budget-delay': { type: 'string' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'refusal-flood.json') },
  },
});
const durationS = Number(values.duration);
const concurrency = Number(values.concurrency);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const flooderNice = Number(values['flooder-nice']);
if (!(Number.isInteger(flooderNice) && flooderNice >= 0 && flooderNice <= 19)) throw new Error('--flooder-nice in [0, 19]');
if (!(durationS > 0 && durationS <= 300)) throw new Error('--duration in (0, 300] seconds');
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 10)) throw new Error('--rounds in [1, 10]');

type Phase = 'baseline' | 'flood-alone' | 'unbudgeted-alone' | 'agents+flood';
const PHASES: readonly Phase[] = ['flood-alone', 'unbudgeted-alone', ...Array.from({ length: rounds }, () => ['baseline', 'agents+flood'] as const).flat()];
const overBudgetDelay = values['over-budget-delay'] === undefined ? undefined : Number(values['over-budget-delay']);
const BUDGETED = overBudgetDelay === undefined ? undefined : { refusals: { overBudgetDelayMs: overBudgetDelay } };
const UNBUDGETED = { refusals: { perSourceBurst: 1_000_000_000, perSourcePerSecond: 1_000_000_000, totalBurst: 1_000_000_000, totalPerSecond: 1_000_000_000 } };

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) total += statSync(join(dir, name)).size;
  return total;
}

interface PhaseResult {
  readonly phase: Phase;
  readonly agentCallsPerSecond: number;
  readonly agentErrors: number;
  readonly agentP50Ms: number;
  readonly agentP99Ms: number;
  readonly floodRequests: number;
  readonly floodRequestsPerSecond: number;
  readonly floodOther: number;
  readonly logGrowthBytes: number;
  readonly windowMs: number;
  readonly logMBPerMinute: number;
  /** The gateway process's CPU over the window, in % of one core. */
  readonly gatewayCpuPercent: number;
}

const upstream = await spawnListening([SOURCE_CONDITION], join(REPO_ROOT, 'bench', 'upstream', 'fast-server.ts'), [], { cwd: REPO_ROOT });
const results: PhaseResult[] = [];
try {
  for (const phase of PHASES) {
    const workDir = mkdtempSync(join(tmpdir(), `attest-bench-flood-${phase}-`));
    let gateway: GatewayProcess | undefined;
    try {
      const logDir = join(workDir, 'log');
      const config = { ...gatewayConfig({ backend: 'file', dir: logDir }, { fast: upstream.url }), ...(phase === 'unbudgeted-alone' ? { frontDoor: UNBUDGETED } : BUDGETED !== undefined && { frontDoor: BUDGETED }) };
      gateway = await startGatewayProcess({ launcher: 'bench', config, workDir });
      const gw = gateway;
      const withAgents = phase === 'baseline' || phase === 'agents+flood';
      const withFlood = phase !== 'baseline';
      let flooder: ReturnType<typeof spawnNode> | undefined;
      let sizeBefore = 0;
      let startedAt = 0;
      let cpuBefore = 0;
      const startFlood = async (): Promise<void> => {
        if (withFlood) {
          flooder = spawnNode([SOURCE_CONDITION], join(REPO_ROOT, 'bench', 'load', 'refusal-flooder.ts'), ['--url', gw.mcpUrl, '--seconds', String(durationS), '--connections', String(connections)], { cwd: REPO_ROOT });
          if (flooderNice > 0) setPriority(flooder.pid, flooderNice);
          await flooder.waitForLine(/^FLOODING$/, 30_000);
        }
        sizeBefore = dirBytes(logDir);
        cpuBefore = (await gw.snapshot()).cpuMs;
        startedAt = performance.now();
      };
      const load = withAgents
        ? await runLoad(
            { url: gw.mcpUrl, headers: { authorization: `Bearer ${BENCH_API_KEY}` }, tool: 'fast__echo', payloadBytes: 100, sessions: concurrency, concurrency, warmup: { maxCalls: 1_000_000, maxMs: 1500 }, measure: { maxCalls: 100_000_000, maxMs: durationS * 1000 }, callTimeoutMs: 30_000 },
            { beforeMeasure: startFlood },
          )
        : (await startFlood(), undefined);
      const flood = flooder === undefined ? { requests: 0, refused: 0, other: 0, elapsedMs: 0 } : (JSON.parse((await flooder.waitForLine(/^FLOODED (.*)$/, (durationS + 60) * 1000)).match[1] as string) as { requests: number; refused: number; other: number; elapsedMs: number });
      const windowMs = performance.now() - startedAt;
      const gatewayCpuMs = (await gw.snapshot()).cpuMs - cpuBefore;
      // After a clean stop: the counts of the last window are recorded by then.
      await gateway.stop();
      gateway = undefined;
      const growth = dirBytes(logDir) - sizeBefore;
      results.push({
        phase,
        agentCallsPerSecond: load === undefined ? 0 : Math.round(load.callsPerSecond),
        agentErrors: load?.errors ?? 0,
        agentP50Ms: load === undefined ? 0 : Number(load.latency.p50Ms.toFixed(2)),
        agentP99Ms: load === undefined ? 0 : Number(load.latency.p99Ms.toFixed(2)),
        floodRequests: flood.requests,
        floodRequestsPerSecond: flood.elapsedMs === 0 ? 0 : Math.round((flood.requests / flood.elapsedMs) * 1000),
        floodOther: flood.other,
        logGrowthBytes: growth,
        windowMs: Math.round(windowMs),
        logMBPerMinute: Number(((growth / (1024 * 1024)) * (60_000 / windowMs)).toFixed(2)),
        gatewayCpuPercent: Math.round((gatewayCpuMs / windowMs) * 100),
      });
      process.stderr.write(`${JSON.stringify(results.at(-1))}\n`);
    } finally {
      await gateway?.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  }
} finally {
  await stopAllChildren();
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : ((sorted[Math.floor((sorted.length - 1) / 2)] as number) + (sorted[Math.ceil((sorted.length - 1) / 2)] as number)) / 2;
};
const baseline = median(results.filter((r) => r.phase === 'baseline').map((r) => r.agentCallsPerSecond));
const flooded = median(results.filter((r) => r.phase === 'agents+flood').map((r) => r.agentCallsPerSecond));
process.stdout.write('| phase | agent calls/s | vs baseline median | agent p50 / p99 ms | agent errors | flood req/s | gateway CPU % | log growth | log MB/min |\n|---|---|---|---|---|---|---|---|---|\n');
for (const r of results) {
  const ratio = baseline === 0 || r.agentCallsPerSecond === 0 ? '—' : `${(((r.agentCallsPerSecond - baseline) / baseline) * 100).toFixed(1)} %`;
  process.stdout.write(`| ${r.phase} | ${r.agentCallsPerSecond} | ${ratio} | ${r.agentP50Ms} / ${r.agentP99Ms} | ${r.agentErrors} | ${r.floodRequestsPerSecond} | ${r.gatewayCpuPercent} | ${(r.logGrowthBytes / (1024 * 1024)).toFixed(2)} MB in ${(r.windowMs / 1000).toFixed(1)} s | ${r.logMBPerMinute} |\n`);
}
process.stdout.write(`\nagents' calls/s, median of ${rounds}: ${baseline} alone, ${flooded} under the flood (${baseline === 0 ? '—' : (((flooded - baseline) / baseline) * 100).toFixed(1)} %)\n`);
writeFileSync(values.out, `${JSON.stringify({ machine: machineInfo(), durationS, rounds, flooderNice, overBudgetDelay, concurrency, connections, results }, null, 2)}\n`);
