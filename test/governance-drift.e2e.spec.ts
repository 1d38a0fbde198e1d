/**
 * No drift between the live enforcement state and the log (issue 11): a call whose decision the
 * log refuses (here ATTEST_LOG_BUSY on one append) was never made, so it spends no budget — live,
 * and after a restart that rebuilds the state from the log.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { LogUnavailableError } from '#eventlog';
import type { EventLog } from '#eventlog';
import { hashApiKey, startGateway } from '#gateway';
import type { AttestConfigInput } from '#schemas';
import { testLogger } from './harness/log.ts';
import { fixtureStdioUpstream } from './support/gateway.ts';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';

const KEY = 'atk_drift_key_0123456789abcdef';

/** A real log that refuses (at once, writing nothing) the append carrying the decision of a tools/call whose text is `refuse-me`. */
function refusing(log: EventLog): EventLog {
  return {
    backend: log.backend,
    append: (drafts) => {
      const refused = drafts.some((d) => d.type === 'RequestReceived' && JSON.stringify(d.data.params.body ?? null).includes('refuse-me'));
      return refused ? Promise.reject(new LogUnavailableError('ATTEST_LOG_BUSY', 'test: the log refuses this append')) : log.append(drafts);
    },
    read: (options) => log.read(options),
    follow: (options) => log.follow(options),
    entries: (options) => log.entries(options),
    head: (stream) => log.head(stream),
    size: () => log.size(),
    close: () => log.close(),
  };
}

describe('limits after a refused append', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('a call the log refused spent no budget, live and after a restart', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-drift-'));
    dirs.push(dir);
    const config: AttestConfigInput = {
      gateway: { port: 0 },
      log: { backend: 'file', dir: path.join(dir, 'log') },
      auth: { keys: [{ id: 'k1', hash: hashApiKey(KEY), tenant: 't1' }] },
      upstreams: { fixture: fixtureStdioUpstream() },
      policy: { defaultEffect: 'allow', budgets: [{ id: 'three-echoes', scope: 'tenant', period: 'day', maxCalls: 3, match: "tool == 'echo'" }] },
    };
    const echo = async (url: string, h: Record<string, string>, id: number, text: string): Promise<{ code?: number; errorCode?: unknown }> => {
      const response = await rawPost(`${url}/mcp`, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text } } }, h);
      if (response.messages.some((m) => m['result'] !== undefined)) return {};
      const error = errorOf(response, id);
      return { code: error.code, errorCode: error.data?.['errorCode'] };
    };
    const open = async (url: string): Promise<Record<string, string>> => {
      const { sessionId, result } = await rawInitialize(`${url}/mcp`, { authorization: `Bearer ${KEY}` });
      return { authorization: `Bearer ${KEY}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    };

    const first = await startGateway(config, { port: 0, logger: testLogger(), wrapLog: refusing });
    try {
      const h = await open(first.url);
      assert.deepEqual(await echo(first.url, h, 2, 'one'), {});
      assert.deepEqual(await echo(first.url, h, 3, 'refuse-me'), { code: -32011, errorCode: 'ATTEST_LOG_UNAVAILABLE' });
      assert.deepEqual(await echo(first.url, h, 4, 'two'), {});
      assert.deepEqual(await echo(first.url, h, 5, 'three'), {}, 'the refused call did not spend the budget');
      assert.equal((await echo(first.url, h, 6, 'four')).errorCode, 'ATTEST_BUDGET_EXHAUSTED');
    } finally {
      await first.close();
    }
    const second = await startGateway(config, { port: 0, logger: testLogger() });
    try {
      const h = await open(second.url);
      assert.equal((await echo(second.url, h, 2, 'five')).errorCode, 'ATTEST_BUDGET_EXHAUSTED', 'the rebuilt state agrees: three echoes spent');
    } finally {
      await second.close();
    }
  });
});
