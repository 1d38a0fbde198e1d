import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newEventId } from './index.ts';

describe('event ids', () => {
  it('are RFC 9562 version-7 UUIDs, unique and strictly increasing within the process', () => {
    const ids = Array.from({ length: 20_000 }, () => newEventId());
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 1; i < ids.length; i++) assert.ok((ids[i] as string) > (ids[i - 1] as string), `id ${i} does not sort after id ${i - 1}`);
  });

  it('carry the current time in their first 48 bits', () => {
    const before = Date.now();
    const ms = parseInt(newEventId().replace(/-/g, '').slice(0, 12), 16);
    assert.ok(ms >= before && ms <= Date.now() + 1, `timestamp ${ms} not within [${before}, now]`);
  });
});
