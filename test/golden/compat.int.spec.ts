/**
 * The compatibility test of the event contract: the golden events of every version ever written
 * (schemas/golden/<version>/, made by generate.ts with the code of that version) are read,
 * verified and projected by this version. Also: the golden events of the current version cover
 * every event type, and validate against the published JSON Schema.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { cursorOf, openFileLogReader, verifyFileLog, verifyLog } from '#eventlog';
import type { LogEntry, StoredEvent } from '#eventlog';
import { eventContractJsonSchema, eventHash, EVENT_TYPES, readEvent, SCHEMA_VERSION } from '#schemas';
import { createLogger, hashApiKey, startGateway } from '#gateway';
import { fixtureStdioUpstream } from '../support/gateway.ts';

const GOLDEN = path.join(import.meta.dirname, '..', '..', 'schemas', 'golden');
const versions = (await readdir(GOLDEN)).filter((name) => name.startsWith('v')).sort();

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function lines(version: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path.join(GOLDEN, version, 'events.jsonl'), 'utf8');
  return text.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>);
}

void describe('event contract compatibility: golden events of every version', () => {
  void it('keeps the golden events of every version written so far, the current one included', () => {
    assert.ok(versions.includes('v1'), 'the first contract version');
    assert.ok(versions.includes(`v${SCHEMA_VERSION}`), `golden events of the version this code writes (${SCHEMA_VERSION}): run npm run schemas:golden`);
  });

  for (const version of versions) {
    void it(`${version}: every event reads (upcast to ${SCHEMA_VERSION} where older), chains and verifies as written, from the file log and from JSON`, async () => {
      const reader = await openFileLogReader(path.join(GOLDEN, version, 'log'));
      try {
        const entries: LogEntry[] = await collect(reader.entries());
        const unreadable = entries.filter((e) => e.event === undefined);
        assert.deepEqual(unreadable.map((e) => e.event === undefined && `${e.envelope.type}: ${e.reason}`), [], 'every golden event is readable');
        const written = await lines(version);
        assert.equal(entries.length, written.length);
        for (const [i, raw] of written.entries()) {
          const stored = entries[i] as StoredEvent;
          assert.equal(stored.event.id, raw['id']);
          const reading = readEvent(raw);
          assert.ok(reading.ok, `${String(raw['type'])} ${String(raw['id'])} reads from JSON`);
          assert.deepEqual(reading.event, stored.event, 'JSON and the file log give the same event');
          // The chain covers the event as written, whatever view a reader gets.
          assert.equal(eventHash((stored.written ?? stored.event) as Record<string, unknown>), raw['hash']);
        }
        const verdict = await verifyFileLog(path.join(GOLDEN, version, 'log'), { tailGraceMs: 0 });
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
        assert.equal(verdict.eventsChecked, written.length);
        assert.equal((await verifyLog(reader)).ok, true);
        // Cursors resume on an old log as on a new one.
        const after = await collect(reader.read({ after: cursorOf(entries[9] as LogEntry) }));
        assert.deepEqual(after.map((s) => s.event.id), written.slice(10).map((r) => r['id']));
        assert.equal(await reader.size(), written.length);
      } finally {
        await reader.close();
      }
    });
  }

  void it('v1: the renamed fields are upcast (ApprovalRequested.target, ErrorReturned.jsonrpcCode, ToolPinned.sessionId) and the original kept as written', async () => {
    const reader = await openFileLogReader(path.join(GOLDEN, 'v1', 'log'));
    try {
      const events = await collect(reader.read());
      const approval = events.find((s) => s.event.type === 'ApprovalRequested');
      assert.ok(approval?.event.type === 'ApprovalRequested');
      assert.equal(approval.event.data.target, 'delete_file');
      assert.equal(approval.event.schemaVersion, 1, 'the version it was written under stays visible');
      assert.equal((approval.written?.['data'] as Record<string, unknown>)['tool'], 'delete_file');
      const error = events.find((s) => s.event.type === 'ErrorReturned');
      assert.ok(error?.event.type === 'ErrorReturned' && error.event.data.jsonrpcCode === -32010);
      const pinned = events.find((s) => s.event.type === 'ToolPinned');
      assert.ok(pinned?.event.type === 'ToolPinned' && typeof pinned.event.data.sessionId === 'string');
      const legacy = events.find((s) => s.event.type === 'SessionOpened' && s.event.data.instance === undefined);
      assert.ok(legacy !== undefined, 'a session opened before SessionOpened.instance existed reads without it');
    } finally {
      await reader.close();
    }
  });

  void it(`v${SCHEMA_VERSION}: the golden events cover every event type, and validate against the published JSON Schema`, async () => {
    const written = await lines(`v${SCHEMA_VERSION}`);
    assert.deepEqual([...new Set(written.map((r) => r['type']))].sort(), [...EVENT_TYPES].sort(), 'one golden event of every type (add one to test/golden/catalog.ts for a new type)');
    const published = JSON.parse(await readFile(path.join(import.meta.dirname, '..', '..', 'schemas', 'json', 'attest-event.schema.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(published, eventContractJsonSchema(), 'schemas/json/attest-event.schema.json is current: run npm run schemas:json');
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    const validate = ajv.compile(published);
    for (const raw of written) assert.ok(validate(raw), `${String(raw['type'])}: ${ajv.errorsText(validate.errors)}`);
    const unknownField = { ...written[0], data: { ...(written[0]?.['data'] as object), addedByANewerMinor: true } };
    assert.ok(validate(unknownField), 'a field a newer minor version added is accepted');
    assert.equal(validate({ ...written[0], seq: 0 }), false, 'a broken envelope is not');
  });

  for (const version of versions) {
    void it(`${version}: a gateway of this version starts on that log (its projections read it whole), appends, and the log still verifies`, { timeout: 60_000 }, async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), `attest-golden-${version}-`));
      try {
        await cp(path.join(GOLDEN, version, 'log'), path.join(dir, 'log'), { recursive: true });
        const gateway = await startGateway(
          { gateway: { host: '127.0.0.1', port: 0, instance: 'gw-golden' }, log: { backend: 'file', dir: path.join(dir, 'log') }, upstreams: { files: fixtureStdioUpstream() }, auth: { keys: [{ id: 'golden', hash: hashApiKey('atk_golden_0123456789abcdef'), tenant: 'acme' }] } },
          { logger: createLogger('silent') },
        );
        const started = gateway.log.size();
        await gateway.close('golden compatibility test');
        const verdict = await verifyFileLog(path.join(dir, 'log'), { tailGraceMs: 0 });
        assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
        assert.ok(verdict.eventsChecked >= started + 1, 'GatewayStarted and GatewayStopped were appended after the old events');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
