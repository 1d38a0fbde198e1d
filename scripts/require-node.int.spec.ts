/**
 * The Node version check that opens every npm script needing a recent Node
 * (scripts/require-node.cjs): run by an old Node it says what to run and exits 1; by this Node it
 * passes. The old Node is the machine's own (`/usr/bin/node`, Debian's 20) when it has one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.join(import.meta.dirname, '..');
const CHECK = path.join(REPO, 'scripts', 'require-node.cjs');
const SYSTEM_NODE = '/usr/bin/node';
const SCRIPTS = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

function check(node: string, wanted: string, script?: string): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['npm_lifecycle_event'];
  if (script !== undefined) env['npm_lifecycle_event'] = script;
  const result = spawnSync(node, [CHECK, wanted], { cwd: REPO, env, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function versionOf(node: string): string {
  return execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8', timeout: 30_000 }).trim();
}

const older = ((): { skip: string } | { node: string; version: string } => {
  if (!existsSync(SYSTEM_NODE)) return { skip: `no ${SYSTEM_NODE} on this machine: no older Node to run the check with` };
  const version = versionOf(SYSTEM_NODE);
  if (Number(version.split('.')[0]) >= 24) return { skip: `${SYSTEM_NODE} is Node ${version}, not older than 24: no older Node to run the check with` };
  return { node: SYSTEM_NODE, version };
})();

describe('scripts/require-node.cjs', () => {
  it('run by an older Node: one line naming the script, both versions and `. deploy/local/node.sh`; exit 1', { ...('skip' in older && { skip: older.skip }) }, () => {
    if ('skip' in older) return;
    const result = check(older.node, '24', 'test');
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stdout, '');
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? '', /^npm test needs Node >= 24, but this shell runs Node \d+\.\d+\.\d+ \(\/usr\/bin\/node\): run `\. deploy\/local\/node\.sh` first/);
    assert.ok(lines[0]?.includes(older.version), lines[0]);
    assert.match(check(older.node, '22.18', 'attest').stderr, /^npm run attest needs Node >= 22\.18, but this shell runs Node /);
  });

  it('run by an older Node through npm: `npm run attest` and `npm test` stop at the check, before anything needing the newer Node', { timeout: 120_000, ...('skip' in older && { skip: older.skip }) }, () => {
    if ('skip' in older) return;
    // Node's own directory first on PATH, so npm and the scripts' `node` are the old Node, as in a shell without deploy/local/node.sh.
    const env = { ...process.env, PATH: `${path.dirname(older.node)}:${process.env['PATH'] ?? ''}` };
    for (const [args, script] of [[['run', '--silent', 'attest', '--', '--version'], 'npm run attest'], [['test', '--silent'], 'npm test']] as const) {
      const result = spawnSync(path.join(path.dirname(older.node), 'npm'), args, { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 });
      assert.notEqual(result.status, 0, `${script} passed on Node ${older.version}`);
      assert.match(result.stderr, new RegExp(`^${script} needs Node >= \\d+(\\.\\d+)?, but this shell runs Node ${older.version.replaceAll('.', '\\.')}`, 'm'), result.stderr);
      assert.doesNotMatch(result.stderr, /ERR_UNKNOWN_FILE_EXTENSION|bad option/, result.stderr);
    }
  });

  it('run by this Node (≥ 24): passes silently', () => {
    for (const wanted of ['24', '22.18', '22.18.0']) {
      const result = check(process.execPath, wanted, 'test');
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stderr, '');
    }
  });

  it('refuses a Node newer than this one, and a malformed version (exit 2)', () => {
    const [major] = process.versions.node.split('.');
    assert.equal(check(process.execPath, String(Number(major) + 1)).status, 1);
    assert.match(check(process.execPath, String(Number(major) + 1)).stderr, /^this needs Node >= /);
    assert.equal(check(process.execPath, 'latest').status, 2);
  });

  it('opens every npm script that runs TypeScript sources, dist/ or the test runner; `npm test` asks for 24 (--test-global-setup)', () => {
    const needsNode = Object.entries(SCRIPTS).filter(([, command]) => /node (--conditions=attest-source|dist\/|.*--test\b)|\.ts\b/.test(command) && !/^(tsc|eslint)\b/.test(command));
    assert.ok(needsNode.length >= 5, `found ${needsNode.map(([name]) => name).join(', ')}`);
    for (const [name, command] of needsNode) assert.match(command, /^node scripts\/require-node\.cjs (24|22\.18) && /, `npm script "${name}" does not check the Node version first: ${command}`);
    assert.match(SCRIPTS['test'] ?? '', /^node scripts\/require-node\.cjs 24 && /);
  });
});
