/**
 * Runs the `deploy/local` launchers for tests: each instance gets its own temporary directory
 * (config, data, log), so test runs start clean and never touch a developer's default instance.
 * The launcher watches this process (ATTEST_SERVICE_OWNER_PID) and stops the server if the
 * process dies without stopping it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type LauncherName = 'kafka' | 'clickhouse';

const LAUNCHERS: Readonly<Record<LauncherName, { dirVariable: string; endpointVariable: string }>> = {
  kafka: { dirVariable: 'ATTEST_KAFKA_DIR', endpointVariable: 'ATTEST_KAFKA_BROKERS' },
  clickhouse: { dirVariable: 'ATTEST_CLICKHOUSE_DIR', endpointVariable: 'ATTEST_CLICKHOUSE_URL' },
};

const DEPLOY_LOCAL = fileURLToPath(new URL('../../deploy/local/', import.meta.url));
/** Covers a first-time install (Maven or apt) plus the start itself. */
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;

export interface LocalService {
  readonly name: LauncherName;
  /** The instance directory (config, data, logs). */
  readonly dir: string;
  /** `127.0.0.1:PORT` for Kafka, `http://127.0.0.1:PORT` for ClickHouse. */
  readonly endpoint: string;
  /** Starts the stopped instance again on the same port, with its data. */
  start(): Promise<void>;
  /** Stops the server and keeps its data. */
  stop(): Promise<void>;
  /** Stops the server and deletes its directory. */
  dispose(): Promise<void>;
}

export interface LocalServiceOptions {
  /** Extra environment for the launcher, e.g. `ATTEST_KAFKA_PORT`. */
  env?: Readonly<Record<string, string>>;
}

export class LauncherError extends Error {
  override readonly name = 'LauncherError';
}

/** Starts a fresh instance with `deploy/local/<name>.sh start` and resolves once it answers. */
export async function startLocalService(name: LauncherName, options: LocalServiceOptions = {}): Promise<LocalService> {
  const { dirVariable, endpointVariable } = LAUNCHERS[name];
  const dir = await mkdtemp(join(tmpdir(), `attest-${name}-`));
  const env = { ...options.env, [dirVariable]: dir };
  let endpoint: string;
  try {
    endpoint = await start(name, env, endpointVariable);
  } catch (error) {
    await runLauncher(name, 'stop', env, STOP_TIMEOUT_MS).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    name,
    dir,
    endpoint,
    async start() {
      const again = await start(name, env, endpointVariable);
      if (again !== endpoint) throw new LauncherError(`${name}.sh restarted on ${again}, not on ${endpoint} (its port was taken meanwhile)`);
    },
    async stop() {
      await runLauncher(name, 'stop', env, STOP_TIMEOUT_MS);
    },
    async dispose() {
      try {
        await runLauncher(name, 'stop', env, STOP_TIMEOUT_MS);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

async function start(name: LauncherName, env: Readonly<Record<string, string>>, endpointVariable: string): Promise<string> {
  const { stdout } = await runLauncher(name, 'start', env, START_TIMEOUT_MS);
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(`${endpointVariable}=`));
  if (line === undefined) throw new LauncherError(`${name}.sh start printed no ${endpointVariable}= line; stdout:\n${stdout}`);
  return line.slice(endpointVariable.length + 1).trim();
}

function runLauncher(name: LauncherName, command: string, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  const script = join(DEPLOY_LOCAL, `${name}.sh`);
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, command],
      { env: { ...process.env, ...env, ATTEST_SERVICE_OWNER_PID: String(process.pid) }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ stdout, stderr });
        const why = error.killed ? `was killed after ${timeoutMs} ms` : `failed (exit code ${String(error.code)})`;
        reject(new LauncherError(`deploy/local/${name}.sh ${command} ${why}:\n${stderr.trimEnd()}`));
      },
    );
  });
}
