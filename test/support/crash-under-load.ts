/**
 * The write-ahead promise under the worst crash, for any log backend: `kill -9` of a gateway
 * process while agents call tools concurrently, then a restart on the same log under the same
 * instance name. With `replicas: 2` (Kafka, KurrentDB: the Helm chart's shape) two gateway
 * processes with different `gateway.instance` share the one log, each fronting its own fixture
 * upstream, the agents split across them; the first is killed and restarted while the other keeps
 * serving. Checks:
 *   - `attest verify` passes on the whole log (no chain forked by two writers);
 *   - every call an agent got a result for has its ResultReturned in the log;
 *   - every call an upstream received (its journal, written before it handles a request) has a
 *     durable RequestReceived and an allow DecisionMade before its outcome in log order, in a
 *     session owned by the gateway that upstream belongs to;
 *   - every call forwarded without a recorded outcome got an OutcomeUnknown from the reconciler,
 *     and only in the killed instance's sessions: the live replica's sessions got none, and its
 *     agents had no call refused;
 *   - the restarted gateway serves again, among the other replica's records;
 *   - no upstream process outlived its gateway.
 * Bounded: 8 agents, at most 400 calls each before the crash within 20 s; the live replica's
 * agents at most 2,000 calls each within 90 s; 2 × 20 calls after the restart.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { hashApiKey } from '#gateway';
import type { AttestEvent } from '#schemas';
import { openEventLogReader } from '#eventlog';
import { parseConfig } from '#schemas';
import { FIXTURE_SERVER } from './gateway.ts';
import { rawInitialize, rawPost } from './raw-mcp.ts';

const CLI = path.join(import.meta.dirname, '..', '..', 'cli', 'attest.ts');
const KEY = 'atk_crash_test_key_0123456789';
const AGENTS = 8;

function startCli(args: string[]): { child: ChildProcess; url: Promise<string> } {
  const child = spawn(process.execPath, ['--conditions=attest-source', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ATTEST_LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within 30 s; stderr: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  return { child, url };
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=attest-source', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Pids of live processes whose environment carries `marker` (the fixture's journal path). */
async function processesWith(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${entry}/environ`, 'latin1');
      const stat = await readFile(`/proc/${entry}/stat`, 'latin1');
      if (environ.includes(marker) && !/\) Z /.test(stat)) pids.push(Number(entry));
    } catch {
      // gone already, or not ours to read
    }
  }
  return pids;
}

/** The upstream saw stdin close with its parent: it must be gone within a few seconds. */
async function assertNoOrphans(journal: string, what: string): Promise<void> {
  let orphans = await processesWith(journal);
  for (let i = 0; i < 50 && orphans.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    orphans = await processesWith(journal);
  }
  assert.deepEqual(orphans, [], `no upstream process outlives ${what}`);
}

/** What one gateway process (one instance) did under load. */
interface Replica {
  readonly instance: string;
  readonly configFile: string;
  readonly journal: string;
  gateway: ReturnType<typeof startCli>;
  url: string;
  answered: number;
  failed: number;
}

/** Closed-loop agent: one session, `fixture__echo` calls until told to stop; the texts it got results for go to `answered`. */
async function agent(replica: Replica, name: string, limits: { readonly calls: number; readonly until: number; readonly stop: () => boolean }, answered: Set<string>): Promise<void> {
  const headers = { authorization: `Bearer ${KEY}` };
  let session: Awaited<ReturnType<typeof rawInitialize>>;
  try {
    session = await rawInitialize(replica.url, headers);
  } catch {
    replica.failed++;
    return;
  }
  const h = { ...headers, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': String(session.result['protocolVersion']) };
  for (let n = 0; n < limits.calls && !limits.stop() && Date.now() < limits.until; n++) {
    const text = `${name}-c${n}`;
    try {
      const r = await rawPost(replica.url, { jsonrpc: '2.0', id: n + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text } } }, h);
      if (r.messages.some((m) => m['result'] !== undefined)) {
        replica.answered++;
        answered.add(text);
      } else replica.failed++;
    } catch {
      replica.failed++; // the gateway died mid-request
      return;
    }
  }
}

export interface CrashOptions {
  /** Gateway processes on the one log, each its own instance; the first is killed. Default 1 (the file log allows no more). */
  readonly replicas?: number;
}

export interface CrashOutcome {
  readonly answeredBeforeCrash: number;
  readonly receivedByUpstream: number;
  readonly outcomeUnknown: number;
  readonly eventsVerified: string;
  /** Per instance: calls answered in all, and calls its upstream received. */
  readonly replicas: readonly { readonly instance: string; readonly answered: number; readonly received: number }[];
  /** Times consecutive events in log order belong to different instances' streams. */
  readonly writerSwitches: number;
}

/** Runs the crash scenario against `log` (a config `log` section; a relative file dir resolves in a temp dir). */
export async function crashUnderLoad(log: Record<string, unknown>, options: CrashOptions = {}): Promise<CrashOutcome> {
  const count = options.replicas ?? 1;
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-crash-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const replicas: Replica[] = [];
    for (let i = 0; i < count; i++) {
      const instance = `crash-${i}`;
      const journal = path.join(dir, `journal-${instance}.ndjson`);
      const configFile = path.join(dir, `${instance}.json`);
      await writeFile(configFile, JSON.stringify({
        gateway: { port: 0, instance },
        log,
        auth: { keys: [{ id: 'crash', hash: hashApiKey(KEY), tenant: 't1' }] },
        upstreams: { fixture: { transport: 'stdio', command: process.execPath, args: [FIXTURE_SERVER, '--stdio'], env: { FIXTURE_JOURNAL: journal } } },
      }));
      const gateway = startCli(['gateway', '--config', configFile, '--port', '0']);
      cleanup.push(async () => void gateway.child.kill('SIGKILL'));
      replicas.push({ instance, configFile, journal, gateway, url: '', answered: 0, failed: 0 });
    }
    for (const replica of replicas) replica.url = `${await replica.gateway.url}/mcp`;
    const [victim, ...live] = replicas as [Replica, ...Replica[]];

    const answered = new Set<string>();
    const loadUntil = Date.now() + 20_000;
    let liveStop = false;
    const liveLimits = { calls: 2_000, until: Date.now() + 90_000, stop: () => liveStop };
    const victimAgents: Promise<void>[] = [];
    const liveAgents: Promise<void>[] = [];
    for (let a = 0; a < AGENTS; a++) {
      const replica = replicas[a % count] as Replica;
      if (replica === victim) victimAgents.push(agent(replica, `a${a}`, { calls: 400, until: loadUntil, stop: () => false }, answered));
      else liveAgents.push(agent(replica, `a${a}`, liveLimits, answered));
    }
    const total = (): number => replicas.reduce((sum, r) => sum + r.answered, 0);
    while ((total() < 150 || replicas.some((r) => r.answered < 150 / (2 * count))) && Date.now() < loadUntil) await new Promise((r) => setTimeout(r, 20));
    const answeredBeforeCrash = total();
    assert.ok(answeredBeforeCrash >= 150, `load ran: ${answeredBeforeCrash} calls answered before the crash (${replicas.map((r) => `${r.instance}: ${r.answered} answered, ${r.failed} failed`).join('; ')})`);
    victim.gateway.child.kill('SIGKILL');
    await exited(victim.gateway.child);
    await Promise.all(victimAgents);
    await assertNoOrphans(victim.journal, 'a kill -9 of its gateway');

    // Restarted under the same name while the other replicas keep serving; then it must serve too.
    victim.gateway = startCli(['gateway', '--config', victim.configFile, '--port', '0']);
    const restarted = victim.gateway;
    cleanup.push(async () => void restarted.child.kill('SIGKILL'));
    victim.url = `${await restarted.url}/mcp`;
    const failedBeforeRestart = victim.failed;
    await Promise.all(Array.from({ length: 2 }, (_, i) => agent(victim, `r${i}`, { calls: 20, until: Date.now() + 30_000, stop: () => false }, answered)));
    assert.equal(victim.failed, failedBeforeRestart, 'the restarted gateway answers every call');
    liveStop = true;
    await Promise.all(liveAgents);
    for (const replica of live) assert.equal(replica.failed, 0, `${replica.instance}, never killed, answered every call of its agents (${replica.answered}) while ${victim.instance} crashed and restarted`);

    for (const replica of replicas) {
      replica.gateway.child.kill('SIGTERM');
      assert.equal(await exited(replica.gateway.child), 0, `${replica.instance} shuts down cleanly`);
      await assertNoOrphans(replica.journal, `${replica.instance}'s shutdown`);
    }

    const verify = await runCli(['verify', '--config', victim.configFile]);
    assert.equal(verify.code, 0, `attest verify: ${verify.stdout}${verify.stderr}`);
    assert.match(verify.stdout, /^ok: \d+ events/);

    const events: AttestEvent[] = [];
    const reader = await openEventLogReader(parseConfig({ log, upstreams: { x: { transport: 'stdio', command: 'node' } } }, { baseDir: dir }).config.log);
    for await (const { event } of reader.read()) events.push(event);
    await reader.close();
    const owner = new Map<string, string>(); // stream → instance
    for (const replica of replicas) owner.set(`system-${replica.instance}`, replica.instance);
    const requests = new Map<string, { callId: string; stream: string; at: number }>(); // call text → its RequestReceived
    const allowedAt = new Map<string, number>();
    const outcomeAt = new Map<string, number>();
    const resulted = new Set<string>();
    const unknownBy = new Map<string, number>(); // instance → OutcomeUnknown recorded in its sessions
    let writerSwitches = 0;
    let previousOwner: string | undefined;
    events.forEach((e, at) => {
      if (e.type === 'SessionOpened' && e.data.instance !== undefined) owner.set(e.stream, e.data.instance);
      const by = owner.get(e.stream);
      if (by !== undefined && previousOwner !== undefined && by !== previousOwner) writerSwitches++;
      previousOwner = by ?? previousOwner;
      if (e.callId === undefined) return;
      if (e.type === 'RequestReceived' && e.data.method === 'tools/call') {
        const text = (e.data.params.body as { arguments?: { text?: string } } | undefined)?.arguments?.text;
        if (text !== undefined) requests.set(text, { callId: e.callId, stream: e.stream, at });
      }
      if (e.type === 'DecisionMade' && e.data.decision === 'allow') allowedAt.set(e.callId, at);
      if (e.type === 'ResultReturned') resulted.add(e.callId);
      if ((e.type === 'ResultReturned' || e.type === 'ErrorReturned' || e.type === 'OutcomeUnknown') && !outcomeAt.has(e.callId)) outcomeAt.set(e.callId, at);
      if (e.type === 'OutcomeUnknown') unknownBy.set(by ?? '(no owner)', (unknownBy.get(by ?? '(no owner)') ?? 0) + 1);
    });

    for (const text of answered) {
      const callId = requests.get(text)?.callId;
      assert.ok(callId !== undefined && resulted.has(callId), `call ${text} was answered but its result is not in the log`);
    }
    const perReplica: { instance: string; answered: number; received: number }[] = [];
    for (const replica of replicas) {
      const received = (await readFile(replica.journal, 'utf8'))
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as { method: string; tool?: string; arguments?: { text?: string } })
        .filter((entry) => entry.method === 'tools/call' && entry.tool === 'echo');
      for (const entry of received) {
        const text = entry.arguments?.text ?? '';
        const request = requests.get(text);
        assert.ok(request !== undefined, `call ${text} reached ${replica.instance}'s upstream without a durable RequestReceived`);
        assert.equal(owner.get(request.stream), replica.instance, `call ${text} is recorded in a session of ${replica.instance}, whose upstream received it`);
        const allowed = allowedAt.get(request.callId);
        assert.ok(allowed !== undefined && allowed > request.at, `call ${text} reached the upstream without a durable allow decision after its request`);
        const outcome = outcomeAt.get(request.callId);
        assert.ok(outcome !== undefined, `call ${text} has neither a result nor an OutcomeUnknown`);
        assert.ok(outcome > allowed, `call ${text}: its request and decision come before its outcome in log order`);
      }
      perReplica.push({ instance: replica.instance, answered: replica.answered, received: received.length });
    }
    const receivedByUpstream = perReplica.reduce((sum, r) => sum + r.received, 0);
    assert.ok(receivedByUpstream >= 150, `the upstreams received ${receivedByUpstream} calls`);
    for (const [instance, n] of unknownBy) assert.equal(instance, victim.instance, `${n} OutcomeUnknown recorded in sessions of ${instance}, which was never killed`);
    return { answeredBeforeCrash, receivedByUpstream, outcomeUnknown: unknownBy.get(victim.instance) ?? 0, eventsVerified: verify.stdout.trim(), replicas: perReplica, writerSwitches };
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  }
}
