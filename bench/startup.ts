/**
 * Gateway start-up time with 10 upstreams (issue 5): ten fast upstreams over Streamable HTTP, then,
 * per repetition, a fresh gateway process on a fresh durable file log, timed from spawn to
 *   listening — the process printed that it serves (config, log opened and reconciled, GatewayStarted
 *               recorded, port bound);
 *   ready     — a first `tools/list` through /mcp answered with all ten upstreams' tools (the
 *               session's initialize connects and initializes every upstream first).
 * Node's own start and module loading are measured apart, as a baseline.
 *
 *   node --conditions=attest-source bench/startup.ts [--repeat 5] [--upstreams 10] [--launcher cli|bench]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { call, closeSession, loopbackAgent, openSession } from './load/mcp-http.ts';
import { SOURCE_CONDITION, spawnListening, stopAllChildren } from './support/child.ts';
import type { Child } from './support/child.ts';
import { BENCH_API_KEY, gatewayConfig, REPO_ROOT, startGatewayProcess } from './support/gateway-process.ts';
import type { Launcher } from './support/gateway-process.ts';
import { machineInfo } from './support/proc-stats.ts';
import { pinoSpans } from './support/pino-lines.ts';
import { median } from './support/stats.ts';

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '5' },
    upstreams: { type: 'string', default: '10' },
    launcher: { type: 'string', default: 'cli' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'startup.json') },
  },
});
const repeat = Number(values.repeat);
const upstreamCount = Number(values.upstreams);
const launcher = values.launcher as Launcher;

/** Node start plus loading every module of the gateway, without doing anything: the floor of any start. */
function moduleLoadMs(): number {
  const started = performance.now();
  execFileSync(process.execPath, [SOURCE_CONDITION, '--input-type=module', '-e', "await import('#gateway'); await import('#eventlog');"], { cwd: REPO_ROOT });
  return performance.now() - started;
}

interface Repetition {
  readonly listeningMs: number;
  readonly readyMs: number;
  readonly initializeMs: number;
  readonly toolsListMs: number;
  readonly tools: number;
  /** From the gateway's own log lines: log opened → listening (reconcile, GatewayStarted, bind). */
  readonly logOpenedToListeningMs: number | undefined;
}

const upstreamChildren: Child[] = [];
const results: Repetition[] = [];
try {
  const started = await Promise.all(Array.from({ length: upstreamCount }, () => spawnListening([SOURCE_CONDITION], join(REPO_ROOT, 'bench', 'upstream', 'fast-server.ts'), [], { cwd: REPO_ROOT })));
  upstreamChildren.push(...started.map((s) => s.child));
  const upstreams = Object.fromEntries(started.map((s, i) => [`up${i}`, s.url]));
  const baselines = [moduleLoadMs(), moduleLoadMs(), moduleLoadMs()];

  for (let i = 0; i < repeat; i++) {
    const workDir = mkdtempSync(join(tmpdir(), 'attest-bench-startup-'));
    const gateway = await startGatewayProcess({ launcher, config: gatewayConfig({ backend: 'file', dir: join(workDir, 'log'), fsync: true }, upstreams), workDir });
    const agent = loopbackAgent(4);
    try {
      const url = new URL(gateway.mcpUrl);
      const t0 = performance.now();
      const session = await openSession(agent, url, { authorization: `Bearer ${BENCH_API_KEY}` }, 60_000);
      const t1 = performance.now();
      const listed = await call(agent, url, session, 1, 'tools/list', {}, 60_000);
      const t2 = performance.now();
      const tools = ((listed['result'] as { tools?: unknown[] } | undefined)?.tools ?? []).length;
      if (tools !== upstreamCount) throw new Error(`tools/list returned ${tools} tools, expected ${upstreamCount}: ${JSON.stringify(listed).slice(0, 300)}`);
      await closeSession(agent, url, session, 10_000);
      await gateway.stop();
      const spans = pinoSpans(readFileSync(join(workDir, 'gateway.stderr.log'), 'utf8'));
      const rep: Repetition = {
        listeningMs: gateway.listeningAfterMs,
        readyMs: t2 - gateway.child.spawnedAt,
        initializeMs: t1 - t0,
        toolsListMs: t2 - t1,
        tools,
        logOpenedToListeningMs: spans.between('event log opened', 'attest gateway listening'),
      };
      results.push(rep);
      process.stderr.write(`run ${i + 1}: listening ${rep.listeningMs.toFixed(0)} ms, first tools/list answered ${rep.readyMs.toFixed(0)} ms after spawn (initialize ${rep.initializeMs.toFixed(1)} ms, tools/list ${rep.toolsListMs.toFixed(1)} ms)\n`);
    } finally {
      agent.destroy();
      await gateway.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  }

  const summary = {
    machine: machineInfo(),
    at: new Date().toISOString(),
    launcher,
    upstreams: upstreamCount,
    nodeAndModuleLoadMs: { runs: baselines, median: median(baselines) },
    repetitions: results,
    median: {
      listeningMs: median(results.map((r) => r.listeningMs)),
      readyMs: median(results.map((r) => r.readyMs)),
      initializeMs: median(results.map((r) => r.initializeMs)),
      toolsListMs: median(results.map((r) => r.toolsListMs)),
    },
  };
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
  const m = summary.median;
  process.stdout.write(
    [
      `gateway start-up with ${upstreamCount} Streamable HTTP upstreams (${launcher} launcher, durable file log, median of ${repeat}):`,
      `  spawn → listening:                 ${m.listeningMs.toFixed(0)} ms   (Node start + module load alone: ${summary.nodeAndModuleLoadMs.median.toFixed(0)} ms)`,
      `  spawn → first tools/list answered: ${m.readyMs.toFixed(0)} ms   (initialize, connecting ${upstreamCount} upstreams: ${m.initializeMs.toFixed(1)} ms; tools/list: ${m.toolsListMs.toFixed(1)} ms)`,
      `full results: ${values.out}`,
      '',
    ].join('\n'),
  );
} finally {
  await Promise.allSettled(upstreamChildren.map((child) => child.stop()));
  await stopAllChildren();
}
