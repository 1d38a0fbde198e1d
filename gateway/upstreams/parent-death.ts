/**
 * Upstream processes die with the gateway, even when it is killed outright (`kill -9`, the OOM killer) and
 * even when the process ignores stdin EOF and SIGTERM: on Linux each stdio child is started through
 * `setpriv --pdeathsig KILL` (util-linux), which sets PR_SET_PDEATHSIG and then execs the command in place
 * (same pid, same argv for the command). The kernel sends SIGKILL to the child when the thread that spawned
 * it ends; Node spawns from the main thread, which lives as long as the gateway process.
 *
 * Where `setpriv` is missing (not Linux, a minimal image) the command runs as is and a watchdog process
 * kills it when the gateway dies (watchdog.ts). `ATTEST_UPSTREAM_GUARD=watchdog` forces the watchdog where
 * setpriv exists (how the fallback is tested on Linux).
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'];

let setpriv: string | null | undefined;

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The path of `setpriv` on this machine, looked up once; undefined when there is none (or not on Linux). */
export function setprivPath(): string | undefined {
  if (setpriv === undefined) setpriv = process.platform === 'linux' && process.env['ATTEST_UPSTREAM_GUARD'] !== 'watchdog' ? (SETPRIV_CANDIDATES.find(executable) ?? null) : null;
  return setpriv ?? undefined;
}

/** The command as the OS would find it (an absolute path), or undefined when it does not exist or is not executable. */
function resolveCommand(command: string, searchPath: string | undefined, cwd: string | undefined): string | undefined {
  if (command.includes('/')) {
    const absolute = path.resolve(cwd ?? process.cwd(), command);
    return executable(absolute) ? absolute : undefined;
  }
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

export interface SpawnCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** Whether the child gets SIGKILL when the gateway dies (PR_SET_PDEATHSIG through setpriv). */
  readonly diesWithGateway: boolean;
}

/**
 * The command line that starts `command args` so that it dies with the gateway. A command that cannot be
 * found is left as is, so that spawning it fails with ENOENT (and its hint) as it always did; it starts
 * no process that could be orphaned.
 */
export function dieWithGateway(command: string, args: readonly string[], env: Readonly<Record<string, string>>, cwd: string | undefined): SpawnCommand {
  const wrapper = setprivPath();
  if (wrapper === undefined) return { command, args, diesWithGateway: false };
  const resolved = resolveCommand(command, env['PATH'] ?? process.env['PATH'], cwd);
  if (resolved === undefined) return { command, args, diesWithGateway: false };
  return { command: wrapper, args: ['--pdeathsig', 'KILL', '--', resolved, ...args], diesWithGateway: true };
}
