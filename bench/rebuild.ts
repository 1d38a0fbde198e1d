/**
 * Start-up on a large log, and `attest verify` on it (issue 5):
 *   1. writes a file log of `--events` events (default 1M) with openFileLog: sessions of realistic
 *      gateway events (SessionOpened, UpstreamConnected, 100 calls of RequestReceived + DecisionMade
 *      + ResultReturned, SessionClosed), fsync off while generating (the bytes are the same);
 *   2. times the gateway's start on it against a start on an empty log, two ways: folding the whole
 *      log (`state.snapshots: false`: the file adapter's recovery scan of every segment, then one
 *      fold of every event), and resuming from the gateway's snapshot (the first start with
 *      snapshots on folds everything and writes one; the starts after it read only the tail);
 *   3. times `attest verify` (every hash and chain) on it, against `attest --version` (Node start and
 *      module loading), giving events per second.
 *
 *   node --conditions=attest-source bench/rebuild.ts [--events 1000000] [--dir /tmp/attest-bench-log-1m]
 *        [--repeat 3] [--full-repeat N] [--regenerate] [--generate-only] [--skip-verify]
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { digestOf, newEventId, nowIso, SCHEMA_VERSION } from '#schemas';
import type { EventDraft, Principal } from '#schemas';
import { openFileLog } from '#eventlog';
import { SOURCE_CONDITION, spawnListening, stopAllChildren } from './support/child.ts';
import { gatewayConfig, REPO_ROOT, startGatewayProcess } from './support/gateway-process.ts';
import { machineInfo } from './support/proc-stats.ts';
import { pinoSpans } from './support/pino-lines.ts';
import { median } from './support/stats.ts';

const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    dir: { type: 'string', default: join(tmpdir(), 'attest-bench-log-1m') },
    repeat: { type: 'string', default: '3' },
    regenerate: { type: 'boolean', default: false },
    'generate-only': { type: 'boolean', default: false },
    'skip-verify': { type: 'boolean', default: false },
    /** Starts that fold the whole log (each takes ~18 s per million events). */
    'full-repeat': { type: 'string' },
    /** Before each measured start from a snapshot, append this many events the snapshot does not hold (a run cut short before its last snapshot). */
    tail: { type: 'string', default: '0' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'rebuild.json') },
  },
});
const target = Number(values.events);
const repeat = Number(values.repeat);
const fullRepeat = values['full-repeat'] === undefined ? repeat : Number(values['full-repeat']);
const logDir = values.dir;
const markerFile = `${logDir}.bench.json`;

const AGENT: Principal = Object.freeze({ kind: 'apiKey', id: 'bench', tenant: 'bench', agent: 'attest-bench', roles: Object.freeze([]) });
const CALLS_PER_SESSION = 100;
const DRAFTS_PER_APPEND = 600;
const APPENDS_IN_FLIGHT = 4;

/** The drafts of one agent session, as the gateway records them. */
function sessionDrafts(): EventDraft[] {
  const stream = `session-${newEventId()}`;
  const base = { schemaVersion: SCHEMA_VERSION, tenant: 'bench', stream, actor: AGENT } as const;
  const at = nowIso();
  const drafts: EventDraft[] = [
    { ...base, id: newEventId(), occurredAt: at, type: 'SessionOpened', data: { transport: 'streamable-http', endpoint: '/mcp', upstreams: ['fast'], instance: 'bench', remoteAddress: '127.0.0.1' } },
    { ...base, id: newEventId(), occurredAt: at, type: 'UpstreamConnected', data: { upstream: 'fast', transport: 'streamable-http', protocolVersion: '2025-06-18', serverInfo: { name: 'attest-bench-fast', version: '1.0.0' } } },
  ];
  for (let call = 1; call <= CALLS_PER_SESSION; call++) {
    const callId = newEventId();
    const params = { name: 'echo', arguments: { payload: `call ${call} of ${stream}`.padEnd(100, '.') } };
    const result = { content: [{ type: 'text', text: params.arguments.payload }] };
    drafts.push(
      { ...base, id: newEventId(), occurredAt: at, callId, type: 'RequestReceived', data: { from: 'agent', method: 'tools/call', jsonrpcId: call, upstream: 'fast', target: 'echo', params: { recording: 'full', digest: digestOf(params), bytes: JSON.stringify(params).length, body: params } } },
      { ...base, id: newEventId(), occurredAt: at, callId, type: 'DecisionMade', data: { decision: 'allow', stage: 'tool-access', ruleId: 'allow:*', reason: 'key bench may call fast__echo', route: 'forward' } },
      { ...base, id: newEventId(), occurredAt: at, callId, type: 'ResultReturned', data: { from: 'upstream', upstream: 'fast', isError: false, durationMs: 0.8, result: { recording: 'full', digest: digestOf(result), bytes: JSON.stringify(result).length, body: result } } },
    );
  }
  drafts.push({ ...base, id: newEventId(), occurredAt: at, type: 'SessionClosed', data: { reason: 'closed by the agent (DELETE)' } });
  return drafts;
}

const tailEvents = Number(values.tail);

/** Appends `count` events of whole sessions behind the gateway's back (its snapshot does not hold them). */
async function appendTail(count: number): Promise<void> {
  const log = await openFileLog({ dir: logDir, fsync: false });
  try {
    let written = 0;
    while (written < count) {
      const drafts = sessionDrafts().slice(0, count - written);
      for (let i = 0; i < drafts.length; i += DRAFTS_PER_APPEND) await log.append(drafts.slice(i, i + DRAFTS_PER_APPEND));
      written += drafts.length;
    }
  } finally {
    await log.close();
  }
}

async function generate(): Promise<{ events: number; ms: number; bytes: number }> {
  rmSync(logDir, { recursive: true, force: true });
  rmSync(markerFile, { force: true });
  const started = performance.now();
  const log = await openFileLog({ dir: logDir, fsync: false });
  let queued: EventDraft[] = [];
  let written = 0;
  const inFlight = new Set<Promise<unknown>>();
  const flush = async (): Promise<void> => {
    const drafts = queued;
    queued = [];
    const append = log.append(drafts).then(() => {
      written += drafts.length;
    });
    inFlight.add(append);
    void append.finally(() => inFlight.delete(append));
    if (inFlight.size >= APPENDS_IN_FLIGHT) await Promise.race(inFlight);
  };
  let generated = 0;
  while (generated < target) {
    const drafts = sessionDrafts().slice(0, target - generated);
    generated += drafts.length;
    for (const draft of drafts) {
      queued.push(draft);
      if (queued.length >= DRAFTS_PER_APPEND) await flush();
    }
    if (generated % 100_000 < drafts.length) process.stderr.write(`  generated ${generated.toLocaleString('en-US')} events\n`);
  }
  if (queued.length > 0) await flush();
  await Promise.all(inFlight);
  const size = log.size();
  await log.close();
  const ms = performance.now() - started;
  const { stdout } = await run('du', ['-sb', logDir]);
  const bytes = Number(stdout.split('\t')[0]);
  writeFileSync(markerFile, JSON.stringify({ events: size, written, bytes, generatedMs: ms, at: new Date().toISOString() }));
  return { events: size, ms, bytes };
}

/** Drops the page cache so a start reads the log from the disk (needs root; reports whether it worked). */
function dropPageCache(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '1\n');
    return true;
  } catch {
    return false;
  }
}

interface StartRun {
  readonly log: 'empty' | 'large';
  /** full: snapshots off, the whole log folded; snapshot: resumed from the gateway's snapshot (or writing the first one). */
  readonly state: 'full' | 'snapshot';
  /** From the gateway's "gateway state rebuilt from the log" line. */
  readonly resumedFrom: string | undefined;
  readonly readAtStart: number | undefined;
  readonly coldCache: boolean;
  readonly listeningMs: number;
  /** Spawn → the adapter's "event log opened" line: Node start, module load, recovery scan. */
  readonly logOpenedAfterSpawnMs: number | undefined;
  /** "event log opened" → "listening": the reconciler's pass, GatewayStarted, binding the port. */
  readonly logOpenedToListeningMs: number | undefined;
}

async function timeStart(dir: string, upstreamUrl: string, kind: 'empty' | 'large', cold: boolean, state: 'full' | 'snapshot'): Promise<StartRun> {
  const workDir = mkdtempSync(join(tmpdir(), 'attest-bench-rebuild-'));
  try {
    const coldCache = cold && dropPageCache();
    const config = { ...gatewayConfig({ backend: 'file', dir, fsync: true }, { fast: upstreamUrl }), state: { snapshots: state === 'snapshot' } };
    const gateway = await startGatewayProcess({ launcher: 'cli', config, workDir, readyTimeoutMs: 1_800_000 });
    await gateway.stop();
    const spans = pinoSpans(readFileSync(join(workDir, 'gateway.stderr.log'), 'utf8'));
    const opened = spans.line('event log opened');
    const rebuilt = spans.line('gateway state rebuilt from the log');
    const listening = spans.line('attest gateway listening');
    const result: StartRun = {
      log: kind,
      state,
      resumedFrom: typeof rebuilt?.['resumedFrom'] === 'string' ? rebuilt['resumedFrom'] : undefined,
      readAtStart: typeof rebuilt?.['readAtStart'] === 'number' ? rebuilt['readAtStart'] : undefined,
      coldCache,
      listeningMs: gateway.listeningAfterMs,
      logOpenedAfterSpawnMs: opened === undefined ? undefined : (opened['time'] as number) - (performance.timeOrigin + gateway.child.spawnedAt),
      logOpenedToListeningMs: opened !== undefined && listening !== undefined ? (listening['time'] as number) - (opened['time'] as number) : undefined,
    };
    process.stderr.write(`  start on ${kind} log, ${state}${coldCache ? ' (page cache dropped)' : ''}: listening after ${result.listeningMs.toFixed(0)} ms; spawn → log opened ${result.logOpenedAfterSpawnMs?.toFixed(0) ?? '?'} ms, log opened → listening ${result.logOpenedToListeningMs ?? '?'} ms (${typeof opened?.['events'] === 'number' ? opened['events'] : '?'} events; read at start ${result.readAtStart ?? '?'}${result.resumedFrom === undefined ? '' : ', resumed from a snapshot'})\n`);
    return result;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function timeCli(args: readonly string[]): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  const { stdout } = await run(process.execPath, [SOURCE_CONDITION, join(REPO_ROOT, 'cli', 'attest.ts'), ...args], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  return { ms: performance.now() - started, stdout };
}

const upstream = await spawnListening([SOURCE_CONDITION], join(REPO_ROOT, 'bench', 'upstream', 'fast-server.ts'), [], { cwd: REPO_ROOT });
try {
  let generation: { events: number; ms: number; bytes: number } | undefined;
  const marker = existsSync(markerFile) ? (JSON.parse(readFileSync(markerFile, 'utf8')) as { events: number; bytes: number; generatedMs: number }) : undefined;
  if (values.regenerate || marker === undefined || marker.events < target || !existsSync(logDir)) {
    process.stderr.write(`generating a ${target.toLocaleString('en-US')}-event log in ${logDir}\n`);
    generation = await generate();
    process.stderr.write(`  ${generation.events.toLocaleString('en-US')} events, ${(generation.bytes / 1024 / 1024).toFixed(0)} MiB, in ${(generation.ms / 1000).toFixed(1)} s (${Math.round(generation.events / (generation.ms / 1000)).toLocaleString('en-US')} events/s sealed and written, no fsync)\n`);
  } else {
    generation = { events: marker.events, ms: marker.generatedMs, bytes: marker.bytes };
    process.stderr.write(`reusing the ${marker.events.toLocaleString('en-US')}-event log in ${logDir} (--regenerate to write it again)\n`);
  }
  if (values['generate-only']) {
    await upstream.child.stop();
    process.exit(0);
  }

  const emptyDir = mkdtempSync(join(tmpdir(), 'attest-bench-empty-log-'));
  const starts: StartRun[] = [];
  try {
    for (let i = 0; i < repeat; i++) {
      rmSync(emptyDir, { recursive: true, force: true });
      rmSync(`${emptyDir}.state`, { recursive: true, force: true });
      starts.push(await timeStart(emptyDir, upstream.url, 'empty', false, 'snapshot'));
    }
  } finally {
    rmSync(emptyDir, { recursive: true, force: true });
    rmSync(`${emptyDir}.state`, { recursive: true, force: true });
  }
  // Folding the whole log (snapshots off), then with snapshots: the first such start folds it all
  // and writes the snapshot, the ones after it resume.
  rmSync(`${logDir}.state`, { recursive: true, force: true });
  for (let i = 0; i < fullRepeat; i++) starts.push(await timeStart(logDir, upstream.url, 'large', i === 0, 'full'));
  starts.push(await timeStart(logDir, upstream.url, 'large', false, 'snapshot'));
  for (let i = 0; i < repeat; i++) {
    if (tailEvents > 0) await appendTail(tailEvents);
    starts.push(await timeStart(logDir, upstream.url, 'large', i === 0, 'snapshot'));
  }

  const configDir = mkdtempSync(join(tmpdir(), 'attest-bench-verify-'));
  const configFile = join(configDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(gatewayConfig({ backend: 'file', dir: logDir }, { fast: upstream.url })));
  const baseline: number[] = [];
  const verifies: { ms: number; eventsChecked: number; ok: boolean }[] = [];
  try {
    for (let i = 0; i < repeat; i++) baseline.push((await timeCli(['--version'])).ms);
    for (let i = 0; i < (values['skip-verify'] ? 0 : Math.min(repeat, 2)); i++) {
      const { ms, stdout } = await timeCli(['verify', '--config', configFile, '--json']);
      const report = JSON.parse(stdout) as { ok: boolean; eventsChecked: number };
      verifies.push({ ms, eventsChecked: report.eventsChecked, ok: report.ok });
      process.stderr.write(`  attest verify: ${report.ok ? 'ok' : 'FAILED'}, ${report.eventsChecked.toLocaleString('en-US')} events in ${(ms / 1000).toFixed(1)} s\n`);
    }
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }

  const emptyStart = median(starts.filter((s) => s.log === 'empty').map((s) => s.listeningMs));
  const full = starts.filter((s) => s.log === 'large' && s.state === 'full');
  const largeWarm = full.filter((s) => !s.coldCache).map((s) => s.listeningMs);
  const largeCold = full.find((s) => s.coldCache)?.listeningMs;
  const resumed = starts.filter((s) => s.log === 'large' && s.state === 'snapshot' && s.resumedFrom !== undefined);
  const resumedWarm = resumed.filter((s) => !s.coldCache).map((s) => s.listeningMs);
  const resumedCold = resumed.find((s) => s.coldCache)?.listeningMs;
  const baseMs = median(baseline);
  const verifyMs = median(verifies.map((v) => v.ms));
  const events = verifies[0]?.eventsChecked ?? 0;
  const summary = {
    machine: machineInfo(),
    at: new Date().toISOString(),
    log: { dir: logDir, events: generation.events, bytes: generation.bytes, generatedMs: generation.ms },
    starts,
    startOnEmptyLogMs: emptyStart,
    startOnLargeLogWarmMs: largeWarm.length === 0 ? undefined : median(largeWarm),
    startOnLargeLogColdMs: largeCold,
    startFromSnapshotWarmMs: resumedWarm.length === 0 ? undefined : median(resumedWarm),
    startFromSnapshotColdMs: resumedCold,
    rebuildWarmMs: largeWarm.length === 0 ? undefined : median(largeWarm) - emptyStart,
    rebuildColdMs: largeCold === undefined ? undefined : largeCold - emptyStart,
    verify: { runs: verifies, cliBaselineMs: baseMs, medianMs: verifyMs, eventsPerSecondWall: events / (verifyMs / 1000), eventsPerSecondNet: events / ((verifyMs - baseMs) / 1000) },
  };
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(
    [
      `log: ${generation.events.toLocaleString('en-US')} events, ${(generation.bytes / 1024 / 1024).toFixed(0)} MiB`,
      `gateway start (spawn → listening), median: empty log ${emptyStart.toFixed(0)} ms; ${generation.events.toLocaleString('en-US')}-event log folded whole ${summary.startOnLargeLogWarmMs?.toFixed(0) ?? '-'} ms warm${largeCold === undefined ? '' : `, ${largeCold.toFixed(0)} ms with the page cache dropped`}`,
      `  resumed from a snapshot: ${summary.startFromSnapshotWarmMs?.toFixed(0) ?? '-'} ms warm${resumedCold === undefined ? '' : `, ${resumedCold.toFixed(0)} ms with the page cache dropped`}`,
      `attest verify: ${events.toLocaleString('en-US')} events in ${(verifyMs / 1000).toFixed(2)} s → ${Math.round(summary.verify.eventsPerSecondWall).toLocaleString('en-US')} events/s (${Math.round(summary.verify.eventsPerSecondNet).toLocaleString('en-US')} events/s without the ${baseMs.toFixed(0)} ms of Node start and module load)`,
      `full results: ${values.out}`,
      '',
    ].join('\n'),
  );
} finally {
  await upstream.child.stop();
  await stopAllChildren();
}
