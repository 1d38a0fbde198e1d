/**
 * The EventLog contract: one suite every adapter must pass (file now; Kafka and KurrentDB later),
 * so the gateway can rely on the port alone. Run it from an adapter's spec file:
 *
 *   testEventLog('file', async () => ({ open: () => openFileLog({ dir }), dispose: () => rm(dir, …) }));
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestEventSchema, eventHash } from '#schemas';
import type { EventDraft } from '#schemas';
import { cursorOf } from './cursor.ts';
import type { EventLog, EventLogReader, LogCursor, LogEntry, StoredEvent } from './port.ts';
import { InvalidEventError, LogUnavailableError } from './port.ts';
import { sampleDraft } from './sample-drafts.ts';
import { verifyLog } from './verify.ts';

export interface EventLogHarness {
  /** Opens the log on this harness's storage; called again after close() to reopen the same storage. */
  open(): Promise<EventLog>;
  /** A read-only reader of the same storage, as another process opens it. */
  openReader(): Promise<EventLogReader>;
  /**
   * Appends records as another writer would have written them (a newer version, say): each a
   * sealed event as a JSON object, stored as is. Called while no log of the harness is open.
   */
  appendWritten(records: readonly Readonly<Record<string, unknown>>[]): Promise<void>;
  /** Removes the storage and anything the harness started. */
  dispose(): Promise<void>;
}

/** Makes fresh, empty storage for one test. */
export type EventLogFactory = () => Promise<EventLogHarness>;

/**
 * What a backend's log order promises beyond per-stream order. File and Kafka (one partition):
 * contiguous indexes and one total order in call order. KurrentDB appends per stream: its $all
 * positions increase but have gaps, and events of different streams in flight at once may commit
 * in any order, so a call spanning streams is neither contiguous nor atomic.
 */
export interface LogOrderTraits {
  /** Indexes are 0, 1, 2 … with no gaps. */
  readonly contiguousIndex: boolean;
  /** Log order across streams is call order, and one call's events are contiguous. */
  readonly totalCallOrder: boolean;
}

const TOTAL_ORDER: LogOrderTraits = { contiguousIndex: true, totalCallOrder: true };

interface Given {
  readonly log: EventLog;
  /** Closes the log and opens it again on the same storage. */
  reopen(): Promise<EventLog>;
}

const TEST_TIMEOUT_MS = 120_000;

export function testEventLog(name: string, factory: EventLogFactory, traits: LogOrderTraits = TOTAL_ORDER): void {
  const increasing = (indexes: readonly number[]): boolean => indexes.every((index, i) => i === 0 || index > (indexes[i - 1] as number));
  async function given(run: (context: Given) => Promise<void>): Promise<void> {
    const harness = await factory();
    let log = await harness.open();
    const context: Given = {
      get log() {
        return log;
      },
      async reopen() {
        await log.close();
        log = await harness.open();
        return log;
      },
    };
    try {
      await run(context);
    } finally {
      try {
        await log.close();
      } finally {
        await harness.dispose();
      }
    }
  }

  void describe(`EventLog contract: ${name}`, { timeout: TEST_TIMEOUT_MS }, () => {
    void it('acknowledges appends with sealed events and positions, and reads back exactly those (valid per the event schema)', () =>
      given(async ({ log }) => {
        const acked = [...(await log.append([sampleDraft('s-a', 0)])), ...(await log.append([sampleDraft('s-a', 1), sampleDraft('s-b', 0)])), ...(await log.append([sampleDraft('s-c', 0)]))];
        const indexes = acked.map((s) => s.position.index);
        if (traits.contiguousIndex) assert.deepEqual(indexes, [0, 1, 2, 3]);
        else assert.ok(increasing(indexes), `indexes increase: ${indexes.join(', ')}`);
        assert.ok(acked.every((s) => s.position.backend === log.backend));
        const read = await collect(log.read());
        assert.equal(read.length, 4);
        for (let i = 0; i < read.length; i++) {
          const stored = read[i] as StoredEvent;
          assert.deepEqual(AttestEventSchema.parse(stored.event), stored.event, 'what comes back is a valid event');
          assert.deepEqual(stored.event, (acked[i] as StoredEvent).event);
          assert.deepEqual(stored.position, (acked[i] as StoredEvent).position);
          assert.equal(eventHash(stored.event), stored.event.hash, 'hash = SHA-256 of the canonical event without hash');
        }
      }));

    void it('chains every stream: seq 1, 2, 3 … and prevHash = the previous event’s hash, across many interleaved streams', () =>
      given(async ({ log }) => {
        const streams = Array.from({ length: 30 }, (_, i) => `chain-${i}`);
        for (let round = 0; round < 8; round++) {
          for (const [i, stream] of streams.entries()) {
            // Mix single and multi-event calls, some spanning two streams.
            const drafts = i % 4 === 0 ? [sampleDraft(stream, round), sampleDraft(streams[(i + 1) % streams.length] as string, 100 + round)] : [sampleDraft(stream, round)];
            await log.append(drafts);
          }
        }
        const byStream = groupByStream(await collect(log.read()));
        assert.equal(byStream.size, streams.length);
        for (const [stream, events] of byStream) {
          events.forEach((stored, i) => {
            assert.equal(stored.event.seq, i + 1, `${stream} seq`);
            assert.equal(stored.event.prevHash, i === 0 ? null : (events[i - 1] as StoredEvent).event.hash, `${stream} prevHash at seq ${i + 1}`);
          });
        }
        const verdict = await verifyLog(log.read());
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
      }));

    void it('makes 2,000 appends from 50 concurrent callers durable, chained and ordered as they were called', () =>
      given(async ({ log }) => {
        const callOrder: string[] = [];
        const acked = new Map<string, readonly StoredEvent[]>();
        const caller = async (c: number): Promise<void> => {
          for (let k = 0; k < 40; k++) {
            const draft = sampleDraft(`conc-${(c * 7 + k) % 25}`, k);
            callOrder.push(draft.id);
            acked.set(draft.id, await log.append([draft]));
          }
        };
        await Promise.all(Array.from({ length: 50 }, (_, c) => caller(c)));
        assert.equal(acked.size, 2000);
        assert.equal(log.size(), 2000);
        const indexes = callOrder.map((id) => (acked.get(id)?.[0] as StoredEvent).position.index);
        const read = await collect(log.read());
        assert.equal(read.length, 2000);
        if (traits.totalCallOrder) {
          if (traits.contiguousIndex) assert.deepEqual(indexes, indexes.map((_, i) => i), 'log order is call order');
          else assert.ok(increasing(indexes), 'log order is call order');
          assert.deepEqual(
            read.map((s) => s.event.id),
            callOrder,
          );
        }
        for (const events of groupByStream(read).values()) {
          assert.deepEqual(
            events.map((s) => s.event.seq),
            events.map((_, i) => i + 1),
          );
        }
        const verdict = await verifyLog(log.read());
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
        assert.equal(verdict.eventsChecked, 2000);
      }));

    void it('keeps the events of one append together in the log, however many callers append at once', traits.totalCallOrder ? {} : { skip: `${name} does not promise it: its appends are per stream` }, () =>
      given(async ({ log }) => {
        const calls = Array.from({ length: 300 }, (_, c) => Array.from({ length: 1 + (c % 5) }, (__, k) => sampleDraft(`batch-${(c + k) % 7}`, k)));
        const results = await Promise.all(calls.map((drafts) => log.append(drafts)));
        for (const [c, stored] of results.entries()) {
          assert.equal(stored.length, (calls[c] as EventDraft[]).length);
          const first = (stored[0] as StoredEvent).position.index;
          assert.deepEqual(
            stored.map((s) => s.position.index),
            stored.map((_, i) => first + i),
            `call ${c} is contiguous`,
          );
          assert.deepEqual(
            stored.map((s) => s.event.id),
            (calls[c] as EventDraft[]).map((d) => d.id),
          );
        }
        const verdict = await verifyLog(log.read());
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
      }));

    void it('reads after a cursor, and one stream only; a cursor at the last event reads nothing', () =>
      given(async ({ log }) => {
        const acked: StoredEvent[] = [];
        for (let i = 0; i < 30; i++) acked.push(...(await log.append([sampleDraft(`read-${i % 3}`, Math.floor(i / 3))])));
        const all = await collect(log.read());
        const after19 = await collect(log.read({ after: cursorOf(all[19] as StoredEvent) }));
        assert.deepEqual(
          after19.map((s) => s.event.id),
          acked.slice(20).map((s) => s.event.id),
        );
        const one = await collect(log.read({ stream: 'read-1' }));
        assert.equal(one.length, 10);
        assert.ok(one.every((s) => s.event.stream === 'read-1'));
        assert.deepEqual(
          one.map((s) => s.event.seq),
          Array.from({ length: 10 }, (_, i) => i + 1),
        );
        // A cursor taken anywhere (here on another stream's event) resumes any read after it.
        const oneAfter19 = await collect(log.read({ stream: 'read-2', after: cursorOf(all[19] as StoredEvent) }));
        assert.deepEqual(
          oneAfter19.map((s) => s.event.id),
          acked.slice(20).filter((s) => s.event.stream === 'read-2').map((s) => s.event.id),
        );
        assert.deepEqual(await collect(log.read({ after: cursorOf(all[29] as StoredEvent) })), []);
        // The cursor of an acknowledgement is the cursor of the event read back.
        assert.equal(cursorOf(acked[7] as StoredEvent), cursorOf(all[7] as StoredEvent));
      }));

    void it('resumes exactly: reading on from each batch’s last cursor gives the whole log once, in order', () =>
      given(async ({ log }) => {
        for (let i = 0; i < 25; i++) await log.append([sampleDraft(`resume-${i % 4}`, i), sampleDraft(`resume-${(i + 1) % 4}`, 100 + i)]);
        const whole = (await collect(log.read())).map((s) => s.event.id);
        const pieced: string[] = [];
        let after: LogCursor | undefined;
        for (let round = 0; round < 100; round++) {
          const batch = await collect(take(log.read(after === undefined ? {} : { after }), 7));
          if (batch.length === 0) break;
          pieced.push(...batch.map((s) => s.event.id));
          after = cursorOf(batch.at(-1) as StoredEvent);
        }
        assert.deepEqual(pieced, whole);
      }));

    void it('refuses a cursor that is malformed, of another backend, or no longer matches the log (ATTEST_CURSOR_INVALID)', () =>
      given(async ({ log }) => {
        for (let i = 0; i < 4; i++) await log.append([sampleDraft('cursor', i)]);
        const [, second] = await collect(log.read());
        const good = cursorOf(second as StoredEvent);
        const invalid = (pattern: RegExp) => (error: unknown): boolean => error instanceof LogUnavailableError && error.code === 'ATTEST_CURSOR_INVALID' && pattern.test(error.message);
        await assert.rejects(collect(log.read({ after: 'nonsense' as LogCursor })), invalid(/not a cursor of this/));
        const other = log.backend === 'file' ? 'kafka:t:0:1:0123456789abcdef' : 'file:1:0:0:0123456789abcdef';
        await assert.rejects(collect(log.read({ after: other as LogCursor })), invalid(/not a cursor of this/));
        await assert.rejects(collect(log.read({ after: `${good.slice(0, good.lastIndexOf(':') + 1)}zz` as LogCursor })), invalid(/malformed/));
        // Same position, another event: the log was rewritten since the cursor was taken.
        const flipped = `${good.slice(0, -1)}${good.endsWith('0') ? '1' : '0'}` as LogCursor;
        await assert.rejects(collect(log.read({ after: flipped })), invalid(/does not match the log/));
        await assert.rejects(collect(log.follow({ after: flipped, signal: AbortSignal.timeout(10_000) })), invalid(/does not match the log/));
      }));

    void it('follows: yields what is there, then later appends as they become durable, and stops when aborted', () =>
      given(async ({ log }) => {
        const acked: StoredEvent[] = [];
        for (let i = 0; i < 3; i++) acked.push(...(await log.append([sampleDraft('follow', i)])));
        const controller = new AbortController();
        const seen: StoredEvent[] = [];
        let notify: (() => void) | undefined;
        const following = (async () => {
          for await (const stored of log.follow({ after: cursorOf(acked[0] as StoredEvent), signal: controller.signal })) {
            seen.push(stored);
            notify?.();
          }
        })();
        const waitFor = (count: number): Promise<void> =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`follow saw ${seen.length} events, expected ${count}`)), 20_000);
            const check = (): void => {
              if (seen.length >= count) {
                clearTimeout(timer);
                resolve();
              }
            };
            notify = check;
            check();
          });
        await waitFor(2);
        for (let i = 3; i < 8; i++) acked.push(...(await log.append([sampleDraft('follow', i)])));
        for (const stored of await Promise.all([log.append([sampleDraft('follow-b', 0)]), log.append([sampleDraft('follow-b', 1)])])) acked.push(...stored);
        await waitFor(9);
        controller.abort();
        await withTimeout(following, 10_000, 'follow did not stop after abort');
        assert.deepEqual(
          seen.map((s) => s.position.index),
          acked
            .slice(1)
            .map((s) => s.position.index)
            .sort((a, b) => a - b),
        );
        if (traits.contiguousIndex) assert.deepEqual(seen.map((s) => s.position.index), Array.from({ length: 9 }, (_, i) => 1 + i));
        // An aborted follow does not hold the log: appends go on, and a new follow sees them.
        const [latest] = await log.append([sampleDraft('follow', 8)]);
        const late = new AbortController();
        const everything = await collect(log.read());
        const previous = everything[everything.findIndex((s) => s.event.id === latest?.event.id) - 1];
        const first = await withTimeout(firstOf(log.follow({ after: cursorOf(previous as StoredEvent), signal: late.signal })), 10_000, 'a new follow saw nothing');
        late.abort();
        assert.equal(first?.event.id, latest?.event.id);
      }));

    void it('reports the durable head of each stream and the size of the log', () =>
      given(async ({ log }) => {
        assert.deepEqual(log.head('nobody'), { seq: 0, hash: null });
        assert.equal(log.size(), 0);
        const [a1] = await log.append([sampleDraft('head-a', 0)]);
        const [, a2] = await log.append([sampleDraft('head-b', 0), sampleDraft('head-a', 1)]);
        assert.deepEqual(log.head('head-a'), { seq: 2, hash: a2?.event.hash });
        assert.equal(log.head('head-b').seq, 1);
        assert.notEqual(a1?.event.hash, a2?.event.hash);
        assert.equal(log.size(), 3);
      }));

    void it('keeps heads and size across close and reopen: new appends continue each chain', () =>
      given(async (context) => {
        let last = -1;
        for (let i = 0; i < 12; i++) last = (await context.log.append([sampleDraft(`reopen-${i % 4}`, i)]))[0]?.position.index ?? last;
        const before = context.log.head('reopen-2');
        const log = await context.reopen();
        assert.equal(log.size(), 12);
        assert.deepEqual(log.head('reopen-2'), before);
        const [next] = await log.append([sampleDraft('reopen-2', 99)]);
        assert.equal(next?.event.seq, before.seq + 1);
        assert.equal(next?.event.prevHash, before.hash);
        if (traits.contiguousIndex) assert.equal(next?.position.index, 12);
        else assert.ok((next?.position.index ?? -1) > last, 'the index after reopen continues the order');
        const verdict = await verifyLog(log.read());
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
        assert.equal(verdict.eventsChecked, 13);
      }));

    void it('rejects appends after close with ATTEST_LOG_CLOSED, writing nothing', () =>
      given(async (context) => {
        await context.log.append([sampleDraft('closed', 0)]);
        await context.log.close();
        await assert.rejects(context.log.append([sampleDraft('closed', 1)]), (error: unknown) => error instanceof LogUnavailableError && error.code === 'ATTEST_LOG_CLOSED');
        const log = await context.reopen();
        assert.equal(log.size(), 1);
        assert.equal(log.head('closed').seq, 1);
      }));

    void it('rejects an invalid draft with ATTEST_EVENT_INVALID and leaves the chains untouched', () =>
      given(async ({ log }) => {
        const good = sampleDraft('invalid', 0);
        const bad = { ...sampleDraft('invalid', 1), occurredAt: 'yesterday' } as EventDraft;
        await assert.rejects(log.append([good, bad]), (error: unknown) => error instanceof InvalidEventError && error.code === 'ATTEST_EVENT_INVALID' && /occurredAt/.test(error.message));
        assert.equal(log.size(), 0);
        const [first] = await log.append([sampleDraft('invalid', 2)]);
        assert.equal(first?.event.seq, 1, 'the rejected call sealed nothing');
        assert.equal(first?.event.prevHash, null);
        assert.deepEqual(await log.append([]), []);
      }));
  });

  void describe(`EventLogReader contract: ${name}`, { timeout: TEST_TIMEOUT_MS }, () => {
    void it('a reader of the same storage reads what was appended, resumes after cursors, follows new appends, and knows the size', async () => {
      const harness = await factory();
      const log = await harness.open();
      let reader: EventLogReader | undefined;
      try {
        for (let i = 0; i < 20; i++) await log.append([sampleDraft(`reader-${i % 3}`, i)]);
        reader = await harness.openReader();
        assert.equal(reader.backend, log.backend);
        const mine = await collect(log.read());
        const theirs = await collect(reader.read());
        assert.deepEqual(theirs.map((s) => [s.event.id, s.position]), mine.map((s) => [s.event.id, s.position]));
        assert.equal(await reader.size(), log.size());
        assert.equal(log.size(), 20);
        assert.deepEqual(
          (await collect(reader.read({ after: cursorOf(mine[12] as StoredEvent) }))).map((s) => s.event.id),
          mine.slice(13).map((s) => s.event.id),
        );
        const controller = new AbortController();
        const seen: string[] = [];
        const following = (async () => {
          for await (const stored of (reader).follow({ after: cursorOf(mine[19] as StoredEvent), signal: controller.signal })) {
            seen.push(stored.event.id);
            if (seen.length === 3) controller.abort();
          }
        })();
        const added = [...(await log.append([sampleDraft('reader-new', 0)])), ...(await log.append([sampleDraft('reader-new', 1), sampleDraft('reader-new', 2)]))];
        await withTimeout(following, 20_000, `the reader's follow saw ${seen.length} of 3 new events`);
        assert.deepEqual(seen, added.map((s) => s.event.id));
        assert.equal(await reader.size(), 23);
      } finally {
        await reader?.close();
        await log.close();
        await harness.dispose();
      }
    });

    void it('records of a newer version: unknown types skipped, a newer major version refused by read(), every record kept by entries() and verified', async () => {
      const harness = await factory();
      let log = await harness.open();
      try {
        const own = [...(await log.append([sampleDraft('today', 0)])), ...(await log.append([sampleDraft('today', 1), sampleDraft('today', 2)]))];
        await log.close();
        const template = (own[0] as StoredEvent).event as unknown as Record<string, unknown>;
        const seal = (fields: Record<string, unknown>): Record<string, unknown> => {
          const unsealed: Record<string, unknown> = { ...template, id: crypto.randomUUID(), ...fields };
          delete unsealed['hash'];
          return { ...unsealed, hash: eventHash(unsealed) };
        };
        const futureA1 = seal({ stream: 'future-a', seq: 1, prevHash: null, schemaVersion: '2.9', type: 'ToolCallReplayed', data: { replayOf: 'x' } });
        const futureB1 = seal({ stream: 'future-b', seq: 1, prevHash: null, schemaVersion: '3.0', type: 'RequestReceived', data: { entirely: 'new' } });
        const futureA2 = seal({ stream: 'future-a', seq: 2, prevHash: futureA1['hash'], schemaVersion: '2.9', type: 'ToolCallReplayed', data: { replayOf: 'y' } });
        await harness.appendWritten([futureA1, futureB1, futureA2]);
        log = await harness.open();
        assert.equal(log.head('future-a').seq, 2, 'the writer knows the heads of streams it cannot read');
        const [later] = await log.append([sampleDraft('today', 3)]);

        const entries = await collect(log.entries());
        assert.deepEqual(entries.map((e) => (e.event ?? e.envelope).id), [...own.map((s) => s.event.id), futureA1['id'], futureB1['id'], futureA2['id'], later?.event.id]);
        assert.deepEqual(entries.map((e) => (e.event === undefined ? e.problem : 'ok')), ['ok', 'ok', 'ok', 'type', 'version', 'type', 'ok']);
        const future = entries[4] as Extract<LogEntry, { event?: undefined }>;
        assert.match(future.reason, /3\.0.*upgrade/);
        assert.deepEqual(future.written, futureB1, 'kept exactly as written');

        const read: string[] = [];
        await assert.rejects(
          (async () => {
            for await (const stored of log.read()) read.push(stored.event.id);
          })(),
          (error: unknown) => error instanceof LogUnavailableError && error.code === 'ATTEST_EVENT_UNREADABLE' && error.message.includes(String(futureB1['id'])),
        );
        assert.deepEqual(read, own.map((s) => s.event.id), 'the unknown type before it was skipped, nothing after it read');
        // Resuming after an unreadable record: what follows it.
        assert.deepEqual((await collect(log.read({ after: cursorOf(entries[5] as LogEntry) }))).map((s) => s.event.id), [later?.event.id]);
        const verdict = await verifyLog(log);
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
        assert.equal(verdict.eventsChecked, 7);
      } finally {
        await log.close();
        await harness.dispose();
      }
    });
  });
}

async function* take<T>(iterable: AsyncIterable<T>, count: number): AsyncGenerator<T, void, undefined> {
  if (count <= 0) return;
  let taken = 0;
  for await (const item of iterable) {
    yield item;
    if (++taken >= count) return;
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

function groupByStream(events: readonly StoredEvent[]): Map<string, StoredEvent[]> {
  const out = new Map<string, StoredEvent[]>();
  for (const stored of events) {
    const list = out.get(stored.event.stream);
    if (list === undefined) out.set(stored.event.stream, [stored]);
    else list.push(stored);
  }
  return out;
}

async function firstOf<T>(iterable: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of iterable) return item;
  return undefined;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
