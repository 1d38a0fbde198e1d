/**
 * What the gateways that tests start may log, and where it goes. A passing run prints no log
 * line; `ATTEST_TEST_LOG=<pino level>` (trace, debug, info, warn, error, fatal) asks for them:
 *
 * - in-process gateways (pass `logger: testLogger()`): unset, they log at info into a buffer of
 *   the last KEPT lines of this test file, written to stderr after the file's tests only when
 *   one of them failed (the process exits non-zero); set, they log at that level straight to
 *   stderr.
 * - CLI and other child processes (test/harness/cli.ts, processes.ts): unset, their stderr is
 *   collected and shows up only in the failure messages that quote it; set, they get
 *   `ATTEST_LOG_LEVEL` at that level and their stderr is also copied to the test's stderr.
 */
import { writeSync } from 'node:fs';
import { createLogger } from '#gateway';
import type { Logger } from '#gateway';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const KEPT = 2_000;

function askedLevel(): string | undefined {
  const asked = process.env['ATTEST_TEST_LOG']?.trim().toLowerCase();
  if (asked === undefined || asked === '') return undefined;
  if (!LEVELS.includes(asked)) throw new Error(`ATTEST_TEST_LOG=${asked}: expected one of ${LEVELS.join(', ')}`);
  return asked;
}

/** The level asked for with ATTEST_TEST_LOG, `undefined` when nothing was asked (quiet). */
export const TEST_LOG_LEVEL: string | undefined = askedLevel();

/** Whether child processes' stderr is copied to the test's own stderr as it arrives. */
export const ECHO_CHILD_STDERR = TEST_LOG_LEVEL !== undefined && TEST_LOG_LEVEL !== 'silent';

const toStderr = { write: (line: string): void => void writeSync(2, line) };

/** The last KEPT lines logged in this process, oldest first once full (a ring). */
const kept: string[] = [];
let next = 0;
let total = 0;
const toBuffer = {
  write(line: string): void {
    kept[next] = line;
    next = (next + 1) % KEPT;
    total++;
  },
};

let dumpOnFailure = false;
function armDump(): void {
  if (dumpOnFailure) return;
  dumpOnFailure = true;
  process.once('exit', (code) => {
    if (code === 0 || total === 0) return;
    const lines = total > KEPT ? [...kept.slice(next), ...kept.slice(0, next)] : kept;
    writeSync(2, `\n── a test of this file failed: the last ${lines.length} of ${total} log lines (info and up) of the gateways it ran in-process; ATTEST_TEST_LOG=debug prints them all as they happen ──\n`);
    writeSync(2, lines.join(''));
    writeSync(2, '── end of the gateways\' log ──\n');
  });
}

/** A logger for a gateway started in-process by a test (`startGateway(config, { logger: testLogger() })`). */
export function testLogger(): Logger {
  if (TEST_LOG_LEVEL !== undefined) return createLogger(TEST_LOG_LEVEL, toStderr);
  armDump();
  return createLogger('info', toBuffer);
}

/** Environment for a child process that may run the gateway: the level asked for, or nothing (its own default). */
export function childLogEnv(): Record<string, string> {
  return TEST_LOG_LEVEL === undefined ? {} : { ATTEST_LOG_LEVEL: TEST_LOG_LEVEL };
}
