/**
 * A dead log fails closed: with the log's filesystem full (a real tmpfs filled to ENOSPC), a tool
 * call is refused with ATTEST_LOG_UNAVAILABLE and never reaches the upstream; once space is back
 * the gateway serves again by itself, and the log still verifies. /readyz says the log refuses
 * appends while it does (503), /healthz stays liveness (200).
 * Needs `mount -t tmpfs` (root); where that is not possible the test says so and is skipped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { verifyFileLog } from '#eventlog';
import { hashApiKey } from '#gateway';
import { canonicalize, digestOf } from '#schemas';
import type { AttestEvent } from '#schemas';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { startCliGateway } from './support/cli-gateway.ts';
import { answerJson, startRawUpstream } from './support/raw-upstream.ts';
import type { RawUpstream } from './support/raw-upstream.ts';
import { fileLogEvents, fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

function tryMount(dir: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]})`;
  }
}

async function fill(file: string): Promise<void> {
  const handle = await open(file, 'w');
  try {
    // Big chunks, then smaller ones, until not even one byte fits.
    for (const size of [64 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (let i = 0; i < 1024 * 1024; i++) await handle.write(chunk);
        assert.fail('a 4 MiB tmpfs never filled');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    await handle.close();
  }
}

describe('log fault: the filesystem under the log is full', () => {
  let base: string;
  let mountPoint: string;
  let skipReason: string | undefined;
  let t: TestGateway | undefined;
  const journal = path.join(os.tmpdir(), `attest-fault-journal-${process.pid}.ndjson`);

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'attest-fault-'));
    mountPoint = path.join(base, 'mnt');
    await mkdir(mountPoint);
    skipReason = tryMount(mountPoint);
  });
  after(async () => {
    await t?.close().catch(() => undefined);
    if (skipReason === undefined) execFileSync('umount', ['-l', mountPoint]);
    await rm(base, { recursive: true, force: true });
    await rm(journal, { force: true });
  });

  it('refuses calls with ATTEST_LOG_UNAVAILABLE, forwards nothing, and recovers when space returns', { timeout: 60_000 }, async (ctx) => {
    if (skipReason !== undefined) {
      ctx.skip(skipReason);
      return;
    }
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream({ env: { FIXTURE_JOURNAL: journal } }) }, logDir: path.join(mountPoint, 'log'), log: { appendTimeoutMs: 2000 } });
    const mcp = `${t.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, t.headers);
    const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const call = (id: number, text: string): ReturnType<typeof rawPost> =>
      rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text } } }, headers);

    const okBefore = await call(2, 'before-fault');
    assert.ok(okBefore.messages.some((m) => m['result'] !== undefined), okBefore.text);

    const filler = path.join(mountPoint, 'filler');
    await fill(filler);
    // The segment's last page may still have room for a call or two (tmpfs allocates whole pages):
    // such a call is recorded and forwarded, and answered, or -32014 when its result no longer
    // fits. From the first -32011 on, every call is refused.
    const refused: number[] = [];
    for (let id = 10; id < 20 && refused.length < 3; id++) {
      const answer = await call(id, `during-fault-${id}`);
      if (refused.length === 0 && (answer.messages.some((m) => m['result'] !== undefined) || errorOf(answer, id).code === -32014)) continue;
      const error = errorOf(answer, id);
      assert.equal(error.code, -32011);
      assert.equal(error.data?.['errorCode'], 'ATTEST_LOG_UNAVAILABLE');
      assert.match(error.message, /ENOSPC|no space/i);
      assert.ok(!error.message.includes(mountPoint), `the agent is not told where the log is: ${error.message}`);
      refused.push(id);
    }
    assert.equal(refused.length, 3, 'a full filesystem refuses calls');
    const ready = await fetch(`${t.url}/readyz`);
    assert.equal(ready.status, 503, 'not ready while the log refuses appends');
    const readiness = (await ready.json()) as { status: string; log: { appendsFailing: boolean; failingSince?: string; lastError?: string } };
    assert.equal(readiness.status, 'unavailable');
    assert.equal(readiness.log.appendsFailing, true);
    assert.ok(readiness.log.failingSince !== undefined && readiness.log.lastError !== undefined, JSON.stringify(readiness));
    assert.doesNotMatch(JSON.stringify(readiness), /\/mnt|\/log/, 'no paths on a public page');
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200, '/healthz stays liveness');
    const received = await readFile(journal, 'utf8');
    for (const id of refused) assert.doesNotMatch(received, new RegExp(`during-fault-${id}\\b`), 'a call the log could not record reached the upstream');

    await rm(filler);
    const okAfter = await call(20, 'after-fault');
    assert.ok(okAfter.messages.some((m) => m['result'] !== undefined), `the gateway recovers by itself: ${okAfter.text}`);
    assert.match(await readFile(journal, 'utf8'), /after-fault/);
    const readyAgain = await fetch(`${t.url}/readyz`);
    assert.equal(readyAgain.status, 200, 'ready again once an append succeeded');
    assert.equal(((await readyAgain.json()) as { status: string }).status, 'ready');

    await t.close();
    t = undefined;
    const report = await verifyFileLog(path.join(mountPoint, 'log'));
    assert.equal(report.ok, true, JSON.stringify(report.firstFailure));
  });

  it('a disk that fills while the upstream runs a call: the result is withheld (-32014, "took effect"), its outcome recorded as withheld once space returns, and a restart does not call it unknown', { timeout: 60_000 }, async (ctx) => {
    if (skipReason !== undefined) {
      ctx.skip(skipReason);
      return;
    }
    const upstream = await slowBigUpstream();
    const logDir = path.join(mountPoint, 'log-withheld');
    const upstreams = { big: { transport: 'streamable-http' as const, url: upstream.url, pinTools: false } };
    const key = 'atk_withheld_key_0123456789';
    const configFile = path.join(base, 'withheld.json');
    await writeFile(configFile, JSON.stringify({ gateway: { port: 0, instance: 'withheld' }, log: { backend: 'file', dir: logDir, appendTimeoutMs: 2000 }, auth: { keys: [{ id: 'test', hash: hashApiKey(key), tenant: 't1' }] }, upstreams }));
    // A gateway process of its own, so it can be killed -9 once the outcome is recorded.
    const gateway = startCliGateway(configFile);
    try {
      const mcp = `${await gateway.url}/mcp`;
      const auth = { authorization: `Bearer ${key}` };
      const { sessionId, result } = await rawInitialize(mcp, auth);
      const headers = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      const filler = path.join(mountPoint, 'filler');
      // The request is recorded and forwarded; while the upstream works, the disk fills; its 256 KiB answer no longer fits.
      const answer = rawPost(mcp, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'big__big', arguments: { bytes: 256 * 1024, delayMs: 1500 } } }, headers);
      await upstream.called;
      await fill(filler);
      const error = errorOf(await answer, 7);
      assert.equal(error.code, -32014, error.message);
      assert.equal(error.data?.['errorCode'], 'ATTEST_RESULT_NOT_RECORDED');
      assert.match(error.message, /ran tools\/call and answered, but the audit log could not record the answer \(ATTEST_LOG_UNAVAILABLE, ENOSPC\), so it is withheld; the call took effect upstream/);
      assert.ok(!error.message.includes(mountPoint), 'the agent is not told where the log is');
      const callId = String(error.data?.['callId']);

      await rm(filler);
      // As soon as the log takes appends again (the backlog is retried every second), the call has
      // its true outcome, while the gateway runs: read from the log's files beside the live writer.
      let withheld: AttestEvent | undefined;
      for (let i = 0; i < 50 && withheld === undefined; i++) {
        withheld = (await fileLogEvents(logDir)).find((e) => e.callId === callId && e.type === 'ErrorReturned');
        if (withheld === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(withheld?.type === 'ErrorReturned', 'the withheld outcome is recorded while the gateway runs');
      assert.equal(withheld.data.errorCode, 'ATTEST_RESULT_NOT_RECORDED');
      assert.equal(withheld.data.withheld?.reason, 'log-unavailable');
      assert.equal(withheld.data.withheld?.logError, 'ATTEST_LOG_UNAVAILABLE, ENOSPC');
      assert.equal(withheld.data.withheld?.digest, digestOf(upstream.lastResult()), 'the digest of the answer the agent did not get');
      assert.equal(withheld.data.withheld?.bytes, Buffer.byteLength(canonicalize(upstream.lastResult())));

      // A crash now: the next start must not take the call for one the crash cut short.
      const pid = gateway.child.pid;
      await gateway.kill();
      t = await startTestGateway({ upstreams, logDir, gateway: { instance: 'withheld' } });
      const events = await t.events();
      assert.deepEqual(events.filter((e) => e.callId === callId).map((e) => e.type), ['RequestReceived', 'DecisionMade', 'ErrorReturned'], 'request, decision, and the withheld outcome; no OutcomeUnknown');
      const recovered = events.find((e) => e.type === 'GatewayRecovered');
      assert.ok(recovered?.type === 'GatewayRecovered', 'the start after the kill says what it found');
      assert.equal(recovered.data.outcomesUnknown, 0, 'no call was left without an outcome');
      assert.equal(recovered.data.sessionsClosed, 1);
      assert.deepEqual(recovered.data.staleLock, { pid: pid ?? null });
      await t.close();
      t = undefined;
      const report = await verifyFileLog(logDir);
      assert.equal(report.ok, true, JSON.stringify(report.firstFailure));
    } finally {
      await gateway.kill();
      await upstream.close();
    }
  });
});


/**
 * A raw Streamable HTTP upstream with one tool, `big`: waits `delayMs`, then answers with a text of
 * `bytes` characters. `called` resolves when the first call arrived.
 */
async function slowBigUpstream(): Promise<RawUpstream & { readonly called: Promise<void>; lastResult(): unknown }> {
  const called = Promise.withResolvers<void>();
  let last: unknown;
  const upstream = await startRawUpstream((message, _request, response) => {
    if (message.method === 'initialize') return answerJson(response, message.id, { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'big', version: '1' } });
    if (message.method === 'tools/list') return answerJson(response, message.id, { tools: [{ name: 'big', inputSchema: { type: 'object' } }] });
    called.resolve();
    const args = message.params?.arguments ?? {};
    last = { content: [{ type: 'text', text: 'x'.repeat(Number(args['bytes'] ?? 1)) }] };
    setTimeout(() => answerJson(response, message.id, last), Number(args['delayMs'] ?? 0));
  });
  return { ...upstream, called: called.promise, lastResult: () => last };
}


