/** Runs the `attest` CLI from source as a child process, bounded in time, and collects what it printed. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { childLogEnv, ECHO_CHILD_STDERR } from './log.ts';

export const CLI_SCRIPT = path.join(import.meta.dirname, '..', '..', 'cli', 'attest.ts');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], options: { readonly env?: Readonly<Record<string, string>>; readonly input?: string; readonly timeoutMs?: number } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=attest-source', CLI_SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...childLogEnv(), ...options.env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`attest ${args.join(' ')} did not finish in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (ECHO_CHILD_STDERR) process.stderr.write(c);
    });
    child.stdin.end(options.input ?? '');
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
