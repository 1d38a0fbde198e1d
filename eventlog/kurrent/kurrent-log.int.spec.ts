/**
 * The KurrentDB adapter against a real KurrentDB: the EventLog contract suite, and what only a
 * real server can show (positions, WrongExpectedVersion, idempotent retries, two writers — two
 * gateway replicas — on one database).
 *
 * The server comes from ATTEST_KURRENTDB_CONNECTION_STRING when set, else from a container
 * started with testcontainers (image ATTEST_KURRENTDB_IMAGE, default the one deploy/compose runs).
 * Where neither exists — no container engine answers — every test is reported as skipped with the
 * reason; none passes without a server. Each test writes under its own stream prefix.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { jsonEvent, KurrentDBClient, NO_STREAM } from '@kurrent/kurrentdb-client';
import type { KurrentLogOptions } from './kurrent-log.ts';
import { testEventLog } from '../contract.ts';
import { cursorOf } from '../cursor.ts';
import { connectKurrent } from './kurrent-client.ts';
import { LogUnavailableError } from '../port.ts';
import type { KurrentPosition, StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { appendFromTwoWriters } from '../several-writers.ts';
import { openKurrentLog, openKurrentLogReader } from './kurrent-log.ts';

const DEFAULT_IMAGE = 'kurrentplatform/kurrentdb:26.1.1';
const CLIENT_PORT = 2113;
const DETECT_TIMEOUT_MS = 5_000;

interface Server {
  readonly connectionString: string;
  readonly source: 'env' | 'testcontainers';
  stop(): Promise<void>;
}

type Availability = { readonly available: true; readonly start: () => Promise<Server> } | { readonly available: false; readonly reason: string };

/** Asked once, quickly: a docker CLI without a daemon must be a fast "no", not a hang. */
async function findKurrentDB(): Promise<Availability> {
  const fromEnv = process.env.ATTEST_KURRENTDB_CONNECTION_STRING?.trim();
  if (fromEnv !== undefined && fromEnv !== '') {
    return { available: true, start: async () => ({ connectionString: fromEnv, source: 'env', stop: async () => undefined }) };
  }
  const unset = 'ATTEST_KURRENTDB_CONNECTION_STRING is not set';
  if (process.env.ATTEST_TESTCONTAINERS === 'off') return { available: false, reason: `${unset} and ATTEST_TESTCONTAINERS=off` };
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const runtime = await Promise.race([
      getContainerRuntimeClient(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${DETECT_TIMEOUT_MS} ms`)), DETECT_TIMEOUT_MS).unref()),
    ]);
    const host = runtime.info.containerRuntime.host;
    return { available: true, start: () => startContainer(host) };
  } catch (error) {
    return {
      available: false,
      reason: `no container engine: KurrentDB cannot run here (${unset}; testcontainers: ${error instanceof Error ? error.message : String(error)}). These tests run where Docker or Podman answers.`,
    };
  }
}

async function startContainer(host: string): Promise<Server> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(process.env.ATTEST_KURRENTDB_IMAGE ?? DEFAULT_IMAGE)
    .withEnvironment({
      KURRENTDB_CLUSTER_SIZE: '1',
      KURRENTDB_INSECURE: 'true',
      KURRENTDB_RUN_PROJECTIONS: 'None',
      KURRENTDB_ENABLE_ATOM_PUB_OVER_HTTP: 'false',
    })
    .withExposedPorts(CLIENT_PORT)
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(120_000)
    .start();
  return {
    connectionString: `kurrentdb://${host}:${container.getMappedPort(CLIENT_PORT)}?tls=false`,
    source: 'testcontainers',
    stop: async () => {
      await container.stop();
    },
  };
}

/** The contract's test names, so that each is listed as skipped rather than the suite as a whole. */
async function contractTestNames(): Promise<string[]> {
  try {
    const source = await readFile(new URL('../contract.ts', import.meta.url), 'utf8');
    return [...source.matchAll(/\bit\(\s*'((?:[^'\\]|\\.)+)'/g)].map((match) => match[1] as string);
  } catch {
    return [];
  }
}

const availability = await findKurrentDB();

let server: Server | undefined;
let starting: Promise<Server> | undefined;

function kurrentdb(): Promise<Server> {
  if (!availability.available) throw new Error(availability.reason);
  starting ??= availability.start().then((started) => (server = started));
  return starting;
}

function configFor(connectionString: string, streamPrefix = `attest-${randomUUID().slice(0, 8)}-`): KurrentLogOptions {
  return { backend: 'kurrent', connectionString, streamPrefix, appendTimeoutMs: 10_000 };
}

after(async () => {
  await server?.stop();
});

if (availability.available) {
  testEventLog('kurrent', async () => {
    const { connectionString } = await kurrentdb();
    const config = configFor(connectionString);
    return {
      open: () => openKurrentLog(config),
      openReader: () => openKurrentLogReader(config),
      appendWritten: async (records) => {
        const client = connectKurrent(connectionString);
        try {
          for (const record of records) await client.appendToStream(`${config.streamPrefix ?? ''}${String(record['stream'])}`, [jsonEvent({ id: String(record['id']), type: String(record['type']), data: record as Record<string, string> })], { streamState: 'any' });
        } finally {
          await client.dispose();
        }
      },
      dispose: async () => undefined,
    };
  }, { contiguousIndex: false, totalCallOrder: false });
} else {
  const names = await contractTestNames();
  void describe('EventLog contract: kurrent', () => {
    for (const name of names.length > 0 ? names : ['(the whole contract suite)']) void it(name, { skip: availability.reason }, () => undefined);
  });
}

const skip = availability.available ? false : availability.reason;

void describe('KurrentDB adapter on a real KurrentDB', { timeout: 180_000 }, () => {
  let connectionString = '';

  before(async () => {
    if (availability.available) connectionString = (await kurrentdb()).connectionString;
  });

  void it('acknowledges each event at its own $all commit position, increasing, where reads find it (multi-event appends too)', { skip }, async () => {
    const log = await openKurrentLog(configFor(connectionString));
    try {
      const acked = [...(await log.append([sampleDraft('p-a', 0), sampleDraft('p-a', 1), sampleDraft('p-a', 2)])), ...(await log.append([sampleDraft('p-b', 0), sampleDraft('p-a', 3)]))];
      const indexes = acked.map((s) => s.position.index);
      assert.ok(
        indexes.every((index, i) => i === 0 || index > (indexes[i - 1] as number)),
        `increasing: ${indexes.join(', ')}`,
      );
      assert.ok(acked.every((s) => s.position.commit === String(s.position.index)));
      const read: StoredEvent<KurrentPosition>[] = [];
      for await (const stored of log.read()) read.push(stored);
      const byId = new Map(read.map((s) => [s.event.id, s.position]));
      for (const stored of acked) assert.deepEqual(byId.get(stored.event.id), stored.position, `position of seq ${stored.event.seq} of ${stored.event.stream}`);
      const fromThird: string[] = [];
      for await (const stored of log.read({ after: cursorOf(acked[1] as StoredEvent) })) fromThird.push(stored.event.id);
      assert.deepEqual(
        fromThird,
        acked.slice(2).map((s) => s.event.id),
      );
    } finally {
      await log.close();
    }
  });

  void it('refuses a second writer’s stale head with WrongExpectedVersion, naming the stream, then continues the chain', { skip }, async () => {
    const config = configFor(connectionString);
    const a = await openKurrentLog(config);
    const b = await openKurrentLog(config);
    try {
      await b.append([sampleDraft('w', 0)]);
      await a.append([sampleDraft('w', 1)]);
      await assert.rejects(b.append([sampleDraft('w', 2)]), (error: unknown) => error instanceof LogUnavailableError && error.message.includes(`stream ${config.streamPrefix}w`));
      const [next] = await b.append([sampleDraft('w', 3)]);
      assert.equal(next?.event.seq, 3);
    } finally {
      await a.close();
      await b.close();
    }
  });

  void it('does not write an append twice when it is retried with the same event ids and expected revision (the server’s retry check)', { skip }, async () => {
    const client = KurrentDBClient.connectionString(connectionString);
    try {
      const stream = `attest-retry-${randomUUID()}`;
      const event = jsonEvent({ id: randomUUID(), type: 'RequestReceived', data: { n: 1 } });
      const first = await client.appendToStream(stream, event, { streamState: NO_STREAM });
      const retry = await client.appendToStream(stream, event, { streamState: NO_STREAM });
      assert.equal(retry.nextExpectedRevision, first.nextExpectedRevision);
      let count = 0;
      for await (const _ of client.readStream(stream)) count++;
      assert.equal(count, 1);
    } finally {
      await client.dispose();
    }
  });
});

void describe('KurrentDB adapter: several writers (gateway replicas) on one database', { timeout: 180_000 }, () => {
  let connectionString = '';

  before(async () => {
    if (availability.available) connectionString = (await kurrentdb()).connectionString;
  });

  void it('two writers appending concurrently to their own streams: nothing refused, every acknowledged event read back once at its position, the whole log verifies', { skip }, async () => {
    const config = configFor(connectionString);
    const a = await openKurrentLog(config);
    const b = await openKurrentLog(config);
    const reader = await openKurrentLogReader(config);
    try {
      await appendFromTwoWriters([a, b], reader);
    } finally {
      await reader.close();
      await a.close();
      await b.close();
    }
  });
});
