import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalize, eventHash } from '#schemas';
import type { EventDraft } from '#schemas';
import { ChainHeads, EMPTY_HEAD } from './chain.ts';
import { InvalidEventError } from './port.ts';
import { sampleDraft } from './sample-drafts.ts';

void describe('ChainHeads', () => {
  void it('seals drafts into per-stream chains: seq 1, 2, 3 …, prevHash = previous hash, hash = eventHash()', () => {
    const heads = new ChainHeads();
    const sealed = heads.seal([sampleDraft('a', 0), sampleDraft('b', 0), sampleDraft('a', 1)]);
    const [a1, b1, a2] = sealed.map((s) => s.event);
    assert.deepEqual([a1?.seq, b1?.seq, a2?.seq], [1, 1, 2]);
    assert.equal(a1?.prevHash, null);
    assert.equal(b1?.prevHash, null);
    assert.equal(a2?.prevHash, a1?.hash);
    for (const { event, canonical } of sealed) {
      assert.equal(event.hash, eventHash(event), 'the #schemas definition of the hash');
      const { hash: _hash, ...withoutHash } = event;
      assert.equal(canonical, canonicalize(withoutHash));
    }
    const more = heads.seal([sampleDraft('a', 2)]);
    assert.equal(more[0]?.event.seq, 3);
    assert.equal(more[0]?.event.prevHash, a2?.hash);
  });

  void it('keeps sealed-but-not-durable heads apart from durable ones; rollback returns to the durable state', () => {
    const heads = new ChainHeads();
    const first = heads.seal([sampleDraft('s', 0), sampleDraft('s', 1)]).map((s) => s.event);
    assert.deepEqual(heads.durableHead('s'), EMPTY_HEAD);
    assert.equal(heads.head('s').seq, 2);
    heads.commit(first);
    assert.deepEqual(heads.durableHead('s'), { seq: 2, hash: first[1]?.hash });
    heads.seal([sampleDraft('s', 2)]);
    heads.seal([sampleDraft('t', 0)]);
    assert.equal(heads.head('s').seq, 3);
    heads.rollback();
    assert.deepEqual(heads.head('s'), heads.durableHead('s'));
    assert.deepEqual(heads.head('t'), EMPTY_HEAD);
    const again = heads.seal([sampleDraft('s', 3)]);
    assert.equal(again[0]?.event.seq, 3);
    assert.equal(again[0]?.event.prevHash, first[1]?.hash);
  });

  void it('commits a batch whose stream moved on since (pending heads beyond it stay pending)', () => {
    const heads = new ChainHeads();
    const one = heads.seal([sampleDraft('s', 0)]).map((s) => s.event);
    const two = heads.seal([sampleDraft('s', 1)]).map((s) => s.event);
    heads.commit(one);
    assert.equal(heads.durableHead('s').seq, 1);
    assert.equal(heads.head('s').seq, 2);
    heads.commit(two);
    assert.equal(heads.durableHead('s').seq, 2);
  });

  void it('seals all or nothing: an invalid draft throws InvalidEventError and moves no head', () => {
    const heads = new ChainHeads();
    heads.seal([sampleDraft('s', 0)]);
    const before = heads.head('s');
    const bad = { ...sampleDraft('s', 2), tenant: '' } as EventDraft;
    assert.throws(() => heads.seal([sampleDraft('s', 1), bad]), (error: unknown) => error instanceof InvalidEventError && /draft 1 .*tenant/.test(error.message));
    assert.deepEqual(heads.head('s'), before);
    const notJson = { ...sampleDraft('s', 0), data: { ...sampleDraft('s', 0).data, params: { recording: 'full', digest: `sha256:${'0'.repeat(64)}`, bytes: 1, body: { n: 1n } } } } as EventDraft;
    assert.throws(() => heads.seal([notJson]), (error: unknown) => error instanceof InvalidEventError && /canonical JSON/.test(error.message));
    assert.deepEqual(heads.head('s'), before);
  });

  void it('snapshots and restores the durable heads', () => {
    const heads = new ChainHeads();
    heads.commit(heads.seal([sampleDraft('s', 0), sampleDraft('u', 0)]).map((s) => s.event));
    const snapshot = heads.snapshot();
    heads.commit(heads.seal([sampleDraft('s', 1)]).map((s) => s.event));
    heads.seal([sampleDraft('s', 2)]);
    heads.restore(snapshot);
    assert.equal(heads.head('s').seq, 1);
    assert.equal(heads.durableHead('u').seq, 1);
    assert.equal(heads.streamCount, 2);
    const restored = new ChainHeads(snapshot);
    assert.deepEqual(restored.durableHead('s'), snapshot.get('s'));
  });
});
