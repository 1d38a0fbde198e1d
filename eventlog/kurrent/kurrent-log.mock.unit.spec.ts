/**
 * The KurrentDB adapter against an in-memory fake of the client calls it makes (fake-kurrentdb.ts):
 * KurrentDB cannot run on this machine, so these specs prove the adapter's own mapping — expected
 * revisions, event ids, rollback, filters, positions, dedupe — and the real server's behaviour is
 * left to kurrent-log.int.spec.ts under testcontainers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnavailableError } from '@kurrent/kurrentdb-client';
import type { EventDraft } from '#schemas';
import { digestOf, eventHash } from '#schemas';
import type { EventLogLogger } from '../logger.ts';
import { LogUnavailableError } from '../port.ts';
import type { KurrentPosition, LogCursor, StoredEvent } from '../port.ts';
import { cursorOf } from '../cursor.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { appendFromTwoWriters } from '../several-writers.ts';
import { FakeKurrentDB } from './fake-kurrentdb.ts';
import { openKurrentLog, openKurrentLogReader } from './kurrent-log.ts';
import type { KurrentEventLog } from './kurrent-log.ts';
import { escapeRegex } from './kurrent-records.ts';
import { testEventLog } from '../contract.ts';

const MOCK = '(mock KurrentDB — cannot run here)';
const PREFIX = 'attest-t-';

interface Logged {
  readonly level: 'info' | 'warn' | 'error';
  readonly details: object;
  readonly message: string;
}

function recordingLogger(): EventLogLogger & { readonly lines: Logged[] } {
  const lines: Logged[] = [];
  return {
    lines,
    info: (details, message) => lines.push({ level: 'info', details, message }),
    warn: (details, message) => lines.push({ level: 'warn', details, message }),
    error: (details, message) => lines.push({ level: 'error', details, message }),
  };
}

async function open(server: FakeKurrentDB, options: { logger?: EventLogLogger; appendTimeoutMs?: number; maxQueuedBytes?: number } = {}): Promise<KurrentEventLog> {
  return openKurrentLog(
    { backend: 'kurrent', connectionString: 'kurrentdb://fake:2113?tls=false', streamPrefix: PREFIX, appendTimeoutMs: options.appendTimeoutMs ?? 2_000, ...(options.maxQueuedBytes !== undefined && { maxQueuedBytes: options.maxQueuedBytes }) },
    { connect: () => server.client(), ...(options.logger !== undefined && { logger: options.logger }) },
  );
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

function isLogError(code: string, pattern?: RegExp): (error: unknown) => boolean {
  return (error: unknown) => error instanceof LogUnavailableError && error.code === code && (pattern === undefined || pattern.test(error.message));
}

function appendsTo(server: FakeKurrentDB, stream: string): readonly { readonly streamState: unknown; readonly ids: readonly string[] }[] {
  return server.appends.filter((append) => append.stream === PREFIX + stream);
}

void describe(`KurrentDB adapter ${MOCK}`, () => {
  void it(`appends with the exact expected revision: no_stream for seq 1, then revision seq − 2 ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    await log.append([sampleDraft('exp-a', 0)]);
    await log.append([sampleDraft('exp-a', 1), sampleDraft('exp-a', 2)]);
    await log.append([sampleDraft('exp-b', 0), sampleDraft('exp-a', 3)]);
    assert.deepEqual(
      appendsTo(server, 'exp-a').map((append) => append.streamState),
      ['no_stream', 0n, 2n],
      'seq 1 → no_stream; seq 2–3 → revision 0; seq 4 → revision 2',
    );
    assert.deepEqual(
      appendsTo(server, 'exp-b').map((append) => append.streamState),
      ['no_stream'],
    );
    const stored = server.streams.get(`${PREFIX}exp-a`) ?? [];
    assert.deepEqual(
      stored.map((record) => [record.revision, (JSON.parse(record.json) as { seq: number }).seq]),
      [
        [0n, 1],
        [1n, 2],
        [2n, 3],
        [3n, 4],
      ],
      'seq n sits at revision n − 1',
    );
    assert.ok(
      server.appends.every((append) => append.streamState !== 'any'),
      'never expected state any',
    );
    await log.close();
  });

  void it(`uses Attest's event id as the KurrentDB event id, and continues the chain (no fork) after an acknowledgement is lost ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    const first = sampleDraft('ids', 0);
    const [stored] = await log.append([first]);
    assert.deepEqual(appendsTo(server, 'ids')[0]?.ids, [first.id]);
    assert.equal(server.streams.get(`${PREFIX}ids`)?.[0]?.id, stored?.event.id);

    // The server writes the event but the acknowledgement never arrives.
    server.failNextAppend(`${PREFIX}ids`, new UnavailableError(undefined, 'connection reset'), { afterWrite: true });
    const lost = sampleDraft('ids', 1);
    await assert.rejects(log.append([lost]), isLogError('ATTEST_LOG_UNAVAILABLE', /connection reset/));
    assert.equal(log.head('ids').seq, 1, 'not acknowledged: the head stays at the last acknowledged event');

    // The next append reads the head again and chains onto the event that did land.
    const [next] = await log.append([sampleDraft('ids', 2)]);
    const landed = server.streams.get(`${PREFIX}ids`)?.[1];
    assert.equal(landed?.id, lost.id);
    assert.equal(next?.event.seq, 3);
    assert.equal(next?.event.prevHash, (JSON.parse(landed?.json ?? '{}') as { hash: string }).hash);
    assert.deepEqual(appendsTo(server, 'ids').at(-1)?.streamState, 1n);
    await log.close();
  });

  void it(`refuses a stale head with WrongExpectedVersion (two writers, one stream): names the stream, rolls back, re-reads the head ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const gatewayA = await open(server);
    const gatewayB = await open(server);
    await gatewayB.append([sampleDraft('shared', 0)]);
    await gatewayA.append([sampleDraft('shared', 1)]);
    const headBefore = gatewayB.head('shared');
    assert.equal(headBefore.seq, 1, 'B does not know of A’s event');

    const [stale, other] = await Promise.allSettled([gatewayB.append([sampleDraft('shared', 2)]), gatewayB.append([sampleDraft('other', 0)])]);
    assert.equal(stale.status, 'rejected');
    assert.ok(isLogError('ATTEST_LOG_UNAVAILABLE', new RegExp(`stream ${escapeRegex(`${PREFIX}shared`)}.*revision 0.*revision 1`))(stale.reason), String(stale.status === 'rejected' && stale.reason));
    assert.equal(other.status, 'fulfilled', 'the other stream of the same batch was written');
    assert.deepEqual(gatewayB.head('shared'), headBefore, 'rolled back to the last acknowledged event');

    const [retry] = await gatewayB.append([sampleDraft('shared', 3)]);
    assert.equal(retry?.event.seq, 3, 'chains after A’s event once the head was read again');
    const chain = await collect(gatewayB.read({ stream: 'shared' }));
    assert.deepEqual(
      chain.map((s) => s.event.seq),
      [1, 2, 3],
    );
    chain.forEach((s, i) => assert.equal(s.event.prevHash, i === 0 ? null : chain[i - 1]?.event.hash));
    await gatewayA.close();
    await gatewayB.close();
  });

  void it(`fails a call spanning two streams closed when one append fails: the written stream keeps its event, the other head is rolled back, the partial write is logged ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const logger = recordingLogger();
    const log = await open(server, { logger });
    await log.append([sampleDraft('span-a', 0), sampleDraft('span-b', 0)]);
    server.failNextAppend(`${PREFIX}span-b`, new UnavailableError(undefined, 'leader lost'));
    const drafts = [sampleDraft('span-a', 1), sampleDraft('span-b', 1)];
    await assert.rejects(log.append(drafts), isLogError('ATTEST_LOG_UNAVAILABLE', /written only in part.*span-a.*span-b.*leader lost/s));
    assert.equal(log.head('span-a').seq, 2, 'span-a was acknowledged');
    assert.equal(log.head('span-b').seq, 1, 'span-b rolled back');
    const partial = logger.lines.find((line) => line.level === 'error' && /partial write/.test(line.message));
    assert.ok(partial, 'the partial write is logged for the reconciler');
    assert.deepEqual(
      (partial.details as { writtenEvents: { id: string }[] }).writtenEvents.map((event) => event.id),
      [drafts[0]?.id],
    );
    const [next] = await log.append([sampleDraft('span-b', 2)]);
    assert.equal(next?.event.seq, 2);
    assert.deepEqual(appendsTo(server, 'span-b').at(-1)?.streamState, 0n);
    await log.close();
  });

  void it(`gives every event its own $all position: index = commit position, revision = seq − 1; a multi-event append reads its positions back ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    const acked = [...(await log.append([sampleDraft('pos-x', 0), sampleDraft('pos-x', 1), sampleDraft('pos-x', 2)])), ...(await log.append([sampleDraft('pos-y', 0)]))];
    const fakePositions = acked.map((s) => server.records.find((record) => record.id === s.event.id)?.position.commit);
    assert.deepEqual(
      acked.map((s) => BigInt(s.position.index)),
      fakePositions,
    );
    assert.deepEqual(
      acked.map((s) => [s.position.stream, s.position.revision, s.position.commit === s.position.prepare]),
      [
        [`${PREFIX}pos-x`, '0', true],
        [`${PREFIX}pos-x`, '1', true],
        [`${PREFIX}pos-x`, '2', true],
        [`${PREFIX}pos-y`, '0', true],
      ],
    );
    assert.ok((acked[1]?.position.index ?? 0) - (acked[0]?.position.index ?? 0) > 1, 'positions are byte offsets, not contiguous');
    const read = await collect(log.read());
    assert.deepEqual(
      read.map((s) => s.position),
      acked.map((s) => s.position),
      'acknowledged positions are where reads find the events',
    );
    await log.close();
  });

  void it(`reads $all with a server-side filter on the prefix, or an exact regex for one stream, never yielding system or foreign records ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    for (const [stream, n] of [
      ['f-1', 0],
      ['f-10', 0],
      ['f-2', 0],
      ['f-1', 1],
    ] as const) {
      await log.append([sampleDraft(stream, n)]);
    }
    server.readAllCalls.length = 0;
    const all = await collect(log.read());
    assert.equal(all.length, 4, 'the fake also holds $settings, $stats and another application’s stream');
    assert.deepEqual(server.readAllCalls[0]?.filter, { filterOn: 'streamName', prefixes: [PREFIX], checkpointInterval: 1, checkpointReached: undefined });
    assert.equal(server.readAllCalls[0]?.fromPosition, 'start');

    const one = await collect(log.read({ stream: 'f-1' }));
    assert.deepEqual(
      one.map((s) => [s.event.stream, s.event.seq]),
      [
        ['f-1', 1],
        ['f-1', 2],
      ],
      'f-1 only, not f-10',
    );
    const regex = (server.readAllCalls[1]?.filter as { regex?: string } | undefined)?.regex;
    assert.ok(regex !== undefined && new RegExp(regex).test(`${PREFIX}f-1`) && !new RegExp(regex).test(`${PREFIX}f-10`), `exact stream regex, got ${regex}`);
    assert.ok(!new RegExp(regex).test(`${PREFIX}fx1`), 'regex metacharacters in the name are escaped');
    await log.close();
  });

  void it(`refuses a record that is not where Attest put it (wrong revision, not an event) as ATTEST_LOG_CORRUPT naming it ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    const [first] = await log.append([sampleDraft('tamper', 0)]);
    // A foreign writer copies the event to the start of another stream of the log: revision 0, seq 1 —
    // valid — then appends it again at revision 1, where seq 1 does not belong.
    server.appendRaw(`${PREFIX}copy`, first?.event.type ?? '', { ...first?.event, stream: 'copy' }, crypto.randomUUID());
    await assert.rejects(collect(log.read()), isLogError('ATTEST_LOG_CORRUPT'), 'a copy under a different KurrentDB id is refused');
    const intruder = server.appendRaw(`${PREFIX}junk`, 'Whatever', { hello: 'world' });
    await assert.rejects(collect(log.read({ stream: 'junk' })), isLogError('ATTEST_LOG_CORRUPT', new RegExp(`${intruder.id}.*${escapeRegex(`${PREFIX}junk`)}.*not an Attest event`)));
    const shifted = { ...sampleDraft('shift', 0), seq: 5, prevHash: null };
    const sealed = { ...shifted, hash: eventHash({ ...shifted, hash: '' }) };
    server.appendRaw(`${PREFIX}shift`, sealed.type, sealed, sealed.id);
    await assert.rejects(collect(log.read({ stream: 'shift' })), isLogError('ATTEST_LOG_CORRUPT', /revision 0 of its stream but has seq 5/));
    await log.close();
  });

  void it(`drops re-delivered events by event id while following ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    server.redeliver = true;
    const log = await open(server);
    for (let i = 0; i < 4; i++) await log.append([sampleDraft('dup', i)]);
    const controller = new AbortController();
    const seen: StoredEvent<KurrentPosition>[] = [];
    for await (const stored of log.follow({ signal: controller.signal })) {
      seen.push(stored);
      if (seen.length === 4) {
        await log.append([sampleDraft('dup', 4)]);
      }
      if (seen.length === 5) controller.abort();
    }
    assert.deepEqual(
      seen.map((s) => s.event.seq),
      [1, 2, 3, 4, 5],
      'each event once, though the server delivered each twice',
    );
    await log.close();
  });

  void it(`follows after a cursor: the events after it, then live appends, with the same filter; ends on abort ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    const acked: StoredEvent<KurrentPosition>[] = [];
    for (let i = 0; i < 3; i++) acked.push(...(await log.append([sampleDraft('fol', i)])));
    const controller = new AbortController();
    const seen: number[] = [];
    const following = (async () => {
      for await (const stored of log.follow({ after: cursorOf(acked[0] as StoredEvent), signal: controller.signal })) seen.push(stored.event.seq);
    })();
    await log.append([sampleDraft('fol', 3)]);
    await waitUntil(() => seen.length === 3);
    controller.abort();
    await following;
    assert.deepEqual(seen, [2, 3, 4]);
    const subscription = server.subscribeCalls.at(-1);
    assert.deepEqual(subscription?.filter, { filterOn: 'streamName', prefixes: [PREFIX], checkpointInterval: 1, checkpointReached: undefined });
    assert.deepEqual(subscription?.fromPosition, { commit: BigInt(acked[0]?.position.commit ?? ''), prepare: BigInt(acked[0]?.position.prepare ?? '') }, "anchored on the cursor's event (a subscription starts after its position)");
    await log.close();
  });

  void it(`reads after a cursor it handed out; a cursor whose position holds no such event is ATTEST_CURSOR_INVALID ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    const acked: StoredEvent<KurrentPosition>[] = [];
    for (let i = 0; i < 5; i++) acked.push(...(await log.append([sampleDraft(`idx-${i % 2}`, i)])));
    const after = cursorOf(acked[1] as StoredEvent);
    assert.deepEqual(
      (await collect(log.read({ after }))).map((s) => s.event.id),
      acked.slice(2).map((s) => s.event.id),
    );
    assert.deepEqual(
      (await collect(log.read({ after, stream: 'idx-1' }))).map((s) => s.event.id),
      [acked[3]?.event.id],
    );
    const position = acked[2]?.position as KurrentPosition;
    const between = `kurrent:${BigInt(position.commit) + 1n}:${BigInt(position.prepare) + 1n}:${(acked[2] as StoredEvent).event.hash.slice(0, 16)}` as LogCursor;
    await assert.rejects(collect(log.read({ after: between })), isLogError('ATTEST_CURSOR_INVALID', /does not match the log/));
    await log.close();
  });

  void it(`opens with heads and size from one filtered pass over $all, and confirms a stream's head on the server before its first append ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    let log = await open(server);
    for (let i = 0; i < 9; i++) await log.append([sampleDraft(`open-${i % 3}`, i)]);
    const before = log.head('open-2');
    await log.close();
    server.readStreamCalls.length = 0;
    log = await open(server);
    assert.equal(log.size(), 9);
    assert.deepEqual(log.head('open-2'), before);
    assert.equal(server.readStreamCalls.length, 0, 'no head is read before it is needed');
    await log.append([sampleDraft('open-2', 9)]);
    await log.append([sampleDraft('open-2', 10)]);
    assert.deepEqual(
      server.readStreamCalls.map((call) => [call.stream, call.options.direction, call.options.fromRevision, call.options.maxCount]),
      [[`${PREFIX}open-2`, 'backwards', 'end', 1]],
      'one backwards read of one event, once per stream per process',
    );
    assert.equal(log.size(), 11);
    await log.close();
  });

  void it(`groups concurrent appends into one append per stream per batch, chained in call order ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    for (let s = 0; s < 3; s++) await log.append([sampleDraft(`grp-${s}`, 0)]);
    const before = server.appends.length;
    const calls = Array.from({ length: 60 }, (_, c) => [sampleDraft(`grp-${c % 3}`, c)]);
    const results = await Promise.all(calls.map((drafts) => log.append(drafts)));
    assert.ok(server.appends.length - before <= 6, `60 calls took ${server.appends.length - before} appends`);
    for (let s = 0; s < 3; s++) {
      const seqs = results.filter((_, c) => c % 3 === s).map((stored) => stored[0]?.event.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: 20 }, (_, i) => i + 2),
        `grp-${s} in call order`,
      );
    }
    await log.close();
  });

  void it(`times out with ATTEST_LOG_TIMEOUT when KurrentDB does not answer, and rejects appends after close with ATTEST_LOG_CLOSED ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server, { appendTimeoutMs: 150 });
    await log.append([sampleDraft('slow', 0)]);
    const release = server.holdAppends();
    const started = performance.now();
    await assert.rejects(log.append([sampleDraft('slow', 1)]), isLogError('ATTEST_LOG_TIMEOUT', /150 ms/));
    assert.ok(performance.now() - started < 1_000);
    release();
    await log.close();
    await assert.rejects(log.append([sampleDraft('slow', 2)]), isLogError('ATTEST_LOG_CLOSED'));
  });

  void it(`refuses at once with ATTEST_LOG_BUSY while maxQueuedBytes wait for a stalled server, timed-out appends included, and accepts again once it answers ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server, { appendTimeoutMs: 150, maxQueuedBytes: 1024 * 1024 });
    await log.append([sampleDraft('busy', 0)]);
    const release = server.holdAppends();
    // ~400 KB of recorded arguments per call: the third one in waiting takes the queue past 1 MiB.
    const big = (n: number): EventDraft => {
      const draft = sampleDraft('busy', 0);
      if (draft.type !== 'RequestReceived') throw new Error('sampleDraft(_, 0) is a request');
      const body = { text: 'x'.repeat(400_000), n };
      return { ...draft, data: { ...draft.data, params: { recording: 'full', digest: digestOf(body), bytes: 400_020, body } } };
    };
    const outcomes = await Promise.all([1, 2, 3, 4].map((n) => log.append([big(n)]).then(() => 'ok', (error: unknown) => error)));
    assert.deepEqual(outcomes.slice(0, 3).map((o) => (o as { code?: string }).code), ['ATTEST_LOG_TIMEOUT', 'ATTEST_LOG_TIMEOUT', 'ATTEST_LOG_TIMEOUT'], 'admitted, then timed out while the server stalls');
    assert.ok(isLogError('ATTEST_LOG_BUSY', /MiB waiting for the server \(log\.maxQueuedBytes: 1\.0 MiB\): refused at once, nothing was written/)(outcomes[3]), String(outcomes[3]));
    await assert.rejects(log.append([big(5)]), isLogError('ATTEST_LOG_BUSY'), 'timed-out appends still hold their bytes');
    release();
    for (let i = 0; i < 100 && log.stats().pendingBytes > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(log.stats().pendingBytes, 0);
    const [next] = await log.append([sampleDraft('busy', 9)]);
    assert.equal(next?.event.seq, 5, 'the timed-out appends were written after all; nothing refused was sealed');
    await log.close();
  });

  void it(`rejects an invalid draft with ATTEST_EVENT_INVALID before anything is written ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    const bad = { ...sampleDraft('inv', 1), occurredAt: 'yesterday' } as EventDraft;
    await assert.rejects(log.append([sampleDraft('inv', 0), bad]), (error: unknown) => (error as { code?: string }).code === 'ATTEST_EVENT_INVALID');
    assert.equal(appendsTo(server, 'inv').length, 0);
    const [first] = await log.append([sampleDraft('inv', 2)]);
    assert.equal(first?.event.seq, 1);
    await log.close();
  });

  void it(`fails to open with ATTEST_LOG_UNAVAILABLE naming the server without its credentials ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const refusing = server.client();
    await refusing.dispose();
    await assert.rejects(
      openKurrentLog({ backend: 'kurrent', connectionString: 'kurrentdb://admin:changeit@db-1:2113?tls=true', streamPrefix: PREFIX, appendTimeoutMs: 1_000 }, { connect: () => refusing }),
      (error: unknown) => isLogError('ATTEST_LOG_UNAVAILABLE', /kurrentdb:\/\/\*\*\*@db-1:2113/)(error) && !(error as Error).message.includes('changeit'),
    );
  });

  void it(`a reader reads and follows without writing ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const log = await open(server);
    for (let i = 0; i < 3; i++) await log.append([sampleDraft('rdr', i)]);
    const reader = await openKurrentLogReader({ backend: 'kurrent', connectionString: 'kurrentdb://fake:2113', streamPrefix: PREFIX, appendTimeoutMs: 1_000 }, { connect: () => server.client() });
    assert.equal(reader.backend, 'kurrent');
    assert.deepEqual(
      (await collect(reader.read())).map((s) => s.event.seq),
      [1, 2, 3],
    );
    const appendsBefore = server.appends.length;
    await reader.close();
    assert.equal(server.appends.length, appendsBefore);
    await log.close();
  });
});

async function waitUntil(condition: () => boolean, ms = 5_000): Promise<void> {
  const until = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// The one contract suite, against the in-memory fake: checks the adapter's side of the contract
// here; the same suite runs against a real KurrentDB in kurrent-log.int.spec.ts where containers run.
testEventLog(`kurrent ${MOCK}`, async () => {
  const server = new FakeKurrentDB();
  return {
    open: () => open(server),
    openReader: () => openKurrentLogReader({ backend: 'kurrent', connectionString: 'kurrentdb://fake:2113?tls=false', streamPrefix: PREFIX }, { connect: () => server.client() }),
    appendWritten: async (records) => {
      for (const record of records) server.appendRaw(PREFIX + String(record['stream']), String(record['type']), record, String(record['id']));
    },
    dispose: async () => undefined,
  };
}, { contiguousIndex: false, totalCallOrder: false });

void describe(`KurrentDB adapter: two writers (gateway replicas) on one database ${MOCK}`, () => {
  void it(`two writers appending concurrently to their own streams: nothing refused, every event read back once at its position, the whole log verifies ${MOCK}`, async () => {
    const server = new FakeKurrentDB();
    const [a, b] = [await open(server), await open(server)];
    const reader = await openKurrentLogReader({ backend: 'kurrent', connectionString: 'kurrentdb://fake:2113', streamPrefix: PREFIX, appendTimeoutMs: 1_000 }, { connect: () => server.client() });
    try {
      await appendFromTwoWriters([a, b], reader, { appends: 400 });
    } finally {
      await reader.close();
      await a.close();
      await b.close();
    }
  });
});
