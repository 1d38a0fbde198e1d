/**
 * Upstream processes must not outlive the gateway, however it ends. A separate Node process holds a link
 * (fixtures/hold-link.ts) and is ended from here; the upstream it spawned must follow it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive, waitUntil } from './fixtures/link-harness.ts';

const HOLDER = fileURLToPath(new URL('./fixtures/hold-link.ts', import.meta.url));
const SOURCE_CONDITION = '--conditions=attest-source';
const TEST_TIMEOUT = { timeout: 30_000 };

interface Holder {
  readonly upstreamPid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  write(line: string): void;
}

async function startHolder(t: TestContext, mode: 'everything' | 'stubborn', env: Readonly<Record<string, string>> = {}): Promise<Holder> {
  const holder = spawn(process.execPath, [SOURCE_CONDITION, HOLDER, mode], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => holder.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await exited;
  });
  const firstLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the holder did not report its upstream pid within 15 s')), 15_000);
    createInterface({ input: holder.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    void exited.then(({ code }) => reject(new Error(`the holder exited early with code ${String(code)}`)));
  });
  const reported: unknown = JSON.parse(firstLine);
  assert.ok(typeof reported === 'object' && reported !== null && 'pid' in reported && typeof reported.pid === 'number');
  const upstreamPid = reported.pid;
  t.after(() => {
    if (isAlive(upstreamPid)) process.kill(upstreamPid, 'SIGKILL'); // only when the test already failed
  });
  assert.ok(isAlive(upstreamPid), 'the upstream runs while its gateway does');
  return { upstreamPid, exited, kill: (signal) => holder.kill(signal), write: (line) => holder.stdin.write(line) };
}

void describe('no orphaned upstream processes', () => {
  void it('kill -9 of the gateway: the upstream sees EOF on stdin and exits', TEST_TIMEOUT, async (t) => {
    const holder = await startHolder(t, 'everything');
    holder.kill('SIGKILL');
    assert.equal((await holder.exited).signal, 'SIGKILL');
    await waitUntil(() => !isAlive(holder.upstreamPid), 5_000, `upstream ${holder.upstreamPid} to exit after its gateway was killed`);
  });

  const guards: readonly { readonly guard: string; readonly env: Readonly<Record<string, string>> }[] = [
    { guard: 'the kernel (setpriv --pdeathsig)', env: {} },
    { guard: 'the watchdog (no setpriv: ATTEST_UPSTREAM_GUARD=watchdog)', env: { ATTEST_UPSTREAM_GUARD: 'watchdog' } },
  ];
  for (const { guard, env } of guards) {
    void it(`kill -9 of the gateway: an upstream that ignores stdin EOF and SIGTERM is killed by ${guard}`, TEST_TIMEOUT, async (t) => {
      const holder = await startHolder(t, 'stubborn', env);
      holder.kill('SIGKILL');
      assert.equal((await holder.exited).signal, 'SIGKILL');
      await waitUntil(() => !isAlive(holder.upstreamPid), 3_000, `upstream ${holder.upstreamPid} to be killed by ${guard}`);
    });
  }

  void it('SIGTERM with no shutdown handler: the exit hook kills even an upstream that ignores EOF and SIGTERM, and the gateway still dies of SIGTERM', TEST_TIMEOUT, async (t) => {
    const holder = await startHolder(t, 'stubborn');
    holder.kill('SIGTERM');
    assert.equal((await holder.exited).signal, 'SIGTERM');
    await waitUntil(() => !isAlive(holder.upstreamPid), 2_000, `upstream ${holder.upstreamPid} to be killed by the exit hook`);
  });

  void it('process.exit(): the exit hook kills remaining upstreams synchronously', TEST_TIMEOUT, async (t) => {
    const holder = await startHolder(t, 'stubborn');
    holder.write('exit\n');
    assert.equal((await holder.exited).code, 0);
    await waitUntil(() => !isAlive(holder.upstreamPid), 2_000, `upstream ${holder.upstreamPid} to be killed by the exit hook`);
  });
});
