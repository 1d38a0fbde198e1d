/**
 * The gateway process of a benchmark: what `attest gateway --config FILE` runs (`startGateway`
 * with the pino logger), plus two things the CLI does not offer, both for benchmarks only:
 *
 * - a stats channel: the line `stats` on stdin is answered on stdout with
 *   `STATS {"size":…,"log":<FileLogStats>,"memory":<process.memoryUsage()>}` (the log's size and
 *   its group-commit counters, which the CLI and /healthz do not expose); `stats gc`, when the
 *   process runs with --expose-gc, also forces a full GC and adds `memoryAfterGc` (the soak's
 *   live-heap reading);
 * - a profiling channel: `profile start` / `profile stop FILE` on stdin run V8's CPU profiler (the one
 *   `--cpu-prof` drives) over just that window and write FILE as a .cpuprofile, answering
 *   `PROFILING` / `PROFILED FILE`;
 * - `--recording off`: the reference run without recording. Every append is answered at once with
 *   made-up positions and nothing is sealed, encoded, written or synced; the drafts are still built
 *   (payload digests included), so the difference to a recording run is the cost of the log itself.
 *   The gateway has no such switch (see BENCHMARKS.md for the patch that would add one); here the
 *   log's `append` is shadowed on the instance, after start-up has recorded GatewayStarted.
 *
 *   node --conditions=attest-source bench/gateway/serve.ts --config FILE.json [--recording on|off]
 * prints `LISTENING <url>/mcp` when it serves; SIGTERM closes it like the CLI does.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { AttestConfigInput, EventDraft } from '#schemas';
import type { EventLog, FileEventLog, StoredEvent } from '#eventlog';
import { createLogger, startGateway } from '#gateway';

const NO_HASH = '0'.repeat(64);

function hasStats(log: EventLog): log is FileEventLog {
  return 'stats' in log && typeof log.stats === 'function';
}

/** Answers every append at once: the recording-off reference (nothing reaches the disk). */
function stubAppends(log: EventLog): void {
  let index = log.size();
  const append = (drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> =>
    Promise.resolve(
      drafts.map((draft) => ({
        // Receipts read id, hash and position only; no chain is kept, so seq and prevHash are placeholders.
        event: { ...draft, seq: 1, prevHash: null, hash: NO_HASH },
        position: { backend: 'file' as const, index: index++, segment: 0, offset: 0 },
      })),
    );
  Object.assign(log, { append });
}

const { values } = parseArgs({ options: { config: { type: 'string' }, recording: { type: 'string', default: 'on' } } });
if (values.config === undefined) throw new Error('--config FILE.json is required');
if (values.recording !== 'on' && values.recording !== 'off') throw new Error('--recording must be on or off');
const configFile = resolve(values.config);
const config = JSON.parse(readFileSync(configFile, 'utf8')) as AttestConfigInput;
const logger = createLogger();
const gateway = await startGateway(config, { logger, baseDir: dirname(configFile) });
if (values.recording === 'off') stubAppends(gateway.log);
process.stdout.write(`LISTENING ${gateway.url}/mcp\n`);

const log = gateway.log;
let profiler: Session | undefined;

async function command(line: string): Promise<void> {
  const [verb, arg, file] = line.trim().split(/\s+/);
  if (verb === 'stats') {
    const stats = hasStats(log) ? log.stats() : null;
    const memory = process.memoryUsage();
    // `stats gc` (soak): a full collection after the first reading, so the second is the live heap.
    // Needs node --expose-gc; without it the field is absent.
    const collect = (globalThis as { gc?: () => void }).gc;
    const afterGc = arg === 'gc' && collect !== undefined ? (collect(), process.memoryUsage()) : undefined;
    process.stdout.write(`STATS ${JSON.stringify({ size: log.size(), log: stats, memory, ...(afterGc !== undefined && { memoryAfterGc: afterGc }) })}\n`);
  } else if (verb === 'profile' && arg === 'start' && profiler === undefined) {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
    process.stdout.write('PROFILING\n');
  } else if (verb === 'profile' && arg === 'stop' && profiler !== undefined && file !== undefined) {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = undefined;
    await writeFile(file, JSON.stringify(profile));
    process.stdout.write(`PROFILED ${file}\n`);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  command(line).catch((error: unknown) => logger.error({ err: error, line }, 'bench command failed'));
});

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  gateway
    .close(`received ${signal}`)
    .catch((error: unknown) => logger.error({ err: error }, 'closing the gateway failed'))
    .finally(() => {
      logger.flush();
      // Exit even if a socket or timer still holds the loop; --cpu-prof still writes its profile on exit.
      setTimeout(() => process.exit(0), 200).unref();
      process.stdin.destroy();
    });
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
