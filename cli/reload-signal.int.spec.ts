/**
 * SIGHUP on a real `attest start` process: the config file is re-read; a good one decides the
 * next call of a session already open, a bad one (a changed port) is refused and recorded while
 * the policy in force keeps deciding; the process keeps serving and stops cleanly on SIGTERM.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { hashApiKey } from '#gateway';
import { openFileLogReader } from '#eventlog';
import type { AttestEvent } from '#schemas';
import { errorOf, rawInitialize, rawPost } from '../test/support/raw-mcp.ts';

const CLI = path.join(import.meta.dirname, 'attest.ts');
const FIXTURE = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'upstream', 'server.ts');
const KEY = 'atk_sighup_test_key_0123456789';

function configDoc(logDir: string, options: { denyEcho?: boolean; port?: number } = {}): string {
  return stringify({
    gateway: { port: options.port ?? 0 },
    log: { backend: 'file', dir: logDir },
    auth: { keys: [{ id: 'agent', hash: hashApiKey(KEY), tenant: 't1' }] },
    policy: {
      defaultEffect: 'deny',
      rules: [...(options.denyEcho === true ? [{ id: 'echo-off', effect: 'deny', when: "tool == 'echo'" }] : []), { id: 'everyday', effect: 'allow', when: "tool in ['echo', 'add']" }],
    },
    upstreams: { fixture: { transport: 'stdio', command: process.execPath, args: [FIXTURE, '--stdio'] } },
  });
}

describe('attest start: SIGHUP reloads the config', () => {
  let dir: string;
  let file: string;
  let logDir: string;
  let child: ChildProcessWithoutNullStreams | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-sighup-'));
    file = path.join(dir, 'attest.yaml');
    logDir = path.join(dir, 'log');
    await writeFile(file, configDoc(logDir));
  });
  after(async () => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  async function logged(): Promise<AttestEvent[]> {
    const reader = await openFileLogReader(logDir);
    const out: AttestEvent[] = [];
    try {
      for await (const { event } of reader.read()) out.push(event);
    } finally {
      await reader.close();
    }
    return out;
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 100; i++) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('applies a good config to an open session and refuses a changed port, keeping the policy in force', { timeout: 90_000 }, async () => {
    const proc = spawn(process.execPath, ['--conditions=attest-source', CLI, 'start', '--config', file], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ATTEST_LOG_LEVEL: 'warn' } });
    child = proc;
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`attest start did not listen in 30 s: ${stderr}`)), 30_000);
      createInterface({ input: proc.stdout }).on('line', (line) => {
        const match = /listening on (http:\/\/\S+)/.exec(line);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      proc.once('exit', (code) => reject(new Error(`attest start exited ${code}: ${stderr}`)));
    });

    const mcp = `${url}/mcp`;
    const auth = { authorization: `Bearer ${KEY}` };
    const { sessionId, result } = await rawInitialize(mcp, auth);
    const headers = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    let id = 10;
    const call = (name: string, args: Record<string, unknown>) => rawPost(mcp, { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: `fixture__${name}`, arguments: args } }, headers);
    assert.ok((await call('echo', { text: 'before' })).messages[0]?.['result'], 'echo allowed by the first policy');

    await writeFile(file, configDoc(logDir, { denyEcho: true }));
    proc.kill('SIGHUP');
    const denied = await until('the reloaded policy to deny echo', async () => {
      const r = await call('echo', { text: 'after' });
      return r.messages[0]?.['error'] === undefined ? undefined : errorOf(r);
    });
    assert.equal(denied.code, -32010);
    assert.equal(denied.data?.['ruleId'], 'echo-off');
    const applied = (await logged()).find((e) => e.type === 'ConfigApplied');
    assert.ok(applied?.type === 'ConfigApplied');
    assert.equal(applied.data.trigger, 'signal');
    assert.equal(applied.actor.kind, 'system');
    assert.deepEqual(applied.data.changed, ['policy']);

    await writeFile(file, configDoc(logDir, { denyEcho: false, port: 18_788 }));
    proc.kill('SIGHUP');
    const rejected = await until('ConfigRejected', async () => (await logged()).find((e) => e.type === 'ConfigRejected'));
    assert.ok(rejected.type === 'ConfigRejected');
    assert.equal(rejected.data.trigger, 'signal');
    assert.match(rejected.data.issues.join('\n'), /gateway\.port: cannot change while the gateway runs/);
    assert.equal(errorOf(await call('echo', { text: 'still denied' })).data?.['ruleId'], 'echo-off', 'the refused file did not replace the policy in force');
    assert.ok((await call('add', { a: 1, b: 2 })).messages[0]?.['result'], 'the session still serves');
    assert.match(stderr, /config reload rejected/);

    proc.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => (proc.exitCode !== null ? resolve([proc.exitCode, null]) : proc.once('exit', (c, s) => resolve([c, s]))));
    assert.equal(code, 0, `${String(signal)} ${stderr}`);
  });
});
