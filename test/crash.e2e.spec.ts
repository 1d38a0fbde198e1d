/**
 * kill -9 of the gateway: under concurrent load, on the embedded file log (see
 * support/crash-under-load.ts for what is checked; the Kafka run is in kafka-gateway.e2e.spec.ts),
 * and with a stdio upstream that ignores SIGTERM and stdin EOF, which must not outlive it.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir, removeAllTempDirs } from './harness/tmp.ts';
import { crashUnderLoad } from './support/crash-under-load.ts';
import { startGatewayProcess, STUBBORN_SERVER } from './support/gateway.ts';
import { rawInitialize, rawPost } from './support/raw-mcp.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its new parent) is gone for every purpose here.
  return true;
}

async function running(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
  return stat !== '' && !/\) Z /.test(stat);
}

describe('crash: kill -9 under concurrent load (file log)', () => {
  it('loses no forwarded call and verifies after restart', { timeout: 180_000 }, async (t) => {
    const outcome = await crashUnderLoad({ backend: 'file', dir: 'log' });
    t.diagnostic(`answered before the crash: ${outcome.answeredBeforeCrash}; received by the upstream: ${outcome.receivedByUpstream}; OutcomeUnknown recorded: ${outcome.outcomeUnknown}; ${outcome.eventsVerified}`);
  });
});

describe('crash: kill -9 of the gateway with a stdio upstream that ignores SIGTERM and stdin EOF', () => {
  it('the upstream is gone within 3 s (PR_SET_PDEATHSIG through setpriv)', { timeout: 60_000 }, async (t) => {
    const pidFile = path.join(await makeTempDir('attest-stubborn-'), 'stubborn.pids');
    t.after(() => removeAllTempDirs());
    const gateway = await startGatewayProcess({ upstreams: { stubborn: { transport: 'stdio', command: process.execPath, args: [STUBBORN_SERVER], env: { STUBBORN_PID_FILE: pidFile }, probeAtStart: false } } });
    t.after(() => gateway.close());
    const { sessionId } = await rawInitialize(`${gateway.url}/mcp`, gateway.headers);
    const listed = await rawPost(`${gateway.url}/mcp`, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { ...gateway.headers, 'mcp-session-id': sessionId });
    assert.deepEqual((listed.messages[0]?.['result'] as { tools?: { name: string }[] } | undefined)?.tools?.map((tool) => tool.name), ['stubborn__stay']);
    const pids = (await readFile(pidFile, 'utf8')).trim().split('\n').map(Number);
    t.after(() => {
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL'); // only when the test already failed
    });
    assert.equal(pids.length, 1, 'one upstream process for the one session');
    const [pid] = pids as [number];
    assert.ok(await running(pid), 'the upstream runs while its gateway does');

    gateway.process.child.kill('SIGKILL');
    assert.equal((await gateway.process.exited).signal, 'SIGKILL');
    const deadline = Date.now() + 3_000;
    while ((await running(pid)) && Date.now() < deadline) await sleep(50);
    assert.equal(await running(pid), false, `upstream ${pid} outlived the kill -9 of its gateway`);
  });
});
