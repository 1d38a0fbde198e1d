/**
 * The recording budget of refusals, on a clock the test moves: which refusals are recorded one by
 * one, which are counted, and that every one is in exactly one of the two.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrontDoorSchema } from '#schemas';
import type { EventData } from '#schemas';
import { OTHER_SOURCES, RefusalLedger } from './refusal-ledger.ts';

type Summary = Omit<EventData<'RequestsRejectedCounted'>, 'instance'>;

function ledger(refusals: Record<string, number>, options: { fail?: () => boolean } = {}) {
  let now = Date.parse('2026-12-06T12:00:00.000Z');
  const written: Summary[] = [];
  const failures: unknown[] = [];
  const settings = FrontDoorSchema.parse({ refusals }).refusals;
  const subject = new RefusalLedger(settings, {
    write: async (summary) => {
      if (options.fail?.() === true) throw new Error('log down');
      written.push(summary);
    },
    onWriteFailed: (error) => failures.push(error),
    now: () => now,
  });
  return { subject, written, failures, advance: (ms: number) => (now += ms) };
}

const admitted = (l: RefusalLedger, n: number, address = '10.0.0.1', code = 'ATTEST_UNAUTHENTICATED'): number => {
  let recorded = 0;
  for (let i = 0; i < n; i++) if (l.admit(address, code, 401)) recorded++;
  return recorded;
};

describe('RefusalLedger', () => {
  it('records a burst per source, then counts; the counts are one summary by source and reason', async () => {
    const { subject, written } = ledger({ perSourceBurst: 3, perSourcePerSecond: 1 });
    assert.equal(admitted(subject, 10), 3);
    assert.equal(admitted(subject, 2, '10.0.0.2'), 2, 'another source has its own budget');
    await subject.flush();
    assert.equal(written.length, 1);
    assert.deepEqual(written[0]?.counts, [{ remoteAddress: '10.0.0.1', errorCode: 'ATTEST_UNAUTHENTICATED', httpStatus: 401, count: 7 }]);
    assert.equal(written[0]?.total, 7);
    await subject.flush();
    assert.equal(written.length, 1, 'an empty window writes nothing');
  });

  it('refills at perSourcePerSecond', () => {
    const { subject, advance } = ledger({ perSourceBurst: 2, perSourcePerSecond: 2 });
    assert.equal(admitted(subject, 5), 2);
    advance(1_000);
    assert.equal(admitted(subject, 5), 2, 'two tokens a second');
    advance(250);
    assert.equal(admitted(subject, 1), 0, 'half a token is none');
    advance(250);
    assert.equal(admitted(subject, 1), 1);
  });

  it('all sources together are bounded by the total budget', async () => {
    const { subject, written } = ledger({ perSourceBurst: 5, totalBurst: 4, totalPerSecond: 1 });
    let recorded = 0;
    for (let i = 0; i < 10; i++) recorded += admitted(subject, 1, `10.0.1.${i}`);
    assert.equal(recorded, 4);
    await subject.flush();
    assert.equal(written[0]?.total, 6);
    assert.equal(written[0]?.counts.length, 6, 'each counted source has its row');
  });

  it('sources beyond maxSourcesTracked share one bucket and are counted as "*"; rows beyond maxRowsPerSummary are folded', async () => {
    const { subject, written } = ledger({ perSourceBurst: 1, totalBurst: 1000, maxSourcesTracked: 3, maxRowsPerSummary: 2 });
    let recorded = 0;
    for (let i = 0; i < 10; i++) recorded += admitted(subject, 2, `10.0.2.${i}`);
    // 3 tracked sources: one token each; the other 7 share one token.
    assert.equal(recorded, 4);
    await subject.flush();
    const summary = written[0];
    assert.ok(summary !== undefined);
    assert.equal(summary.total, 16);
    assert.equal(summary.counts[0]?.remoteAddress, OTHER_SOURCES, 'the shared row is the largest');
    assert.equal(summary.counts.length, 2);
    const shown = summary.counts.reduce((sum, row) => sum + row.count, 0);
    assert.equal(shown + (summary.otherSources?.count ?? 0), 16, 'nothing lost in the folding');
    assert.equal(summary.otherSources?.sources, 2);
  });

  it('a summary the log refused is kept and written with the next window, from where it started', async () => {
    let down = true;
    const { subject, written, failures, advance } = ledger({ perSourceBurst: 1, perSourcePerSecond: 0.001 }, { fail: () => down });
    admitted(subject, 4);
    await subject.flush();
    assert.equal(failures.length, 1);
    advance(10_000);
    admitted(subject, 2);
    down = false;
    await subject.flush();
    assert.equal(written.length, 1);
    assert.equal(written[0]?.total, 5);
    assert.equal(written[0]?.windowStart, '2026-12-06T12:00:00.000Z');
  });

  it('count() accounts for a refusal whose own record failed', async () => {
    const { subject, written } = ledger({});
    subject.count('10.0.3.1', 'ATTEST_INVALID_REQUEST', 400);
    await subject.close();
    assert.deepEqual(written[0]?.counts, [{ remoteAddress: '10.0.3.1', errorCode: 'ATTEST_INVALID_REQUEST', httpStatus: 400, count: 1 }]);
  });
});
