/**
 * A gateway in a process of its own (`attest gateway --config FILE`), for tests that must kill it
 * with SIGKILL. The caller kills it; `exited` resolves once it is gone.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const CLI = path.join(import.meta.dirname, '..', '..', 'cli', 'attest.ts');

export interface CliGateway {
  readonly child: ChildProcess;
  /** `http://host:port`, once it listens. */
  readonly url: Promise<string>;
  /** Sends SIGKILL and waits for the process to be gone. */
  kill(): Promise<void>;
}

export function startCliGateway(configFile: string): CliGateway {
  const child = spawn(process.execPath, ['--conditions=attest-source', CLI, 'gateway', '--config', configFile, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ATTEST_LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within 30 s; stderr: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      resolve(match[1]);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  url.catch(() => undefined);
  return {
    child,
    url,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await gone;
    },
  };
}
