/**
 * The fallback for parent-death.ts where `setpriv` is missing: one small watchdog process per gateway that
 * SIGKILLs the gateway's stdio upstreams once the gateway is gone, however it went (`kill -9` included).
 *
 * The gateway holds the write end of a pipe to the watchdog's stdin and tells it each upstream pid as it
 * starts (`+<pid>`) and ends (`-<pid>`). The kernel closes that pipe when the gateway process dies, so the
 * watchdog reads EOF, kills every pid it still holds and exits. It runs detached (its own session, so a
 * Ctrl-C to the gateway's terminal does not take it first) and ignores SIGTERM, SIGINT and SIGHUP; the
 * gateway does not wait for it (both the process and the pipe are unref'd).
 *
 * A pid is forgotten as soon as its process exits, so the window in which a reused pid could be killed is
 * the time between an upstream's exit and the gateway's death within the same moment.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';

const WATCHDOG_SOURCE = `
const pids = new Set();
let buffer = '';
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => {});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let end;
  while ((end = buffer.indexOf('\\n')) >= 0) {
    const line = buffer.slice(0, end);
    buffer = buffer.slice(end + 1);
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 1) continue;
    if (line[0] === '+') pids.add(pid);
    else pids.delete(pid);
  }
});
const killAll = () => {
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch {}
  }
  process.exit(0);
};
process.stdin.on('end', killAll);
process.stdin.on('error', killAll);
`;

let watchdog: ChildProcess | undefined;

function start(): ChildProcess {
  const child = spawn(process.execPath, ['-e', WATCHDOG_SOURCE], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  child.unref();
  child.stdin?.on('error', () => undefined);
  // The pipe must not keep the gateway's event loop alive; it is closed by the kernel when the gateway ends.
  if (child.stdin instanceof Socket) child.stdin.unref();
  child.once('exit', () => {
    if (watchdog === child) watchdog = undefined;
  });
  return child;
}

/** Has the watchdog kill `child` when the gateway dies before it does. */
export function killOnGatewayDeath(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  watchdog ??= start();
  const guard = watchdog;
  guard.stdin?.write(`+${pid}\n`);
  child.once('exit', () => {
    if (guard.exitCode === null && guard.signalCode === null) guard.stdin?.write(`-${pid}\n`);
  });
}
