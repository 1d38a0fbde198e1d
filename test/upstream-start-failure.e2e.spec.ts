/**
 * A stdio upstream that cannot start — a wrong path, `args: [does-not-exist.js]` — is said where an
 * operator looks, and told to the agent plainly: at start (the start-up probe's warn log with the
 * process's stderr tail, an UpstreamLost on the system stream), on /healthz (per-upstream status
 * with the last error, without the config's secret values), and to an agent calling its tools (a
 * JSON-RPC error naming the upstream and that it failed to start, without paths or pids). Real
 * gateway, real bad config, real SDK client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProtocolError } from '@modelcontextprotocol/server';
import { createLogger, hashApiKey, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import type { AttestEvent } from '#schemas';
import { closeAllClients, connectClient } from './harness/client.ts';
import { makeTempDir, removeAllTempDirs } from './harness/tmp.ts';
import { fixtureStdioUpstream } from './support/gateway.ts';

const KEY = 'atk_start_failure_test_key';
const SECRET = 'do-not-show-me-0123456789';

interface UpstreamHealth {
  status: string;
  source?: string;
  lastError?: { message: string; exitCode?: number | null; stderrTail?: string[] };
}

after(async () => {
  await closeAllClients();
  await removeAllTempDirs();
});

describe('a stdio upstream that cannot start', () => {
  let gateway: Gateway;
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];

  async function health(): Promise<Record<string, UpstreamHealth>> {
    const body = (await (await fetch(`${gateway.url}/healthz`)).json()) as { status: string; upstreams: Record<string, UpstreamHealth> };
    assert.equal(body.status, 'ok', 'the gateway itself is alive');
    return body.upstreams;
  }

  async function events(): Promise<AttestEvent[]> {
    const out: AttestEvent[] = [];
    for await (const { event } of gateway.log.read()) out.push(event);
    return out;
  }

  before(async () => {
    const logger = createLogger('info', {
      write: (line: string) => {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
    gateway = await startGateway(
      {
        gateway: { port: 0 },
        log: { backend: 'file', dir: await makeTempDir('attest-start-failure-log-') },
        auth: { keys: [{ id: 'k', hash: hashApiKey(KEY), tenant: 't' }] },
        upstreams: {
          fixture: fixtureStdioUpstream(),
          broken: { transport: 'stdio', command: 'node', args: ['does-not-exist.js'], connectTimeoutMs: 10_000 },
          // Prints a configured env value to stderr, then exits: it must not reach /healthz or the log.
          leaky: { transport: 'stdio', command: 'node', args: ['-e', 'console.error("token=" + process.env.PROBE_SECRET); process.exit(2)'], env: { PROBE_SECRET: SECRET }, connectTimeoutMs: 10_000 },
          unprobed: fixtureStdioUpstream({ probeAtStart: false }),
        },
      },
      { logger },
    );
  });
  after(async () => {
    await gateway?.close();
  });

  it('is said at start: a warn log with its stderr tail, an UpstreamLost on the system stream, and /healthz', { timeout: 30_000 }, async () => {
    let upstreams = await health();
    for (let i = 0; i < 150 && (upstreams['broken']?.status !== 'failing' || upstreams['leaky']?.status !== 'failing' || upstreams['fixture']?.status !== 'ok'); i++) {
      await sleep(100);
      upstreams = await health();
    }
    assert.equal(upstreams['fixture']?.status, 'ok', JSON.stringify(upstreams));
    assert.equal(upstreams['fixture']?.source, 'probe');
    assert.equal(upstreams['unprobed']?.status, 'unknown', 'probeAtStart: false is not spawned at start');
    const broken = upstreams['broken'];
    assert.equal(broken?.status, 'failing', JSON.stringify(upstreams));
    assert.equal(broken?.lastError?.exitCode, 1);
    assert.match(broken?.lastError?.message ?? '', /^upstream "broken" \(stdio, pid \d+\) exited with code 1 before it answered initialize$/);
    assert.ok(broken?.lastError?.stderrTail?.some((line) => /Cannot find module .*does-not-exist\.js/.test(line)), JSON.stringify(broken?.lastError?.stderrTail));

    const warning = lines.find((line) => line['level'] === 40 && line['upstream'] === 'broken' && String(line['msg']).includes('failed its start-up probe'));
    assert.ok(warning !== undefined, 'a warn line at start');
    assert.ok((warning['stderrTail'] as string[]).some((line) => line.includes('Cannot find module')), JSON.stringify(warning));
    assert.match(String(warning['msg']), /Cannot find module/);

    const lost = (await events()).find((e) => e.type === 'UpstreamLost' && e.data.upstream === 'broken' && e.stream.startsWith('system-'));
    assert.ok(lost !== undefined, 'UpstreamLost on the system stream');
    assert.match(lost.type === 'UpstreamLost' ? lost.data.reason : '', /^start-up probe: upstream "broken" .*exited with code 1 before it answered initialize/);
  });

  it('/healthz and the log never show a configured env value, even when the upstream prints it', async () => {
    const leaky = (await health())['leaky'];
    assert.equal(leaky?.status, 'failing');
    assert.ok(leaky?.lastError?.stderrTail?.includes('token=[redacted]'), JSON.stringify(leaky));
    const page = await (await fetch(`${gateway.url}/healthz`)).text();
    assert.equal(page.includes(SECRET), false, 'the secret on /healthz');
    assert.equal(raw.join('').includes(SECRET), false, 'the secret in the log');
  });

  it('an agent calling its tools gets a JSON-RPC error naming the upstream and that it failed to start, without paths or pids', { timeout: 30_000 }, async () => {
    const agent = await connectClient({ transport: 'streamable-http', url: `${gateway.url}/mcp`, headers: { authorization: `Bearer ${KEY}` } });
    const names = (await agent.client.listTools()).tools.map((tool) => tool.name);
    assert.ok(names.includes('fixture__echo') && !names.some((name) => name.startsWith('broken__')), names.join(', '));
    await assert.rejects(agent.client.callTool({ name: 'broken__anything', arguments: {} }), (error: unknown) => {
      assert.ok(error instanceof ProtocolError, String(error));
      assert.equal(error.code, -32012);
      assert.equal(error.message, 'Upstream "broken" is unavailable: it failed to start (its process exited with code 1); its error output is in the gateway\'s log and on /healthz');
      assert.doesNotMatch(error.message, /does-not-exist|\/work|pid|node/);
      return true;
    });
    // The session's own attempt is the operator's too: logged with the stderr tail, and on /healthz.
    const logged = lines.find((line) => line['level'] === 40 && line['upstream'] === 'broken' && line['session'] !== undefined);
    assert.ok(logged !== undefined && String(logged['msg']).includes('Cannot find module'), JSON.stringify(logged));
    assert.equal((await health())['broken']?.source, 'session');
    await agent.close();
  });
});
