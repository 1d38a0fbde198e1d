/** What the file adapter's specs share: temp dirs that clean up, a writer in another process, frame surgery. */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type { EventLog, FilePosition, StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { encodeFrame, FRAME_HEADER_BYTES } from './framing.ts';
import { listSegments, segmentPath } from './segments.ts';

/** A fresh directory under the OS temp dir, removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'attest-eventlog-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface WriterProcess {
  readonly child: ChildProcess;
  /** Lines printed so far. */
  readonly lines: string[];
  /** Resolves with the first line starting with `prefix`. */
  waitFor(prefix: string, timeoutMs?: number): Promise<string>;
  /** Resolves once the process has exited (and was reaped, so its pid is free). */
  exited: Promise<number | null>;
}

const FIXTURE = fileURLToPath(new URL('./writer-process.fixture.ts', import.meta.url));

/** Starts writer-process.fixture.ts; killed (SIGKILL) when the test ends if still running. */
export function spawnWriter(t: TestContext, args: readonly string[]): WriterProcess {
  const child = spawn(process.execPath, ['--conditions=attest-source', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let waiters: (() => void)[] = [];
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      for (const wake of waiters) wake();
      resolve(code);
    }),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    lines,
    exited,
    waitFor(prefix, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`writer did not print "${prefix}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        const check = (): void => {
          const line = lines.find((l) => l.startsWith(prefix));
          if (line !== undefined) {
            clearTimeout(timer);
            waiters = waiters.filter((w) => w !== check);
            resolve(line);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`writer exited (${child.exitCode ?? child.signalCode}) before printing "${prefix}"; stderr: ${stderr}`));
          }
        };
        waiters.push(check);
        check();
      });
    },
  };
}

/**
 * Appends DecisionMade events (whose size only grows with seq) until the next append must start
 * a new segment; returns everything acknowledged. The next segment's base is then `log.size()`.
 */
export async function appendUntilRollIsNext(log: EventLog<FilePosition>, dir: string, segmentBytes: number, stream = 'roll'): Promise<StoredEvent<FilePosition>[]> {
  const acked: StoredEvent<FilePosition>[] = [];
  for (let n = 1; n < 10_000; n++) {
    const [stored] = await log.append([sampleDraft(stream, 3 * n + 1)]);
    if (stored === undefined) throw new Error('append acknowledged nothing');
    acked.push(stored);
    const size = (await stat(segmentPath(dir, stored.position.segment))).size;
    const frame = size - stored.position.offset;
    if (size + frame > segmentBytes) return acked;
  }
  throw new Error('never reached a segment boundary');
}

export interface RecordSpan {
  readonly segment: number;
  readonly start: number;
  readonly end: number;
  readonly payload: Buffer;
}

/** The records of one segment file, found by walking the length headers (no checks). */
export async function recordsOf(dir: string, segment: number): Promise<{ bytes: Buffer; records: RecordSpan[] }> {
  const bytes = await readFile(segmentPath(dir, segment));
  const records: RecordSpan[] = [];
  for (let at = 0; at + FRAME_HEADER_BYTES <= bytes.length; ) {
    const end = at + FRAME_HEADER_BYTES + bytes.readUInt32BE(at);
    records.push({ segment, start: at, end, payload: bytes.subarray(at + FRAME_HEADER_BYTES, end) });
    at = end;
  }
  return { bytes, records };
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Appends records to the last segment as framed JSON, as another writer (another version) would have: the log must be closed. */
export async function appendFrames(dir: string, records: readonly Readonly<Record<string, unknown>>[]): Promise<void> {
  const last = (await listSegments(dir)).at(-1) ?? 0;
  await appendFile(segmentPath(dir, last), Buffer.concat(records.map((record) => encodeFrame(Buffer.from(JSON.stringify(record))))));
}
