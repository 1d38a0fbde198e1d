/**
 * Starts a real gateway in-process on a temp file log, fronting the given upstreams, with one
 * API key. Everything it starts is stopped by `close()`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import type { AttestConfigInput, AttestEvent } from '#schemas';
import { testLogger } from '../harness/log.ts';

export const FIXTURE_SERVER = path.join(import.meta.dirname, '..', 'fixtures', 'upstream', 'server.ts');

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
  const key = 'atk_test_key_0123456789';
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
    async events() {
      const out: AttestEvent[] = [];
      for await (const { event } of gateway.log.read()) out.push(event);
      return out;
    },
    async close() {
      await gateway.close();
      if (ownDir !== undefined) await rm(ownDir, { recursive: true, force: true });
    },
  };
}
