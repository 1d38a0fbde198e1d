/**
 * One gateway under test, in a process of its own so its CPU time and peak memory are its own:
 * either the bench launcher (bench/gateway/serve.ts: startGateway plus a stats channel and the
 * recording-off switch) or the CLI exactly as an operator runs it (`attest gateway --config`).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FileLogStats } from '#eventlog';
import { hashApiKey } from '#gateway';
import { SOURCE_CONDITION, spawnNode } from './child.ts';
import type { Child } from './child.ts';
import { processCpuMs, processMemory } from './proc-stats.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
const LAUNCHER = join(REPO_ROOT, 'bench', 'gateway', 'serve.ts');
const CLI = join(REPO_ROOT, 'cli', 'attest.ts');

export type Launcher = 'bench' | 'cli';

/** The API key every benchmark client presents (generated per run; only its hash is in the config). */
export const BENCH_API_KEY = `atk_bench_${randomBytes(24).toString('base64url')}`;

export function gatewayConfig(log: Record<string, unknown>, upstreams: Readonly<Record<string, string>>, sections: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...sections,
    gateway: { instance: 'bench', host: '127.0.0.1', port: 0 },
    log,
    auth: { keys: [{ id: 'bench', hash: hashApiKey(BENCH_API_KEY), tenant: 'bench', agent: 'attest-bench', allowTools: ['*'] }] },
    upstreams: Object.fromEntries(Object.entries(upstreams).map(([name, url]) => [name, { transport: 'streamable-http', url, timeoutMs: 120_000 }])),
  };
}

export interface GatewaySnapshot {
  /** CPU time of the gateway process so far (all threads), ms. */
  readonly cpuMs: number;
  /** Durable events in the log. */
  readonly logEvents: number;
  /** Group-commit counters (bench launcher only). */
  readonly stats: FileLogStats | null;
}

export interface GatewayProcess {
  readonly child: Child;
  readonly pid: number;
  /** The aggregate endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly mcpUrl: string;
  readonly baseUrl: string;
  /** From spawn to the line saying it listens. */
  readonly listeningAfterMs: number;
  snapshot(): Promise<GatewaySnapshot>;
  peakRssBytes(): number;
  stop(): Promise<number | null>;
}

export interface StartGatewayOptions {
  readonly launcher: Launcher;
  readonly config: Record<string, unknown>;
  /** Where config.json and gateway.stderr.log are written. */
  readonly workDir: string;
  readonly recording?: 'on' | 'off';
  /** Node flags before the script (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

const BENCH_READY = /^LISTENING (\S+)$/;
const CLI_READY = /listening on (\S+) \(aggregate endpoint (\S+)\)/;

export async function startGatewayProcess(options: StartGatewayOptions): Promise<GatewayProcess> {
  const configFile = join(options.workDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(options.config, null, 2));
  const nodeArgs = [SOURCE_CONDITION, ...(options.nodeArgs ?? [])];
  const stderrFile = join(options.workDir, 'gateway.stderr.log');
  const child =
    options.launcher === 'bench'
      ? spawnNode(nodeArgs, LAUNCHER, ['--config', configFile, '--recording', options.recording ?? 'on'], { cwd: REPO_ROOT, stderrFile })
      : spawnNode(nodeArgs, CLI, ['gateway', '--config', configFile], { cwd: REPO_ROOT, stderrFile });
  let mcpUrl: string;
  let readyAt: number;
  try {
    const ready = await child.waitForLine(options.launcher === 'bench' ? BENCH_READY : CLI_READY, options.readyTimeoutMs ?? 120_000);
    mcpUrl = (options.launcher === 'bench' ? ready.match[1] : ready.match[2]) as string;
    readyAt = ready.at;
  } catch (error) {
    await child.stop(2_000);
    throw error;
  }
  const baseUrl = mcpUrl.replace(/\/mcp$/, '');
  return {
    child,
    pid: child.pid,
    mcpUrl,
    baseUrl,
    listeningAfterMs: readyAt - child.spawnedAt,
    async snapshot() {
      const cpuMs = processCpuMs(child.pid);
      if (options.launcher === 'bench') {
        const reply = await child.ask('stats', /^STATS (.+)$/, 10_000);
        const parsed = JSON.parse(reply[1] as string) as { size: number; log: FileLogStats | null };
        return { cpuMs, logEvents: parsed.size, stats: parsed.log };
      }
      const health = (await (await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(10_000) })).json()) as { logEvents: number };
      return { cpuMs, logEvents: health.logEvents, stats: null };
    },
    peakRssBytes: () => processMemory(child.pid).peakRssBytes,
    stop: () => child.stop(),
  };
}
