/**
 * The write-ahead promise under the worst crash, for any log backend: `kill -9` of the gateway
 * process while eight agents call tools concurrently, then a restart on the same log. Checks:
 *   - `attest verify` passes on the log,
 *   - every call the upstream received (its journal, written before it handles a request) has a
 *     durable RequestReceived and an allow DecisionMade in the log,
 *   - every call forwarded without a recorded outcome got an OutcomeUnknown from the reconciler,
 *   - no upstream process outlived the gateway.
 * Bounded: at most 8 × 400 calls and 20 s of load.
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


export interface CrashOutcome {
  readonly answeredBeforeCrash: number;
  readonly receivedByUpstream: number;
  readonly outcomeUnknown: number;
  readonly eventsVerified: string;
}

/** Runs the crash scenario against `log` (a config `log` section; a relative file dir resolves in a temp dir). */
export async function crashUnderLoad(log: Record<string, unknown>): Promise<CrashOutcome> {
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-crash-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const journal = path.join(dir, 'journal.ndjson');
    const configFile = path.join(dir, 'attest.json');
    await writeFile(configFile, JSON.stringify({
      gateway: { port: 0 },
      log,
      auth: { keys: [{ id: 'crash', hash: hashApiKey(KEY), tenant: 't1' }] },
      upstreams: { fixture: { transport: 'stdio', command: process.execPath, args: [FIXTURE_SERVER, '--stdio'], env: { FIXTURE_JOURNAL: journal } } },
    }));

    const first = startCli(['gateway', '--config', configFile, '--port', '0']);
    cleanup.push(async () => void first.child.kill('SIGKILL'));
    const url = `${await first.url}/mcp`;
    const headers = { authorization: `Bearer ${KEY}` };

    let ok = 0;
    let failed = 0;
    let stop = false;
    const deadline = Date.now() + 20_000;
    const agents = Array.from({ length: 8 }, async (_, agent) => {
      let session: Awaited<ReturnType<typeof rawInitialize>>;
      try {
        session = await rawInitialize(url, headers);
      } catch {
        failed++;
        return;
      }
      const h = { ...headers, 'mcp-session-id': session.sessionId, 'mcp-protocol-version': String(session.result['protocolVersion']) };
      for (let n = 0; n < 400 && !stop && Date.now() < deadline; n++) {
        try {
          const r = await rawPost(url, { jsonrpc: '2.0', id: n + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `a${agent}-c${n}` } } }, h);
          if (r.messages.some((m) => m['result'] !== undefined)) ok++;
          else failed++;
        } catch {
          failed++; // the gateway died mid-request
          return;
        }
      }
    });
    while (ok < 150 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ok >= 150, `load ran: ${ok} calls answered before the crash (${failed} failed)`);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    stop = true;
    await Promise.all(agents);

    // The upstream saw stdin close with its parent: it must be gone within a few seconds.
    let orphans = await processesWith(journal);
    for (let i = 0; i < 50 && orphans.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      orphans = await processesWith(journal);
    }
    assert.deepEqual(orphans, [], 'no upstream process outlives a kill -9 of the gateway');

    const second = startCli(['gateway', '--config', configFile, '--port', '0']);
    cleanup.push(async () => void second.child.kill('SIGKILL'));
    await second.url;
    second.child.kill('SIGTERM');
    const exitCode = await new Promise((resolve) => second.child.once('exit', resolve));
    assert.equal(exitCode, 0, 'the restarted gateway shuts down cleanly');

    const verify = await runCli(['verify', '--config', configFile]);
    assert.equal(verify.code, 0, `attest verify: ${verify.stdout}${verify.stderr}`);
    assert.match(verify.stdout, /^ok: \d+ events/);

    const events: AttestEvent[] = [];
    const reader = await openEventLogReader(parseConfig({ log, upstreams: { x: { transport: 'stdio', command: 'node' } } }, { baseDir: dir }).config.log);
    for await (const { event } of reader.read()) events.push(event);
    await reader.close();
    const requests = new Map<string, string>(); // call text → callId
    const allowed = new Set<string>();
    const outcomes = new Set<string>();
    let unknown = 0;
    for (const e of events) {
      if (e.type === 'RequestReceived' && e.data.method === 'tools/call' && e.callId !== undefined) {
        const text = (e.data.params.body as { arguments?: { text?: string } } | undefined)?.arguments?.text;
        if (text !== undefined) requests.set(text, e.callId);
      }
      if (e.type === 'DecisionMade' && e.data.decision === 'allow' && e.callId !== undefined) allowed.add(e.callId);
      if ((e.type === 'ResultReturned' || e.type === 'ErrorReturned' || e.type === 'OutcomeUnknown') && e.callId !== undefined) outcomes.add(e.callId);
      if (e.type === 'OutcomeUnknown') unknown++;
    }

    const received = (await readFile(journal, 'utf8'))
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { method: string; tool?: string; arguments?: { text?: string } })
      .filter((entry) => entry.method === 'tools/call' && entry.tool === 'echo');
    assert.ok(received.length >= 150, `the upstream received ${received.length} calls`);
    for (const entry of received) {
      const text = entry.arguments?.text ?? '';
      const callId = requests.get(text);
      assert.ok(callId !== undefined, `call ${text} reached the upstream without a durable RequestReceived`);
      assert.ok(allowed.has(callId), `call ${text} reached the upstream without a durable allow decision`);
      assert.ok(outcomes.has(callId), `call ${text} has neither a result nor an OutcomeUnknown`);
    }
    return { answeredBeforeCrash: ok, receivedByUpstream: received.length, outcomeUnknown: unknown, eventsVerified: verify.stdout.trim() };
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  }
}
