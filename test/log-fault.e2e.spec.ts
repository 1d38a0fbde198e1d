/**
 * A dead log fails closed: with the log's filesystem full (a real tmpfs filled to ENOSPC), a tool
 * call is refused with ATTEST_LOG_UNAVAILABLE and never reaches the upstream; once space is back
 * the gateway serves again by itself, and the log still verifies.
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
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let i = 0; i < 1024; i++) await handle.write(chunk);
    assert.fail('a 4 MiB tmpfs took 64 MiB');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
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
    for (let i = 0; i < 3; i++) {
      const refused = await call(10 + i, `during-fault-${i}`);
      const error = errorOf(refused, 10 + i);
      assert.equal(error.code, -32011);
      assert.equal(error.data?.['errorCode'], 'ATTEST_LOG_UNAVAILABLE');
      assert.match(error.message, /ENOSPC|no space/i);
    }
    const received = await readFile(journal, 'utf8');
    assert.doesNotMatch(received, /during-fault/, 'a call the log could not record reached the upstream');

    await rm(filler);
    const okAfter = await call(20, 'after-fault');
    assert.ok(okAfter.messages.some((m) => m['result'] !== undefined), `the gateway recovers by itself: ${okAfter.text}`);
    assert.match(await readFile(journal, 'utf8'), /after-fault/);

    await t.close();
    t = undefined;
    const report = await verifyFileLog(path.join(mountPoint, 'log'));
    assert.equal(report.ok, true, JSON.stringify(report.firstFailure));
  });
});
