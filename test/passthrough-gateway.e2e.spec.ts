/**
 * The passthrough suite through the gateway: every feature that works against the fixture
 * directly (passthrough-direct.e2e.spec.ts) must work the same way through Attest. Targets:
 * the aggregate endpoint `/mcp` (tools and prompts namespaced `fixture__<name>`) in front of the
 * fixture over stdio, over Streamable HTTP and over legacy SSE; the per-server endpoint
 * `/servers/fixture/mcp` (names unchanged); and a legacy HTTP+SSE client on the aggregate `/sse`.
 * Each target is its own gateway on port 0 with a file log in a temp dir and one API key.
 */
import { createHash } from 'node:crypto';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
// depends on #gateway startGateway
import { startGateway } from '#gateway';
import { verifyFileLog } from '#eventlog';
import type { AttestConfigInput } from '#schemas';
import { closeAllClients, connectClient } from './harness/client.ts';
import type { ClientTarget } from './harness/client.ts';
import { startNodeServer, stopAllProcesses } from './harness/processes.ts';
import type { ListeningProcess } from './harness/processes.ts';
import { makeTempDir, removeAllTempDirs, removeTempDir } from './harness/tmp.ts';
import { testLogger } from './harness/log.ts';
import { describePassthrough } from './passthrough.ts';
import type { PassthroughTarget } from './passthrough.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/upstream/server.ts', import.meta.url));
const UPSTREAM = 'fixture';
const API_KEY = 'atk_passthrough_suite_key';
const AUTH_HEADERS = { authorization: `Bearer ${API_KEY}` };

type UpstreamInput = AttestConfigInput['upstreams'][string];
type Endpoint = 'aggregate' | 'server' | 'aggregate-sse';

after(async () => {
  await closeAllClients();
  await stopAllProcesses();
  await removeAllTempDirs();
});

const namespaced = (name: string): string => `${UPSTREAM}__${name}`;
const unchanged = (name: string): string => name;

/** A gateway in front of one fixture upstream, reached through `endpoint`. */
async function gatewayTarget(upstream: 'stdio' | 'streamable-http' | 'sse', endpoint: Endpoint): Promise<PassthroughTarget> {
  let fixture: ListeningProcess | undefined;
  let upstreamConfig: UpstreamInput;
  if (upstream === 'stdio') {
    upstreamConfig = { transport: 'stdio', command: process.execPath, args: [FIXTURE, '--stdio'] };
  } else {
    fixture = await startNodeServer(FIXTURE, { args: [upstream === 'sse' ? '--sse' : '--http'] });
    upstreamConfig = { transport: upstream, url: fixture.url };
  }

  const logDir = await makeTempDir('attest-passthrough-log-');
  const config: AttestConfigInput = {
    log: { backend: 'file', dir: logDir },
    auth: { keys: [{ id: 'test', hash: `sha256:${createHash('sha256').update(API_KEY).digest('hex')}`, tenant: 't1' }] },
    upstreams: { [UPSTREAM]: upstreamConfig },
  };
  const gateway = await startGateway(config, { port: 0, logger: testLogger() });

  const clientTarget: ClientTarget =
    endpoint === 'aggregate-sse'
      ? { transport: 'sse', url: `${gateway.url}/sse`, headers: AUTH_HEADERS }
      : { transport: 'streamable-http', url: endpoint === 'server' ? `${gateway.url}/servers/${UPSTREAM}/mcp` : `${gateway.url}/mcp`, headers: AUTH_HEADERS };
  const names = endpoint === 'server' ? unchanged : namespaced;

  return {
    connect: (options) => connectClient(clientTarget, options),
    toolName: names,
    promptName: names,
    receipts: true,
    close: async () => {
      await gateway.close();
      // Everything the suite did through the gateway must have left a log that verifies.
      const report = await verifyFileLog(logDir);
      if (!report.ok || report.eventsChecked < 50) throw new Error(`log after the suite: ${JSON.stringify(report)}`);
      await fixture?.stop();
      await removeTempDir(logDir);
    },
  };
}

describePassthrough('passthrough through the gateway: aggregate /mcp, stdio upstream', () => gatewayTarget('stdio', 'aggregate'));
describePassthrough('passthrough through the gateway: aggregate /mcp, Streamable HTTP upstream', () => gatewayTarget('streamable-http', 'aggregate'));
describePassthrough('passthrough through the gateway: aggregate /mcp, legacy SSE upstream', () => gatewayTarget('sse', 'aggregate'));
describePassthrough('passthrough through the gateway: /servers/fixture/mcp, stdio upstream', () => gatewayTarget('stdio', 'server'));
describePassthrough('passthrough through the gateway: legacy HTTP+SSE client on aggregate /sse, stdio upstream', () => gatewayTarget('stdio', 'aggregate-sse'));
