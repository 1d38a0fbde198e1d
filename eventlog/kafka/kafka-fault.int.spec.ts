/**
 * The Kafka adapter under broker faults, on a broker of its own (deploy/local, so stopping it
 * disturbs no other test; no such broker → the tests fail saying why). Each run: 8 concurrent
 * appenders (two events per call, like a request and its decision), the broker taken away, then
 * given back; bounded in time (≤ 90 s each) and in appends.
 *
 * What must hold: while the broker is away appends fail closed with a clear error and none is
 * acknowledged; once it is back the log recovers by itself; afterwards a reader in another
 * process finds every acknowledged event exactly once, at the position it was acknowledged with,
 * in chain order, and verifyLog passes (which also proves no record was written twice: a repeat
 * would leave a hole in the index).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { EventDraft } from '#schemas';
import { startLocalService } from '../../test/services/index.ts';
import type { LocalService } from '../../test/services/index.ts';
import { LogUnavailableError } from '../port.ts';
import type { KafkaPosition, StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { verifyLog } from '../verify.ts';
import { openKafkaLog, openKafkaLogReader } from './kafka-log.ts';
import type { KafkaEventLog } from './kafka-log.ts';
import { collect, recordingLogger, testLogOptions, topicAdmin, uniqueTopic } from './spec-support.ts';

const APPENDERS = 8;
const APPEND_TIMEOUT_MS = 2_000;
/** Appends per appender, at most: the runs are bounded in count as well as in time. */
const MAX_CALLS_PER_APPENDER = 20_000;
const TEST_TIMEOUT_MS = 120_000;
const IN_FLIGHT_GRACE_MS = 250;
/** Longer than the producer's retries last (≈ 5 requests × appendTimeoutMs + 1 s): the batch in flight fails, then lands when the broker resumes. */
const FREEZE_MS = 20_000;

async function dedicatedBroker(t: TestContext): Promise<LocalService> {
  let broker: LocalService;
  try {
    broker = await startLocalService('kafka');
  } catch (error) {
    assert.fail(`the fault tests need a Kafka broker of their own from deploy/local/kafka.sh, and none could be started: ${(error as Error).message}`);
  }
  t.after(() => broker.dispose());
  return broker;
}

async function brokerPid(broker: LocalService): Promise<number> {
  const pid = Number((await readFile(join(broker.dir, 'kafka.pid'), 'utf8')).trim());
  assert.ok(Number.isSafeInteger(pid) && pid > 1, `a broker pid in ${broker.dir}/kafka.pid`);
  return pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

interface Ack {
  readonly stored: StoredEvent<KafkaPosition>;
  readonly at: number;
}

interface Refusal {
  readonly code: string;
  readonly message: string;
  readonly at: number;
}

/** Appenders running against a log until stopped; every acknowledgement and refusal is kept with its time. */
function startLoad(log: KafkaEventLog): { acks: Ack[]; refusals: Refusal[]; others: unknown[]; stop(): Promise<void> } {
  const acks: Ack[] = [];
  const refusals: Refusal[] = [];
  const others: unknown[] = [];
  let stopped = false;
  const appenders = Array.from({ length: APPENDERS }, async (_, a) => {
    for (let n = 0; n < MAX_CALLS_PER_APPENDER && !stopped; n++) {
      const stream = `fault-${a}-${n % 3}`;
      const drafts: EventDraft[] = [sampleDraft(stream, 0), sampleDraft(stream, 1)];
      try {
        const stored = await log.append(drafts);
        const at = performance.now();
        for (const s of stored) acks.push({ stored: s, at });
      } catch (error) {
        if (error instanceof LogUnavailableError) refusals.push({ code: error.code, message: error.message, at: performance.now() });
        else others.push(error);
        // Refusals while recovering are immediate: do not spin.
        await sleep(20);
      }
    }
  });
  return {
    acks,
    refusals,
    others,
    async stop() {
      stopped = true;
      await Promise.all(appenders);
    },
  };
}

/**
 * Runs the load, applies `fault` once enough was acknowledged, keeps the load on through the
 * outage, calls `restore`, and waits until appends succeed again. Returns the window in which the
 * broker could acknowledge nothing.
 */
async function faultUnderLoad(
  t: TestContext,
  log: KafkaEventLog,
  fault: () => Promise<void>,
  restore: () => Promise<void>,
  outageMs: number,
): Promise<{ load: ReturnType<typeof startLoad>; down: { from: number; to: number }; recoveredAfterMs: number }> {
  const load = startLoad(log);
  try {
    await until('200 acknowledged events before the fault', () => load.acks.length >= 200, 20_000);
    await fault();
    // An answer the broker sent just before it went away may still be on its way: the window
    // in which nothing can be acknowledged starts a moment later.
    const from = performance.now() + IN_FLIGHT_GRACE_MS;
    const refusedBefore = load.refusals.length;
    await until('appends to be refused during the outage', () => load.refusals.length >= refusedBefore + APPENDERS, 30_000);
    await sleep(outageMs);
    const to = performance.now();
    await restore();
    const ackedBefore = load.acks.length;
    const restored = performance.now();
    await until('appends to succeed again after the broker came back (the log recovers by itself)', () => load.acks.length >= ackedBefore + 200, 60_000);
    const recoveredAfterMs = Math.round(performance.now() - restored);
    t.diagnostic(`acknowledged ${load.acks.length} events; refused ${load.refusals.length} appends; recovered ${recoveredAfterMs} ms after the broker was back; ${JSON.stringify(log.stats())}`);
    return { load, down: { from, to }, recoveredAfterMs };
  } finally {
    await load.stop();
  }
}

/** Every acknowledged event is in Kafka exactly once, where it was acknowledged; chains and index verify; the writer's heads match. */
async function assertNothingAcknowledgedIsLost(log: KafkaEventLog, options: Parameters<typeof openKafkaLogReader>[0], acks: readonly Ack[]): Promise<void> {
  const reader = await openKafkaLogReader(options);
  try {
    const read = await collect(reader.read());
    const byId = new Map(read.map((s) => [s.event.id, s]));
    assert.equal(byId.size, read.length, 'no event id is read twice');
    for (const { stored } of acks) {
      const found = byId.get(stored.event.id);
      assert.ok(found, `acknowledged event ${stored.event.id} (stream ${stored.event.stream}, seq ${stored.event.seq}, offset ${stored.position.offset}) is in Kafka`);
      assert.deepEqual(found.position, stored.position, `event ${stored.event.id} is where it was acknowledged`);
      assert.deepEqual(found.event, stored.event);
    }
    const verdict = await verifyLog(
      (async function* () {
        yield* read;
      })(),
    );
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.equal(verdict.eventsChecked, read.length);
    assert.equal(log.size(), read.length, 'the writer knows of every event in the partition');
    const last = new Map(read.map((s) => [s.event.stream, s.event]));
    for (const [stream, event] of last) assert.deepEqual(log.head(stream), { seq: event.seq, hash: event.hash }, `head of ${stream}`);
  } finally {
    await reader.close();
  }
}

function assertFailedClosed(load: ReturnType<typeof startLoad>, down: { from: number; to: number }): void {
  assert.deepEqual(load.others, [], 'every failure is a LogUnavailableError');
  assert.ok(load.refusals.length > 0);
  for (const refusal of load.refusals) {
    assert.ok(['ATTEST_LOG_UNAVAILABLE', 'ATTEST_LOG_TIMEOUT'].includes(refusal.code), refusal.code);
    assert.match(refusal.message, /Kafka/, 'the error says what failed');
  }
  const ackedWhileDown = load.acks.filter((a) => a.at > down.from && a.at < down.to);
  assert.deepEqual(
    ackedWhileDown.map((a) => a.stored.position.offset),
    [],
    'nothing is acknowledged while the broker is away',
  );
}

void describe('kafka log: broker faults under concurrent appends', { timeout: TEST_TIMEOUT_MS }, () => {
  void it('broker stopped (kafka.sh stop): appends fail closed; broker back: the log recovers by itself, nothing acknowledged is lost', async (t) => {
    const broker = await dedicatedBroker(t);
    const topics = await topicAdmin(null, [broker.endpoint]);
    const options = testLogOptions([broker.endpoint], topics.track(uniqueTopic('attest-fault')), { appendTimeoutMs: APPEND_TIMEOUT_MS });
    const logger = recordingLogger();
    const log = await openKafkaLog(options, { logger });
    t.after(() => log.close());
    const { load, down } = await faultUnderLoad(
      t,
      log,
      () => broker.stop(),
      () => broker.start(),
      3_000,
    );
    assertFailedClosed(load, down);
    assert.ok(log.stats().recoveries >= 1, 'the writer recovered');
    assert.ok(
      logger.errors.some((e) => /produce request failed/.test(e.message)),
      'the failure was logged',
    );
    await assertNothingAcknowledgedIsLost(log, options, load.acks);
    await log.close();
    await topics.dispose();
  });

  void it('broker killed -9: the same, and the broker’s own crash recovery loses nothing acknowledged', async (t) => {
    const broker = await dedicatedBroker(t);
    const topics = await topicAdmin(null, [broker.endpoint]);
    const options = testLogOptions([broker.endpoint], topics.track(uniqueTopic('attest-fault')), { appendTimeoutMs: APPEND_TIMEOUT_MS });
    const log = await openKafkaLog(options);
    t.after(() => log.close());
    const pid = await brokerPid(broker);
    const { load, down } = await faultUnderLoad(
      t,
      log,
      async () => {
        process.kill(pid, 'SIGKILL');
        await until('the broker to die', () => !alive(pid), 10_000);
      },
      () => broker.start(),
      2_000,
    );
    assertFailedClosed(load, down);
    await assertNothingAcknowledgedIsLost(log, options, load.acks);
    await log.close();
    await topics.dispose();
  });

  void it('broker frozen (SIGSTOP) longer than the producer retries: appends time out and fail closed; what lands when it resumes is adopted, chains intact', async (t) => {
    const broker = await dedicatedBroker(t);
    const topics = await topicAdmin(null, [broker.endpoint]);
    const options = testLogOptions([broker.endpoint], topics.track(uniqueTopic('attest-fault')), { appendTimeoutMs: APPEND_TIMEOUT_MS });
    const log = await openKafkaLog(options);
    t.after(() => log.close());
    const pid = await brokerPid(broker);
    let frozen = false;
    // Never leave a frozen broker behind, whatever happens.
    t.after(() => {
      if (frozen) process.kill(pid, 'SIGCONT');
    });
    const { load, down } = await faultUnderLoad(
      t,
      log,
      async () => {
        process.kill(pid, 'SIGSTOP');
        frozen = true;
      },
      async () => {
        process.kill(pid, 'SIGCONT');
        frozen = false;
      },
      FREEZE_MS,
    );
    assertFailedClosed(load, down);
    assert.ok(
      load.refusals.some((r) => r.code === 'ATTEST_LOG_TIMEOUT'),
      'a stalled broker times appends out',
    );
    const stats = log.stats();
    assert.ok(stats.failedBatches >= 1 && stats.recoveries >= 1, 'the batch in flight failed and the writer recovered');
    // Usually the failed batch itself: the broker had it in its socket buffer and appended it on resuming.
    t.diagnostic(`events adopted from batches whose acknowledgement was lost: ${stats.adoptedEvents}`);
    await assertNothingAcknowledgedIsLost(log, options, load.acks);
    await log.close();
    await topics.dispose();
  });
});
