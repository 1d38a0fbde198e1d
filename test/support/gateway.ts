/**
 * Starts a real gateway on a temp file log, fronting the given upstreams, with one API key:
 * in-process (`startTestGateway`), or as its own `attest gateway` process (`startGatewayProcess`),
 * for what only a separate process can show (kill -9, its children, its memory). Everything either
 * starts is stopped by `close()`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openFileLogReader } from '#eventlog';
import type { EventLogReader } from '#eventlog';
import { hashApiKey, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import type { AttestConfigInput, AttestEvent } from '#schemas';
import { testLogger } from '../harness/log.ts';
import { spawnNode, stopProcess } from '../harness/processes.ts';
import type { NodeProcess } from '../harness/processes.ts';

export const FIXTURE_SERVER = path.join(import.meta.dirname, '..', 'fixtures', 'upstream', 'server.ts');
/** A stdio MCP server that ignores SIGTERM and stdin EOF (fixtures/upstream/stubborn.ts). */
export const STUBBORN_SERVER = path.join(import.meta.dirname, '..', 'fixtures', 'upstream', 'stubborn.ts');
const CLI = path.join(import.meta.dirname, '..', '..', 'cli', 'attest.ts');
const TEST_KEY = 'atk_test_key_0123456789';

export function fixtureStdioUpstream(extra: Record<string, unknown> = {}): AttestConfigInput['upstreams'][string] {
  return { transport: 'stdio', command: process.execPath, args: [FIXTURE_SERVER, '--stdio'], ...extra };
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly key: string;
  readonly headers: Record<string, string>;
  readonly logDir: string;
  events(): Promise<AttestEvent[]>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  readonly upstreams: AttestConfigInput['upstreams'];
  readonly keys?: AttestConfigInput['auth'] extends infer A ? (A extends { keys?: infer K } ? K : never) : never;
  readonly gateway?: AttestConfigInput['gateway'];
  readonly logDir?: string;
  readonly log?: Record<string, unknown>;
  readonly policy?: Record<string, unknown>;
  /** More of the `auth` section (jwt, resourceMetadata …), next to `keys`. */
  readonly auth?: Record<string, unknown>;
  readonly observability?: Record<string, unknown>;
  /** The `state` section (snapshots); default as in the config. */
  readonly state?: Record<string, unknown>;
  /** The `evidence` section (the Merkle tree); default as in the config (off). */
  readonly evidence?: Record<string, unknown>;
  /** The `frontDoor` section (refusal recording, timeouts, connections per source). */
  readonly frontDoor?: Record<string, unknown>;
}

export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const ownDir = options.logDir === undefined ? await mkdtemp(path.join(os.tmpdir(), 'attest-gw-')) : undefined;
  const logDir = options.logDir ?? path.join(ownDir ?? '', 'log');
  const key = TEST_KEY;
  const config: AttestConfigInput = {
    gateway: { port: 0, ...options.gateway },
    // A `log` naming its own backend (kafka, kurrent) is taken as is; otherwise a file log in a temp dir.
    log: (options.log?.['backend'] !== undefined && options.log['backend'] !== 'file' ? options.log : { backend: 'file', dir: logDir, ...options.log }) as AttestConfigInput['log'],
    auth: { ...options.auth, keys: options.keys ?? [{ id: 'test', hash: hashApiKey(key), tenant: 't1' }] },
    upstreams: options.upstreams,
    ...(options.policy !== undefined && { policy: options.policy }),
    ...(options.observability !== undefined && { observability: options.observability }),
    ...(options.state !== undefined && { state: options.state }),
    ...(options.evidence !== undefined && { evidence: options.evidence }),
    ...(options.frontDoor !== undefined && { frontDoor: options.frontDoor }),
  };
  const gateway = await startGateway(config, { port: 0, logger: testLogger() });
  return {
    gateway,
    url: gateway.url,
    key,
    headers: { authorization: `Bearer ${key}` },
    logDir,
    events: () => eventsOf(gateway.log),
    async close() {
      await gateway.close();
      if (ownDir !== undefined) await rm(ownDir, { recursive: true, force: true });
    },
  };
}

/** Every event of a log, in order. */
export async function eventsOf(log: Pick<EventLogReader, 'read'>): Promise<AttestEvent[]> {
  const out: AttestEvent[] = [];
  for await (const { event } of log.read()) out.push(event);
  return out;
}

/** Every event of the file log in `dir` (read by a reader of its own, closed after). */
export async function fileLogEvents(dir: string): Promise<AttestEvent[]> {
  const reader = await openFileLogReader(dir);
  try {
    return await eventsOf(reader);
  } finally {
    await reader.close();
  }
}

export interface GatewayProcess {
  readonly process: NodeProcess;
  readonly pid: number;
  readonly url: string;
  readonly key: string;
  readonly headers: Record<string, string>;
  readonly dir: string;
  /** Ends the process (SIGTERM, then SIGKILL) unless it ended already, and removes its directory. */
  close(): Promise<void>;
}

/** `attest gateway --config <file>` in a process of its own, on a file log in a temp dir, listening on a free port. */
export async function startGatewayProcess(options: Pick<TestGatewayOptions, 'upstreams' | 'gateway' | 'keys'>): Promise<GatewayProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-gwp-'));
  const configFile = path.join(dir, 'attest.json');
  const config = {
    gateway: { port: 0, ...options.gateway },
    log: { backend: 'file', dir: path.join(dir, 'log') },
    auth: { keys: options.keys ?? [{ id: 'test', hash: hashApiKey(TEST_KEY), tenant: 't1' }] },
    upstreams: options.upstreams,
  };
  await writeFile(configFile, JSON.stringify(config));
  const proc = spawnNode(CLI, { nodeArgs: ['--conditions=attest-source'], args: ['gateway', '--config', configFile, '--port', '0'] });
  const close = async (): Promise<void> => {
    await stopProcess(proc);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const match = await proc.waitForStdoutLine(/listening on (http:\/\/\S+)/, 30_000);
    const url = match[1] ?? '';
    return { process: proc, pid: proc.pid, url, key: TEST_KEY, headers: { authorization: `Bearer ${TEST_KEY}` }, dir, close };
  } catch (error) {
    await close();
    throw error;
  }
}
