/**
 * The MCP Inspector CLI (npm `@modelcontextprotocol/inspector`): a real client nobody here wrote,
 * run as a newcomer would (`npx @modelcontextprotocol/inspector --cli <url> --method …`). It is
 * installed once per machine into the cache directory deploy/local/node.sh uses
 * (`${ATTEST_CACHE_DIR:-~/.cache/attest}/inspector-<version>`), never into the project's
 * package.json; a machine that cannot install it fails the test with npm's error. Each run gets a
 * HOME of its own, so the Inspector's catalog and OAuth state never touch the user's.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { makeTempDir } from './tmp.ts';

export const INSPECTOR_VERSION = '2.12.0';
const PACKAGE = '@modelcontextprotocol/inspector';

export interface InspectorResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let installed: Promise<string> | undefined;

/** Runs `inspector --cli …args`, bounded in time; resolves with its exit code and output. */
export async function runInspector(args: readonly string[], options: { readonly timeoutMs?: number; readonly env?: Readonly<Record<string, string>> } = {}): Promise<InspectorResult> {
  const bin = await (installed ??= install());
  const home = await makeTempDir('attest-inspector-home-');
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--cli', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home, ...options.env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inspector --cli ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The installed package's CLI entry point; installs it first when missing. */
async function install(): Promise<string> {
  const cache = process.env['ATTEST_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'attest');
  const dir = path.join(cache, `inspector-${INSPECTOR_VERSION}`);
  const packageDir = path.join(dir, 'node_modules', ...PACKAGE.split('/'));
  if (!(await exists(packageDir))) {
    // Into a directory of its own, then renamed into place: concurrent test files never see half an install.
    const staging = `${dir}.${randomUUID()}`;
    await mkdir(staging, { recursive: true });
    try {
      await npmInstall(staging);
      await rename(staging, dir).catch(async (error: unknown) => {
        if (!(await exists(packageDir))) throw error;
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  const manifest = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
  const entry = manifest.bin?.['mcp-inspector'];
  if (entry === undefined) throw new Error(`${PACKAGE}@${INSPECTOR_VERSION} declares no mcp-inspector bin`);
  return path.join(packageDir, entry);
}

function npmInstall(prefix: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['install', '--no-save', '--no-package-lock', '--silent', '--ignore-scripts', '--prefix', prefix, `${PACKAGE}@${INSPECTOR_VERSION}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`npm could not install ${PACKAGE}@${INSPECTOR_VERSION} (exit ${String(code)}); the Inspector tests need it:\n${output}`));
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
