/**
 * The passthrough suite against the fixture upstream itself, names unchanged: over Streamable
 * HTTP, over stdio and over legacy HTTP+SSE. It must pass without any gateway — that is what
 * proves the suite tests something, so that the same suite passing through the gateway means the
 * gateway is transparent.
 */
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closeAllClients, connectClient } from './harness/client.ts';
import { startNodeServer, stopAllProcesses } from './harness/processes.ts';
import { describePassthrough } from './passthrough.ts';
import type { PassthroughTarget } from './passthrough.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/upstream/server.ts', import.meta.url));
const unchanged = (name: string): string => name;

after(async () => {
  await closeAllClients();
  await stopAllProcesses();
});

describePassthrough('passthrough: fixture directly over Streamable HTTP', async (): Promise<PassthroughTarget> => {
  const fixture = await startNodeServer(FIXTURE, { args: ['--http'] });
  return {
    connect: (options) => connectClient({ transport: 'streamable-http', url: fixture.url }, options),
    toolName: unchanged,
    promptName: unchanged,
    close: async () => {
      await fixture.stop();
    },
  };
});

describePassthrough('passthrough: fixture directly over stdio', async (): Promise<PassthroughTarget> => ({
  // Each session is its own fixture process, started and stopped by the SDK's stdio transport.
  connect: (options) => connectClient({ transport: 'stdio', command: process.execPath, args: [FIXTURE, '--stdio'] }, options),
  toolName: unchanged,
  promptName: unchanged,
  close: async () => undefined,
}));

describePassthrough('passthrough: fixture directly over legacy HTTP+SSE', async (): Promise<PassthroughTarget> => {
  const fixture = await startNodeServer(FIXTURE, { args: ['--sse'] });
  return {
    connect: (options) => connectClient({ transport: 'sse', url: fixture.url }, options),
    toolName: unchanged,
    promptName: unchanged,
    close: async () => {
      await fixture.stop();
    },
  };
});
