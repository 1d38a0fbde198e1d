/**
 * Test runs are quiet unless asked (test/harness/log.ts): a test file that starts gateways — one
 * in-process, one as a CLI child — run with `node --test` prints no log line when it passes;
 * when it fails it prints the assertion and the in-process gateways' log; ATTEST_TEST_LOG=<level>
 * prints both gateways' logs at that level as they happen. And `npm test` silences kafkajs's
 * TimeoutNegativeWarning (tulios/kafkajs#1751) and no other warning.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.join(import.meta.dirname, '..', '..');
const FIXTURE = path.join(REPO, 'test', 'fixtures', 'test-log', 'gateways.fixture.ts');

interface Run {
  readonly code: number | null;
  /** stdout and stderr, as a person running it sees them. */
  readonly output: string;
}

/** `node --test` on the fixture as `npm test` runs a file, with only the given variables of ours set. */
function runFixture(env: Record<string, string>): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // Inside a test run this says "report to a parent runner": the nested run must report as a top-level one.
  delete childEnv['NODE_TEST_CONTEXT'];
  for (const name of ['ATTEST_TEST_LOG', 'ATTEST_LOG_LEVEL', 'FIXTURE_FAIL']) if (!(name in env)) delete childEnv[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=attest-source', '--test', '--test-reporter=spec', FIXTURE], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the fixture run did not finish in 120 s:\n${output}`));
    }, 120_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly dir?: string;
}

function logLines(output: string): LogLine[] {
  return output.split('\n').filter((line) => line.startsWith('{"level":')).map((line) => JSON.parse(line) as LogLine);
}

describe('quiet test runs, verbose on request (ATTEST_TEST_LOG)', () => {
  it('a passing file that runs gateways prints its results and no log line', { timeout: 150_000 }, async () => {
    const run = await runFixture({});
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /✔ runs a gateway in-process and one as a CLI child/);
    assert.deepEqual(logLines(run.output), [], run.output);
    assert.doesNotMatch(run.output, /"level":/);
  });

  it('a failing file prints the assertion, then the last log lines of its in-process gateways', { timeout: 150_000 }, async () => {
    const run = await runFixture({ FIXTURE_FAIL: '1' });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /FIXTURE_FAIL asked this test to fail/);
    assert.match(run.output, /── a test of this file failed: the last \d+ of \d+ log lines \(info and up\) of the gateways it ran in-process; ATTEST_TEST_LOG=debug prints them all as they happen ──/);
    const messages = logLines(run.output).map((line) => line.msg);
    for (const msg of ['event log opened', 'attest gateway listening', 'event log closed']) assert.ok(messages.includes(msg), `"${msg}" in the failure output:\n${run.output}`);
  });

  it('ATTEST_TEST_LOG=info prints the logs of the in-process gateway and of the CLI child as they happen', { timeout: 150_000 }, async () => {
    const run = await runFixture({ ATTEST_TEST_LOG: 'info' });
    assert.equal(run.code, 0, run.output);
    const opened = logLines(run.output).filter((line) => line.msg === 'event log opened');
    assert.ok(opened.some((line) => line.dir?.includes('cli-child-log') === true), `the CLI child's log:\n${run.output}`);
    assert.ok(opened.some((line) => line.dir?.includes('cli-child-log') === false), `the in-process gateway's log:\n${run.output}`);
    assert.doesNotMatch(run.output, /a test of this file failed/);
  });

  it('ATTEST_TEST_LOG=warn prints nothing below warn, from either', { timeout: 150_000 }, async () => {
    const run = await runFixture({ ATTEST_TEST_LOG: 'warn' });
    assert.equal(run.code, 0, run.output);
    assert.deepEqual(logLines(run.output).filter((line) => line.level < 40), [], run.output);
  });

  it('npm test disables the TimeoutNegativeWarning, and no other warning', () => {
    const script = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['test'] ?? '';
    const runner = script.split('&&').map((part) => part.trim()).find((part) => part.includes(' --test ')) ?? '';
    const warningFlags = runner.split(/\s+/).filter((word) => /warning/i.test(word));
    assert.deepEqual(warningFlags, ['--disable-warning=TimeoutNegativeWarning'], runner);
    const probe = spawnSync(process.execPath, [...warningFlags, '-e', "setTimeout(() => undefined, -1); process.emitWarning('still shown', 'OtherWarning')"], { encoding: 'utf8', timeout: 30_000 });
    assert.doesNotMatch(probe.stderr, /TimeoutNegativeWarning/);
    assert.match(probe.stderr, /OtherWarning: still shown/);
  });
});
