/**
 * Writes the golden events of the event contract version this code writes: one or more events of
 * every type, sealed into real chains by the real file log, kept in `schemas/golden/<version>/`
 *   events.jsonl         one sealed event per line, as JSON (the segment holds the exact stored bytes)
 *   log/00….seg          the file log's segment itself (frames, CRCs)
 * Every later version must read them (test/golden/compat.int.spec.ts). Run once per new version:
 *   node --conditions=attest-source test/golden/generate.ts
 * and commit the result; never regenerate an existing version's files.
 */
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openFileLog } from '#eventlog';
import { SCHEMA_VERSION } from '#schemas';
import { goldenDrafts } from './catalog.ts';

const root = path.join(import.meta.dirname, '..', '..', 'schemas', 'golden', `v${String(SCHEMA_VERSION)}`);

const work = await mkdtemp(path.join(os.tmpdir(), 'attest-golden-'));
try {
  const log = await openFileLog({ dir: path.join(work, 'log') });
  const lines: string[] = [];
  for (const call of goldenDrafts()) {
    const stored = await log.append(call);
    for (const { event } of stored) lines.push(JSON.stringify(event));
  }
  await log.close();
  await rm(root, { recursive: true, force: true });
  await mkdir(path.join(root, 'log'), { recursive: true });
  for (const file of await readdir(path.join(work, 'log'))) {
    if (file.endsWith('.seg')) await cp(path.join(work, 'log', file), path.join(root, 'log', file));
  }
  await writeFile(path.join(root, 'events.jsonl'), `${lines.join('\n')}\n`);
  process.stdout.write(`golden events of schema version ${String(SCHEMA_VERSION)}: ${lines.length} events in ${root}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
