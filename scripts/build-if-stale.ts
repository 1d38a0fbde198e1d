/**
 * `npm start` builds dist/ only when it is older than what it is built from: every source
 * tsconfig.build.json takes in (its include/exclude, through its `extends`), the tsconfig files
 * themselves and package.json. A successful build leaves `<outDir>/.build-inputs`, the list of
 * inputs, dated from when the build began (a file saved during the build is newer, so the next
 * start builds again). dist/ is rebuilt when that record is missing, lists other files, is older
 * than any input, or an input's output (`.ts` → `.js`) is missing; otherwise nothing runs.
 * `npm run build` still builds unconditionally (and leaves no record: the next start builds once).
 *
 *   node scripts/build-if-stale.ts [ROOT]        (ROOT: the project, default the current directory)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, globSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const BUILD_CONFIG = 'tsconfig.build.json';
export const RECORD = '.build-inputs';

interface TsConfig {
  readonly extends?: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly files?: readonly string[];
  readonly compilerOptions?: { readonly outDir?: string; readonly rootDir?: string };
}

/** The settings that decide what is built and where, after following `extends`; paths relative to the project. */
interface BuildPlan {
  readonly configFiles: readonly string[];
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly files: readonly string[];
  readonly outDir: string;
  readonly rootDir: string;
}

export type Staleness = { readonly stale: false; readonly inputs: readonly string[] } | { readonly stale: true; readonly reason: string; readonly inputs: readonly string[] };

const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts'];

function readPlan(root: string): BuildPlan {
  const configFiles: string[] = [];
  let plan: Partial<Record<'include' | 'exclude' | 'files', string[]>> & { outDir?: string; rootDir?: string } = {};
  // Nearest config first; a setting a config does not give comes from the one it extends.
  for (let file: string | undefined = path.join(root, BUILD_CONFIG); file !== undefined; ) {
    const config = readTsConfig(file);
    const dir = path.dirname(file);
    const rel = (p: string): string => path.relative(root, path.resolve(dir, p)) || '.';
    configFiles.push(path.relative(root, file));
    plan = {
      include: plan.include ?? config.include?.map(rel),
      exclude: plan.exclude ?? config.exclude?.map(rel),
      files: plan.files ?? config.files?.map(rel),
      outDir: plan.outDir ?? (config.compilerOptions?.outDir === undefined ? undefined : rel(config.compilerOptions.outDir)),
      rootDir: plan.rootDir ?? (config.compilerOptions?.rootDir === undefined ? undefined : rel(config.compilerOptions.rootDir)),
    };
    file = config.extends === undefined ? undefined : path.resolve(dir, config.extends.endsWith('.json') ? config.extends : `${config.extends}.json`);
  }
  if (plan.outDir === undefined) throw new Error(`${BUILD_CONFIG} names no compilerOptions.outDir: nothing to compare the sources with`);
  return { configFiles, include: plan.include ?? ['**/*'], exclude: plan.exclude ?? ['node_modules'], files: plan.files ?? [], outDir: plan.outDir, rootDir: plan.rootDir ?? '.' };
}

/**
 * A tsconfig include/exclude entry as globs, as tsc reads it: an include whose last segment has no
 * extension is a folder (or a wildcard) standing for the sources in it; an exclude without
 * wildcards is that path and everything under it.
 */
function globsOf(entry: string, forInclude: boolean): string[] {
  const wild = /[*?]/.test(entry);
  if (forInclude) return path.extname(entry) !== '' ? [entry] : SOURCE_EXTENSIONS.map((ext) => `${wild ? entry : `${entry}/**/*`}${ext}`);
  return wild ? [entry] : [entry, `${entry}/**`];
}

/** tsconfig files are JSON with comments; plain JSON (ours) needs no compiler, anything else is left to TypeScript's reader. */
function readTsConfig(file: string): TsConfig {
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as TsConfig;
  } catch {
    const ts = createRequire(import.meta.url)('typescript') as { readConfigFile(name: string, read: (name: string) => string | undefined): { config?: unknown; error?: { messageText: unknown } } };
    const read = ts.readConfigFile(file, () => text);
    if (read.error !== undefined || read.config === undefined) throw new Error(`${file}: ${JSON.stringify(read.error?.messageText ?? 'unreadable')}`);
    return read.config as TsConfig;
  }
}

/** Every file the build is made from, relative to the project, sorted: sources, the tsconfig chain, package.json. */
export function buildInputs(root: string, plan: BuildPlan = readPlan(root)): string[] {
  const sources = globSync(plan.include.flatMap((entry) => globsOf(entry, true)), { cwd: root, exclude: plan.exclude.flatMap((entry) => globsOf(entry, false)) });
  return [...new Set([...sources, ...plan.files, ...plan.configFiles, 'tsconfig.json', 'package.json'])].filter((file) => existsSync(path.join(root, file))).sort();
}

/** Where tsc writes the JavaScript of `source` (no output for declaration files and non-sources). */
function outputOf(plan: BuildPlan, source: string): string | undefined {
  if (source.endsWith('.d.ts') || !SOURCE_EXTENSIONS.includes(path.extname(source))) return undefined;
  const js = source.replace(/\.ts$/, '.js').replace(/\.tsx$/, '.js').replace(/\.mts$/, '.mjs').replace(/\.cts$/, '.cjs');
  return path.join(plan.outDir, path.relative(plan.rootDir, js));
}

export function staleness(root: string): Staleness {
  let plan: BuildPlan;
  try {
    plan = readPlan(root);
  } catch (error) {
    return { stale: true, reason: `${BUILD_CONFIG} could not be read (${(error as Error).message})`, inputs: [] };
  }
  const inputs = buildInputs(root, plan);
  const record = path.join(root, plan.outDir, RECORD);
  if (!existsSync(record)) return { stale: true, reason: `${path.join(plan.outDir, RECORD)} is missing (never built by npm start, or the last build failed)`, inputs };
  let built: { inputs?: unknown };
  try {
    built = JSON.parse(readFileSync(record, 'utf8')) as { inputs?: unknown };
  } catch {
    return { stale: true, reason: `${path.join(plan.outDir, RECORD)} is unreadable`, inputs };
  }
  const before = new Set(Array.isArray(built.inputs) ? built.inputs.map(String) : []);
  const added = inputs.filter((file) => !before.has(file));
  const removed = [...before].filter((file) => !inputs.includes(file));
  if (added.length > 0 || removed.length > 0) return { stale: true, reason: `the sources changed since the last build (${[...added.map((f) => `added ${f}`), ...removed.map((f) => `removed ${f}`)].slice(0, 3).join(', ')}${added.length + removed.length > 3 ? ', …' : ''})`, inputs };
  const builtAt = statSync(record).mtimeMs;
  for (const file of inputs) {
    if (statSync(path.join(root, file)).mtimeMs > builtAt) return { stale: true, reason: `${file} changed since the last build`, inputs };
    const output = outputOf(plan, file);
    if (output !== undefined && !existsSync(path.join(root, output))) return { stale: true, reason: `${output} is missing`, inputs };
  }
  return { stale: false, inputs };
}

/** Records a successful build of `inputs` begun at `startedAtMs`. */
export function recordBuild(root: string, inputs: readonly string[], startedAtMs: number): void {
  const record = path.join(root, readPlan(root).outDir, RECORD);
  writeFileSync(record, `${JSON.stringify({ inputs }, null, 1)}\n`);
  utimesSync(record, startedAtMs / 1000, startedAtMs / 1000);
}

function forgetBuild(root: string): void {
  try {
    rmSync(path.join(root, readPlan(root).outDir, RECORD), { force: true });
  } catch {
    // no readable config: there is no record to forget either
  }
}

/** Builds when stale; returns the exit code (tsc's when it ran). */
export function buildIfStale(root: string, say: (line: string) => void = (line) => void process.stderr.write(`${line}\n`)): number {
  const state = staleness(root);
  if (!state.stale) {
    say(`dist/ is up to date with its ${state.inputs.length} inputs: not rebuilding (npm run build builds anyway)`);
    return 0;
  }
  say(`building dist/: ${state.reason}`);
  const startedAtMs = Date.now();
  // A failed or interrupted build must never look like an up-to-date one.
  forgetBuild(root);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, BUILD_CONFIG)], { cwd: root, stdio: 'inherit' });
  const code = result.status ?? 1;
  if (code === 0 && state.inputs.length > 0) recordBuild(root, state.inputs, startedAtMs);
  return code;
}

if (path.resolve(process.argv[1] ?? '') === import.meta.filename) process.exitCode = buildIfStale(path.resolve(process.argv[2] ?? '.'));
