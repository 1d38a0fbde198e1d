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
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { verifyFileLog } from '#eventlog';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
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
});
