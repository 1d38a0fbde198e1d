/**
 * Several gateway replicas on one log (ARCHITECTURE.md "Several replicas"), as a check any
 * backend that allows it runs from its spec (Kafka and KurrentDB; the file log is single-writer):
 * two writers, each appending concurrently to streams of its own — sixteen sessions and its
 * `system-<writer>` stream — as two gateway instances do. Asserted here: nothing refused; every
 * acknowledged event read back exactly once, at the position it was acknowledged at; `verifyLog`
 * over the whole log passes. The caller asserts what is particular to its backend.
 * Bounded: `appends` per writer (default 2,000), within `withinMs` (default 20 s).
 */
import assert from 'node:assert/strict';
import type { EventLog, EventLogReader, LogPosition, StoredEvent } from './port.ts';
import { sampleDraft } from './sample-drafts.ts';
import { verifyLog } from './verify.ts';

export const WRITER_NAMES = ['gw-a', 'gw-b'] as const;
export const SESSIONS_PER_WRITER = 16;

export interface SeveralWritersResult<P extends LogPosition> {
  /** What each writer was told, by writer name. */
  readonly acked: ReadonlyMap<string, readonly StoredEvent<P>[]>;
  readonly events: number;
  readonly seconds: number;
}

/** Each writer's own streams: its sessions and its system stream. */
export function streamsOf(writer: string): string[] {
  return [...Array.from({ length: SESSIONS_PER_WRITER }, (_, s) => `${writer}-session-${s}`), `system-${writer}`];
}

export async function appendFromTwoWriters<P extends LogPosition>(
  writers: readonly [EventLog<P>, EventLog<P>],
  reader: EventLogReader<P>,
  options: { readonly appends?: number; readonly withinMs?: number } = {},
): Promise<SeveralWritersResult<P>> {
  const appends = options.appends ?? 2_000;
  const perSession = Math.ceil(appends / SESSIONS_PER_WRITER);
  const deadline = performance.now() + (options.withinMs ?? 20_000);
  const acked = new Map<string, StoredEvent<P>[]>(WRITER_NAMES.map((name) => [name, []]));
  const refused: string[] = [];
  let expected = 0;
  const started = performance.now();
  await Promise.all(
    writers.flatMap((log, w) => {
      const name = WRITER_NAMES[w] ?? '';
      return Array.from({ length: SESSIONS_PER_WRITER }, async (_, s) => {
        const stream = `${name}-session-${s}`;
        for (let n = 0; n < perSession; n++) {
          // The first session's calls also write the writer's system stream now and then (governance events).
          const drafts = s === 0 && n % 10 === 0 ? [sampleDraft(stream, n), sampleDraft(`system-${name}`, n)] : [sampleDraft(stream, n)];
          expected += drafts.length;
          if (performance.now() > deadline) {
            refused.push(`${name}: not appended within the time bound`);
            continue;
          }
          try {
            acked.get(name)?.push(...(await log.append(drafts)));
          } catch (error) {
            refused.push(`${name}: ${(error as Error).message}`);
          }
        }
      });
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(refused.slice(0, 5), [], `${refused.length} appends refused or late`);
  const all = [...acked.values()].flat();
  assert.equal(all.length, expected);

  const read: StoredEvent<P>[] = [];
  for await (const stored of reader.read()) read.push(stored);
  assert.equal(read.length, all.length, 'nothing in the log but the two writers’ acknowledged events');
  const readAt = new Map(read.map((s) => [s.event.id, s.position]));
  assert.equal(readAt.size, read.length, 'each event once');
  for (const { event, position } of all) assert.deepEqual(readAt.get(event.id), position, `${event.stream} seq ${event.seq} read back at its acknowledged position`);
  const verdict = await verifyLog(reader);
  assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
  assert.equal(verdict.eventsChecked, all.length);
  assert.equal(verdict.streams, WRITER_NAMES.length * (SESSIONS_PER_WRITER + 1));
  writers.forEach((log, w) => {
    const name = WRITER_NAMES[w] ?? '';
    for (const stream of streamsOf(name)) {
      const last = (acked.get(name) ?? []).filter((s) => s.event.stream === stream).at(-1);
      assert.deepEqual(log.head(stream), { seq: last?.event.seq ?? 0, hash: last?.event.hash ?? null }, `${name}: the head of its stream ${stream} is its last acknowledged event`);
    }
  });
  return { acked, events: all.length, seconds };
}
