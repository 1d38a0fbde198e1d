/**
 * ToolPins on a real file log: concurrent listings pin once, a change is recorded once however
 * often it is seen, approve and reject move the pin as documented, and a rebuild from the log gives
 * the same pins as the live projection.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { ProjectionsFold } from '#projections';
import os from 'node:os';
import path from 'node:path';
import { SYSTEM_PRINCIPAL } from '#schemas';
import type { AttestEvent, Principal } from '#schemas';
import { openFileLog } from '#eventlog';
import type { EventLog } from '#eventlog';
import { Recorder } from '../recorder.ts';
import { pinnedDefinition, ToolPins } from './tool-pins.ts';

const ADMIN: Principal = { kind: 'apiKey', id: 'ops', tenant: 't1', roles: ['attest:admin'] };
const context = { tenant: SYSTEM_PRINCIPAL.tenant, stream: 'system-test', actor: SYSTEM_PRINCIPAL };
const echo = (description: string): Record<string, unknown> => ({ name: 'echo', description, inputSchema: { type: 'object' }, _meta: { ignored: description } });

async function events(log: EventLog): Promise<AttestEvent[]> {
  const out: AttestEvent[] = [];
  for await (const { event } of log.read()) out.push(event);
  return out;
}

describe('ToolPins', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('pins once, records a change once, and approve/reject move the pin; a rebuild agrees', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-pins-int-'));
    dirs.push(dir);
    const log = await openFileLog({ dir });
    try {
      const pins = new ToolPins(new Recorder(log), context);
      const [a, b] = await Promise.all([pins.observe('fx', [echo('v1')], 's1'), pins.observe('fx', [echo('v1')], 's2')]);
      assert.equal(a.quarantined.size + b.quarantined.size, 0);
      assert.equal((await events(log)).filter((e) => e.type === 'ToolPinned').length, 1, 'two sessions listing at once pin once');
      const v1 = pinnedDefinition(echo('v1')).hash;
      const v2 = pinnedDefinition(echo('v2')).hash;
      assert.equal(pinnedDefinition({ ...echo('v1'), _meta: { other: true } }).hash, v1, '_meta is not pinned');

      for (const session of ['s1', 's2', 's3']) assert.deepEqual([...(await pins.observe('fx', [echo('v2')], session)).quarantined], ['echo']);
      assert.equal((await events(log)).filter((e) => e.type === 'ToolDefinitionChanged').length, 1, 'one record per new definition');
      assert.deepEqual(pins.quarantine('fx', 'echo', v2), { upstream: 'fx', tool: 'echo', pinnedHash: v1, observedHash: v2, rejected: false });
      assert.equal(pins.quarantine('fx', 'echo', v1), undefined, 'a session listing the pinned definition may call');
      assert.equal(pins.quarantine('fx', 'echo', undefined)?.observedHash, v2, 'a session that never listed is refused while a change is pending');
      assert.equal(pins.quarantine('fx', 'other', undefined), undefined);

      await assert.rejects(pins.decide('approve', { upstream: 'fx', tool: 'echo', hash: v1, reason: 'x' }, ADMIN), { code: 'ATTEST_NO_SUCH_TOOL_CHANGE' });
      const rejected = await pins.decide('reject', { upstream: 'fx', tool: 'echo', hash: v2, reason: 'prompt injection' }, ADMIN);
      assert.equal(rejected.hash, v1);
      assert.deepEqual(rejected.rejected, [v2]);
      assert.equal(pins.quarantine('fx', 'echo', v2)?.rejected, true, 'a rejected definition stays refused');
      assert.equal(pins.quarantine('fx', 'echo', undefined), undefined, 'nothing pending any more');
      await pins.observe('fx', [echo('v2')], 's4');
      assert.equal((await events(log)).filter((e) => e.type === 'ToolDefinitionChanged').length, 1, 'a rejected definition is not recorded again');

      await pins.observe('fx', [echo('v3')], 's5');
      const v3 = pinnedDefinition(echo('v3')).hash;
      const approved = await pins.decide('approve', { upstream: 'fx', tool: 'echo', hash: v3, reason: 'reviewed' }, ADMIN);
      assert.equal(approved.hash, v3);
      assert.equal(pins.quarantine('fx', 'echo', v3), undefined);
      assert.equal(pins.quarantine('fx', 'echo', v1)?.observedHash, v1, 'the old definition is no longer the pin');
      const decision = (await events(log)).find((e) => e.type === 'ToolDefinitionApproved');
      assert.equal(decision?.actor.id, 'ops');

      const rebuilt = new ToolPins(new Recorder(log), context);
      const fold = new ProjectionsFold(undefined);
      for await (const { event } of log.read()) fold.push(event);
      rebuilt.load(fold.state.pins);
      assert.deepEqual(rebuilt.list(), pins.list());
    } finally {
      await log.close();
    }
  });
});
