/**
 * Memory soak (issue 5): one gateway (durable file log) in its own process under a steady, paced
 * load for `--minutes`, its memory sampled every `--sample` seconds, then a verdict on whether the
 * live heap grows.
 *
 *   node --conditions=attest-source bench/soak.ts [--minutes 10] [--rate 300] [--concurrency 16]
 *        [--payload 100B] [--churn-every 30] [--churn-fraction 0.25] [--sample 10] [--warmup 2]
 *        [--out bench/results/soak.json]
 *
 * Load: `concurrency` loops, loop i on session i (one session per loop), open loop paced to `rate`
 * calls/s in total (a loop that falls behind sends at once; the lag is reported). Every
 * `churn-every` seconds the next `churn-fraction` of the loops, in turn, end their session (HTTP
 * DELETE) between two calls and open a new one (initialize + notifications/initialized), so the
 * gateway keeps creating and releasing sessions and their upstream sessions.
 *
 * Samples: the gateway runs with --expose-gc; `stats gc` on its stdin (bench/gateway/serve.ts)
 * answers process.memoryUsage() as it is and again right after a forced full GC (the live heap),
 * plus VmRSS from /proc and the open-session count from /healthz.
 *
 * Verdict: least-squares slope of the post-GC heapUsed over the samples after `--warmup` minutes, in
 * MB/min, with its 95 % confidence interval (t distribution). "Flat within noise" when either the
 * interval contains 0, or the growth it implies over the window (slope × window) is smaller than
 * twice the residual standard deviation of the samples (the drift is smaller than the scatter)
 * and below 1 MB; otherwise the heap grows and the figure says how fast.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LatencyHistogram } from './load/histogram.ts';
import { closeSession, exchange, loopbackAgent, messagesOf, openSession } from './load/mcp-http.ts';
import type { JsonObject, McpSession } from './load/mcp-http.ts';
import { makePayload } from './load/load-generator.ts';
import { SOURCE_CONDITION, spawnListening, stopAllChildren } from './support/child.ts';
import { BENCH_API_KEY, gatewayConfig, REPO_ROOT, startGatewayProcess } from './support/gateway-process.ts';
import type { GatewayProcess } from './support/gateway-process.ts';
import { machineCpuMs, processCpuMs, processMemory } from './support/proc-stats.ts';
import { parsePayload } from './table.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '16' },
    payload: { type: 'string', default: '100B' },
    'churn-every': { type: 'string', default: '30' },
    'churn-fraction': { type: 'string', default: '0.25' },
    sample: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'soak.json') },
  },
});

const positive = (text: string, what: string): number => {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${what} must be a positive number, got "${text}"`);
  return n;
};
const minutes = positive(values.minutes, 'minutes');
if (minutes > 120) throw new Error('--minutes is bounded at 120');
const rate = positive(values.rate, 'rate');
const concurrency = Math.round(positive(values.concurrency, 'concurrency'));
const payloadBytes = parsePayload(values.payload);
const churnEveryMs = positive(values['churn-every'], 'churn-every') * 1000;
const churnFraction = Math.min(1, positive(values['churn-fraction'], 'churn-fraction'));
const sampleMs = positive(values.sample, 'sample') * 1000;
const warmupMinutes = Number(values.warmup);
if (!(warmupMinutes >= 0 && warmupMinutes < minutes)) throw new Error('--warmup must be ≥ 0 and shorter than --minutes');
const durationMs = minutes * 60_000;
const CALL_TIMEOUT_MS = 30_000;
const MB = 1024 * 1024;

interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssMB: number;
  readonly heapUsedMB: number;
  readonly heapTotalMB: number;
  readonly heapUsedAfterGcMB: number;
  readonly externalAfterGcMB: number;
  readonly arrayBuffersAfterGcMB: number;
  readonly rssAfterGcMB: number;
  readonly sessions: number;
  readonly logEvents: number;
  /** Over the interval since the previous sample. */
  readonly calls: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly gatewayCpuPercent: number;
  readonly otherCpuPercent: number;
}

interface MemoryUsage {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

/** Least squares y = a + b·x with the slope's 95 % confidence half-width and the residual SD. */
export function regression(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number; ci95: number; residualSd: number } {
  const n = xs.length;
  if (n < 3) throw new Error('a regression needs at least 3 samples');
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += ((xs[i] as number) - mx) ** 2;
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += ((ys[i] as number) - intercept - slope * (xs[i] as number)) ** 2;
  const residualSd = Math.sqrt(sse / (n - 2));
  const slopeSe = residualSd / Math.sqrt(sxx);
  return { slope, intercept, ci95: tQuantile975(n - 2) * slopeSe, residualSd };
}

/** Two-sided 95 % Student t quantile (table up to 30 degrees of freedom, then the normal 1.96 plus a small correction). */
function tQuantile975(df: number): number {
  const table = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
  return df <= 30 ? (table[df - 1] as number) : 1.96 + 2.4 / df;
}

const workDir = mkdtempSync(join(tmpdir(), 'attest-soak-'));
let gateway: GatewayProcess | undefined;
const cleanUp = async (): Promise<void> => {
  await stopAllChildren();
  rmSync(workDir, { recursive: true, force: true });
};
const interrupted = (): void => {
  void cleanUp().then(() => process.exit(130));
};
process.once('SIGINT', interrupted);
process.once('SIGTERM', interrupted);

const upstream = await spawnListening([SOURCE_CONDITION], join(REPO_ROOT, 'bench', 'upstream', 'fast-server.ts'), [], { cwd: REPO_ROOT });
try {
  gateway = await startGatewayProcess({
    launcher: 'bench',
    config: gatewayConfig({ backend: 'file', dir: join(workDir, 'log'), fsync: true }, { fast: upstream.url }),
    workDir,
    nodeArgs: ['--expose-gc'],
  });
  const gw = gateway;
  const url = new URL(gw.mcpUrl);
  const agent = loopbackAgent(concurrency + 4);
  const headers = { authorization: `Bearer ${BENCH_API_KEY}` };
  const head = Buffer.from(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"fast__echo","arguments":{"payload":${JSON.stringify(makePayload(payloadBytes))}}},"id":`, 'utf8');

  const sessions: McpSession[] = [];
  for (let i = 0; i < concurrency; i++) sessions.push(await openSession(agent, url, headers, CALL_TIMEOUT_MS, 'attest-soak'));
  const nextId = sessions.map(() => 1);
  /** Loops asked to replace their session before their next call. */
  const churnPending = new Set<number>();
  let sessionsOpened = sessions.length;
  let sessionsClosed = 0;
  let churnErrors = 0;

  let histogram = new LatencyHistogram();
  const sendLag = new LatencyHistogram();
  let intervalCalls = 0;
  let intervalErrors = 0;
  let totalCalls = 0;
  let totalErrors = 0;
  const errorSamples = new Set<string>();

  const callOnce = async (loop: number): Promise<void> => {
    const session = sessions[loop] as McpSession;
    const id = nextId[loop] as number;
    nextId[loop] = id + 1;
    const started = performance.now();
    const reply = await exchange(agent, url, 'POST', session.headers, [head, `${id}}`], CALL_TIMEOUT_MS);
    if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
    const response = messagesOf(reply).find((m) => m['id'] === id);
    const result = response?.['result'] as JsonObject | undefined;
    const content = result?.['content'];
    const text = Array.isArray(content) ? (content[0] as JsonObject | undefined)?.['text'] : undefined;
    if (result?.['isError'] === true || typeof text !== 'string' || text.length !== payloadBytes) throw new Error(`unexpected answer: ${JSON.stringify(response).slice(0, 200)}`);
    histogram.record((performance.now() - started) * 1e6);
  };

  const replaceSession = async (loop: number): Promise<void> => {
    try {
      const ended = await closeSession(agent, url, sessions[loop] as McpSession, CALL_TIMEOUT_MS);
      if (ended.status !== 200 && ended.status !== 204) throw new Error(`DELETE: HTTP ${ended.status} ${ended.body.slice(0, 200)}`);
      sessionsClosed++;
      sessions[loop] = await openSession(agent, url, headers, CALL_TIMEOUT_MS, 'attest-soak');
      nextId[loop] = 1;
      sessionsOpened++;
    } catch (error) {
      churnErrors++;
      if (errorSamples.size < 5) errorSamples.add(`churn: ${(error as Error).message.slice(0, 200)}`);
    }
  };

  const startedAt = performance.now();
  const deadline = startedAt + durationMs;
  const intervalMs = (concurrency * 1000) / rate;
  const loop = async (index: number): Promise<void> => {
    let next = startedAt + (intervalMs * index) / concurrency;
    while (performance.now() < deadline) {
      if (churnPending.delete(index)) await replaceSession(index);
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (performance.now() >= deadline) return;
      sendLag.record((performance.now() - next) * 1e6);
      next += intervalMs;
      try {
        await callOnce(index);
        intervalCalls++;
        totalCalls++;
      } catch (error) {
        intervalErrors++;
        totalErrors++;
        if (errorSamples.size < 5) errorSamples.add((error as Error).message.slice(0, 200));
      }
    }
  };

  const perChurn = Math.max(1, Math.round(concurrency * churnFraction));
  let churnCursor = 0;
  const churnTimer = setInterval(() => {
    for (let i = 0; i < perChurn; i++) churnPending.add((churnCursor + i) % concurrency);
    churnCursor = (churnCursor + perChurn) % concurrency;
  }, churnEveryMs);

  const samples: Sample[] = [];
  let previous = { at: performance.now(), gwCpuMs: processCpuMs(gw.pid), machine: machineCpuMs(), upstreamCpuMs: processCpuMs(upstream.child.pid), clientCpu: process.cpuUsage() };
  const takeSample = async (): Promise<void> => {
    const reply = await gw.child.ask('stats gc', /^STATS (.+)$/, 30_000);
    const stats = JSON.parse(reply[1] as string) as { size: number; memory: MemoryUsage; memoryAfterGc?: MemoryUsage };
    if (stats.memoryAfterGc === undefined) throw new Error('the gateway did not run a forced GC (is --expose-gc passed?)');
    const health = (await (await fetch(`${gw.baseUrl}/healthz`, { signal: AbortSignal.timeout(10_000) })).json()) as { sessions: number };
    const now = { at: performance.now(), gwCpuMs: processCpuMs(gw.pid), machine: machineCpuMs(), upstreamCpuMs: processCpuMs(upstream.child.pid), clientCpu: process.cpuUsage() };
    const elapsed = now.at - previous.at;
    const gwCpu = now.gwCpuMs - previous.gwCpuMs;
    const clientCpu = (now.clientCpu.user + now.clientCpu.system - previous.clientCpu.user - previous.clientCpu.system) / 1000;
    const other = now.machine.processMs - previous.machine.processMs - gwCpu - (now.upstreamCpuMs - previous.upstreamCpuMs) - clientCpu;
    const summary = histogram.summary();
    const sample: Sample = {
      t: Math.round((now.at - startedAt) / 100) / 10,
      rssMB: processMemory(gw.pid).rssBytes / MB,
      heapUsedMB: stats.memory.heapUsed / MB,
      heapTotalMB: stats.memory.heapTotal / MB,
      heapUsedAfterGcMB: stats.memoryAfterGc.heapUsed / MB,
      externalAfterGcMB: stats.memoryAfterGc.external / MB,
      arrayBuffersAfterGcMB: stats.memoryAfterGc.arrayBuffers / MB,
      rssAfterGcMB: stats.memoryAfterGc.rss / MB,
      sessions: health.sessions,
      logEvents: stats.size,
      calls: intervalCalls,
      errors: intervalErrors,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      gatewayCpuPercent: (gwCpu / elapsed) * 100,
      otherCpuPercent: Math.max(0, (other / elapsed) * 100),
    };
    samples.push(sample);
    previous = now;
    intervalCalls = 0;
    intervalErrors = 0;
    histogram = new LatencyHistogram();
    const f = (x: number): string => x.toFixed(1);
    process.stderr.write(
      `t=${f(sample.t)}s rss ${f(sample.rssMB)} MB heapUsed ${f(sample.heapUsedMB)} → ${f(sample.heapUsedAfterGcMB)} MB after GC (external ${f(sample.externalAfterGcMB)}), sessions ${sample.sessions}, events ${sample.logEvents}, ${Math.round((sample.calls * 1000) / elapsed)} calls/s, p50 ${sample.p50Ms.toFixed(2)} p99 ${sample.p99Ms.toFixed(2)} ms, errors ${sample.errors}, gw CPU ${Math.round(sample.gatewayCpuPercent)} %, other ${Math.round(sample.otherCpuPercent)} %\n`,
    );
  };

  let sampling = Promise.resolve();
  const sampleTimer = setInterval(() => {
    sampling = sampling.then(takeSample).catch((error: unknown) => {
      process.stderr.write(`sample failed: ${(error as Error).message}\n`);
    });
  }, sampleMs);

  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  clearInterval(churnTimer);
  clearInterval(sampleTimer);
  await sampling;
  await Promise.allSettled(sessions.map((session) => closeSession(agent, url, session, 5_000)));
  agent.destroy();

  // The verdict, on the samples after the warm-up.
  const kept = samples.filter((s) => s.t >= warmupMinutes * 60);
  const xs = kept.map((s) => s.t / 60);
  const fit = (key: keyof Sample): ReturnType<typeof regression> => regression(xs, kept.map((s) => s[key]));
  const heap = fit('heapUsedAfterGcMB');
  const rss = fit('rssMB');
  const external = fit('externalAfterGcMB');
  const windowMin = (xs[xs.length - 1] as number) - (xs[0] as number);
  const drift = Math.abs(heap.slope) * windowMin;
  const ciContainsZero = Math.abs(heap.slope) <= heap.ci95;
  const driftBelowScatter = drift < 2 * heap.residualSd && drift < 1;
  const flat = ciContainsZero || driftBelowScatter;
  const verdict = {
    samplesUsed: kept.length,
    windowMinutes: windowMin,
    heapUsedAfterGc: { slopeMBPerMin: heap.slope, ci95MBPerMin: heap.ci95, residualSdMB: heap.residualSd, driftOverWindowMB: heap.slope * windowMin },
    rss: { slopeMBPerMin: rss.slope, ci95MBPerMin: rss.ci95, residualSdMB: rss.residualSd },
    externalAfterGc: { slopeMBPerMin: external.slope, ci95MBPerMin: external.ci95 },
    ciContainsZero,
    driftBelowScatter,
    flat,
  };
  const totals = {
    calls: totalCalls,
    errors: totalErrors,
    callsPerSecond: (totalCalls * 1000) / durationMs,
    sendLag: sendLag.summary(),
    sessionsOpened,
    sessionsClosed,
    churnErrors,
    errorSamples: [...errorSamples],
    gatewayPeakRssMB: gw.peakRssBytes() / MB,
  };
  const report = { startedAt: new Date(Date.now() - durationMs).toISOString(), options: { minutes, rate, concurrency, payloadBytes, churnEveryMs, churnFraction, sampleMs, warmupMinutes }, totals, verdict, samples };
  const out = resolve(values.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `${JSON.stringify({ totals, verdict }, null, 2)}\n` +
      `heapUsed after GC: ${heap.slope.toFixed(3)} ± ${heap.ci95.toFixed(3)} MB/min over ${windowMin.toFixed(1)} min (residual SD ${heap.residualSd.toFixed(2)} MB): ${flat ? 'flat within noise' : 'GROWS'}\nfull results: ${out}\n`,
  );
} finally {
  await cleanUp();
}
