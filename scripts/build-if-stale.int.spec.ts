/**
 * `npm start` builds only when dist/ is older than its inputs (scripts/build-if-stale.ts): on a
 * small project in a temp dir laid out like this one (tsconfig.build.json extending
 * tsconfig.json, spec files excluded), each kind of change leads to a build and nothing else does;
 * and the inputs it watches for this repository are exactly the files tsc compiles.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { makeTempDir, removeAllTempDirs } from '../test/harness/tmp.ts';
import { BUILD_CONFIG, buildInputs, RECORD, recordBuild, staleness } from './build-if-stale.ts';

const REPO = path.join(import.meta.dirname, '..');
const SCRIPT = path.join(import.meta.dirname, 'build-if-stale.ts');

/** A file's mtime moved `seconds` away from now (the past by default), so ordering never depends on clock resolution. */
function touch(root: string, file: string, seconds = 0): void {
  const at = Date.now() / 1000 + seconds;
  utimesSync(path.join(root, file), at, at);
}

function write(root: string, file: string, text: string, ageSeconds = 3600): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), text);
  touch(root, file, -ageSeconds);
}

/** The project, with dist/ as a build would leave it an hour ago (outputs and the record). */
async function builtProject(): Promise<string> {
  const root = await makeTempDir('attest-build-stale-');
  write(root, 'package.json', '{ "name": "p", "type": "module" }\n');
  write(root, 'tsconfig.json', JSON.stringify({ compilerOptions: { target: 'ES2023', module: 'NodeNext', moduleResolution: 'NodeNext', types: [], skipLibCheck: true, outDir: 'dist', rootDir: '.' }, include: ['src', 'test'] }));
  write(root, BUILD_CONFIG, JSON.stringify({ extends: './tsconfig.json', include: ['src'], exclude: ['**/*.spec.ts', '**/fixtures/**'] }));
  write(root, 'src/a.ts', 'export const a: number = 1;\n');
  write(root, 'src/lib/b.ts', "import { a } from '../a.js';\nexport const b = a + 1;\n");
  write(root, 'src/a.spec.ts', 'export {};\n');
  write(root, 'src/fixtures/f.ts', 'export {};\n');
  write(root, 'test/t.ts', 'export {};\n');
  write(root, 'dist/src/a.js', '');
  write(root, 'dist/src/lib/b.js', '');
  recordBuild(root, buildInputs(root), Date.now() - 1800_000);
  return root;
}

function runScript(root: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8', timeout: 100_000 });
}

function reason(root: string): string | undefined {
  const state = staleness(root);
  return state.stale ? state.reason : undefined;
}

describe('npm start builds only when dist/ is out of date (scripts/build-if-stale.ts)', () => {
  after(async () => removeAllTempDirs());

  it('watches the sources tsconfig.build.json compiles, the tsconfig chain and package.json', async () => {
    const root = await builtProject();
    assert.deepEqual(buildInputs(root), ['package.json', 'src/a.ts', 'src/lib/b.ts', BUILD_CONFIG, 'tsconfig.json']);
  });

  it('nothing changed since the last build: no rebuild', async () => {
    const root = await builtProject();
    assert.equal(reason(root), undefined);
  });

  it('a file outside the build (a spec, a fixture, a test helper) changed: no rebuild', async () => {
    const root = await builtProject();
    for (const file of ['src/a.spec.ts', 'src/fixtures/f.ts', 'test/t.ts']) touch(root, file);
    assert.equal(reason(root), undefined);
  });

  for (const file of ['src/a.ts', 'src/lib/b.ts', BUILD_CONFIG, 'tsconfig.json', 'package.json']) {
    it(`${file} touched after the build: rebuild, naming it`, async () => {
      const root = await builtProject();
      touch(root, file);
      assert.equal(reason(root), `${file} changed since the last build`);
    });
  }

  it('a source added (even one dated before the build) or removed: rebuild', async () => {
    const root = await builtProject();
    write(root, 'src/c.ts', 'export {};\n', 7200);
    assert.match(reason(root) ?? '', /the sources changed since the last build \(added src\/c\.ts\)/);
    const other = await builtProject();
    rmSync(path.join(other, 'src/lib/b.ts'));
    assert.match(reason(other) ?? '', /removed src\/lib\/b\.ts/);
  });

  it('an output missing, no record of a build, or dist/ missing altogether: rebuild', async () => {
    const root = await builtProject();
    rmSync(path.join(root, 'dist/src/lib/b.js'));
    assert.equal(reason(root), `${path.join('dist', 'src', 'lib', 'b.js')} is missing`);
    const unrecorded = await builtProject();
    rmSync(path.join(unrecorded, 'dist', RECORD));
    assert.match(reason(unrecorded) ?? '', /\.build-inputs is missing/);
    const gone = await builtProject();
    rmSync(path.join(gone, 'dist'), { recursive: true });
    assert.match(reason(gone) ?? '', /\.build-inputs is missing/);
  });

  it('run for real: builds the first time, then leaves dist/ alone until a source changes', { timeout: 120_000 }, async () => {
    const root = await builtProject();
    rmSync(path.join(root, 'dist'), { recursive: true });
    const run = (): { status: number | null; stderr: string } => runScript(root);

    const first = run();
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^building dist\/: /);
    assert.match(readFileSync(path.join(root, 'dist/src/lib/b.js'), 'utf8'), /a \+ 1/);
    const builtAt = statSync(path.join(root, 'dist/src/a.js')).mtimeMs;

    const second = run();
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /^dist\/ is up to date with its 5 inputs: not rebuilding/);
    assert.equal(statSync(path.join(root, 'dist/src/a.js')).mtimeMs, builtAt, 'dist/ untouched');

    write(root, 'src/a.ts', 'export const a: number = 41;\n', -1);
    const third = run();
    assert.match(third.stderr, /^building dist\/: src\/a\.ts changed since the last build/);
    assert.match(readFileSync(path.join(root, 'dist/src/a.js'), 'utf8'), /41/);
  });

  it('a failed build leaves no record, so the next start builds again', { timeout: 120_000 }, async () => {
    const root = await builtProject();
    write(root, 'src/a.ts', 'export const a: number = "not a number";\n', -1);
    const failed = runScript(root);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stdout, /TS2322/);
    assert.match(reason(root) ?? '', /\.build-inputs is missing/);
  });

  it("for this repository, the sources watched are exactly those tsc compiles from tsconfig.build.json", () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(REPO, BUILD_CONFIG), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')) });
    assert.ok(parsed !== undefined && parsed.errors.length === 0);
    const compiled = parsed.fileNames.map((file) => path.relative(REPO, file)).sort();
    const watched = buildInputs(REPO).filter((file) => file.endsWith('.ts'));
    assert.ok(compiled.length > 50, `tsc compiles ${compiled.length} files`);
    assert.deepEqual(watched, compiled);
  });
});
