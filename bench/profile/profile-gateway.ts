/**
 * Profiles the gateway under load: the bench launcher with `--cpu-prof`, the fast upstream, one load
 * phase, then the profile summarised (cpuprofile-summary.ts) into a Markdown file beside it.
 *
 *   node --conditions=attest-source bench/profile/profile-gateway.ts [--scenario gateway-file]
 *        [--concurrency 64] [--payload 100B] [--duration 10] [--out bench/results/profile-….md]
 *
 * The profile covers the measured phase only (V8's CPU profiler, started and stopped through the
 * launcher's stdin); `--whole-process` uses `node --cpu-prof` instead, start-up included. The
 * sampling profiler costs some throughput; the table's figures come from unprofiled runs (run.ts).
 */
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from '../load/load-generator.ts';
import { scenarioNamed } from '../scenarios.ts';
import { SOURCE_CONDITION, spawnListening } from '../support/child.ts';
import { BENCH_API_KEY, gatewayConfig, REPO_ROOT, startGatewayProcess } from '../support/gateway-process.ts';
import { processCpuMs } from '../support/proc-stats.ts';
import { formatBytes, parsePayload } from '../table.ts';
import { renderSummary, summarise } from './cpuprofile-summary.ts';
import type { CpuProfile } from './cpuprofile-summary.ts';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'gateway-file' },
    concurrency: { type: 'string', default: '64' },
    payload: { type: 'string', default: '100B' },
    duration: { type: 'string', default: '10' },
    top: { type: 'string', default: '30' },
    out: { type: 'string' },
    'whole-process': { type: 'boolean', default: false },
  },
});
const scenario = scenarioNamed(values.scenario);
if (scenario.target !== 'gateway' || scenario.log === undefined) throw new Error('profile a gateway scenario');
const concurrency = Number(values.concurrency);
const payloadBytes = parsePayload(values.payload);
const durationMs = Number(values.duration) * 1000;
const label = `${scenario.name}-c${concurrency}-${formatBytes(payloadBytes).replace(' ', '')}`;
const wholeProcess = values['whole-process'];
const out = resolve(values.out ?? join(REPO_ROOT, 'bench', 'results', `profile-${label}.md`));

const workDir = mkdtempSync(join(tmpdir(), 'attest-bench-profile-'));
const upstream = await spawnListening([SOURCE_CONDITION], join(REPO_ROOT, 'bench', 'upstream', 'fast-server.ts'), [], { cwd: REPO_ROOT });
try {
  const gateway = await startGatewayProcess({
    launcher: 'bench',
    config: gatewayConfig(scenario.log(join(workDir, 'log')), { fast: upstream.url }),
    workDir,
    recording: scenario.recording ?? 'on',
    nodeArgs: wholeProcess ? ['--cpu-prof', `--cpu-prof-dir=${workDir}`] : [],
  });
  const windowProfile = join(workDir, 'window.cpuprofile');
  let cpuBefore = 0;
  let cpuAfter = 0;
  const load = await runLoad(
    {
      url: gateway.mcpUrl,
      headers: { authorization: `Bearer ${BENCH_API_KEY}` },
      tool: 'fast__echo',
      payloadBytes,
      sessions: Math.min(16, concurrency),
      concurrency,
      warmup: { maxMs: 1_500, maxCalls: 100_000 },
      measure: { maxMs: durationMs, maxCalls: 1_000_000 },
      callTimeoutMs: 120_000,
    },
    {
      beforeMeasure: async () => {
        if (!wholeProcess) await gateway.child.ask('profile start', /^PROFILING$/, 10_000);
        cpuBefore = processCpuMs(gateway.pid);
      },
      afterMeasure: async () => {
        cpuAfter = processCpuMs(gateway.pid);
        if (!wholeProcess) await gateway.child.ask(`profile stop ${windowProfile}`, /^PROFILED /, 60_000);
      },
    },
  );
  await gateway.stop();
  const file = wholeProcess ? readdirSync(workDir).find((name) => name.endsWith('.cpuprofile')) : 'window.cpuprofile';
  if (file === undefined) throw new Error(`the gateway wrote no .cpuprofile into ${workDir}`);
  const profile = JSON.parse(readFileSync(join(workDir, file), 'utf8')) as CpuProfile;
  const heading = [
    `# CPU profile: ${scenario.title}, concurrency ${concurrency}, ${formatBytes(payloadBytes)} payloads`,
    '',
    `${new Date().toISOString()} — ${load.calls} calls in ${(load.elapsedMs / 1000).toFixed(1)} s under the profiler: ${Math.round(load.callsPerSecond)} calls/s, p50 ${load.latency.p50Ms.toFixed(2)} ms, p99 ${load.latency.p99Ms.toFixed(2)} ms, ${load.errors} errors; gateway process CPU ${((cpuAfter - cpuBefore) / load.calls).toFixed(3)} ms per call (all threads). ${wholeProcess ? 'The profile covers the whole process life (start-up and warm-up included)' : 'The profile covers the measured phase only'}, main JS thread only.`,
    '',
  ].join('\n');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${heading}\n${renderSummary(summarise(profile), Number(values.top))}\n`);
  copyFileSync(join(workDir, file), out.replace(/\.md$/, '.cpuprofile'));
  process.stdout.write(`${heading}\nsummary: ${out}\nprofile: ${out.replace(/\.md$/, '.cpuprofile')}\n`);
} finally {
  await upstream.child.stop();
  rmSync(workDir, { recursive: true, force: true });
}
