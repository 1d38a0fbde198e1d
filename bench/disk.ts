/**
 * The floor the durable file log stands on: latency of one small append + fdatasync on the disk
 * that holds the logs (the temp directory), as the group commit does it (write at the end, then
 * datasync), through Node's fs/promises. Every recorded call waits for two of these in sequence.
 *
 *   node --conditions=attest-source bench/disk.ts [--count 500] [--bytes 800] [--dir /tmp]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LatencyHistogram } from './load/histogram.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '500' }, bytes: { type: 'string', default: '800' }, dir: { type: 'string', default: tmpdir() } } });
const count = Number(values.count);
const record = Buffer.alloc(Number(values.bytes), 0x61);
const dir = mkdtempSync(join(values.dir, 'attest-bench-disk-'));
const write = new LatencyHistogram();
const sync = new LatencyHistogram();
const handle = await open(join(dir, 'segment'), 'w');
try {
  let offset = 0;
  const deadline = performance.now() + 30_000;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    await handle.write(record, 0, record.length, offset);
    const t1 = performance.now();
    await handle.datasync();
    const t2 = performance.now();
    offset += record.length;
    write.record((t1 - t0) * 1e6);
    sync.record((t2 - t1) * 1e6);
  }
} finally {
  await handle.close();
  rmSync(dir, { recursive: true, force: true });
}
const line = (name: string, h: LatencyHistogram): string => {
  const s = h.summary();
  return `${name.padEnd(10)} n=${s.count} p50 ${s.p50Ms.toFixed(3)} ms, p90 ${s.p90Ms.toFixed(3)} ms, p99 ${s.p99Ms.toFixed(3)} ms, max ${s.maxMs.toFixed(3)} ms`;
};
process.stdout.write(`${record.length}-byte appends in ${values.dir}:\n${line('write', write)}\n${line('fdatasync', sync)}\n`);
