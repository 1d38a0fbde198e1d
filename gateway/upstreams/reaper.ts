import type { ChildProcess } from 'node:child_process';

/**
 * The last line of defence against orphaned upstream processes, for the paths where no `close()` runs.
 *
 * - The gateway is killed outright (`kill -9`, OOM killer): nothing here can run. Where setpriv exists the
 *   kernel SIGKILLs each child (parent-death.ts); elsewhere children see EOF on stdin, which the MCP stdio
 *   transport treats as the end of the session, and exit on their own.
 * - The process exits (`process.exit()`, an uncaught exception, the event loop drained): the `exit` hook
 *   SIGKILLs every child still alive. It must be synchronous, so there is no graceful step.
 * - SIGINT / SIGTERM / SIGHUP with no other listener: the children are SIGKILLed and the signal is raised
 *   again, so the gateway still dies of it as it would have. When the application has its own listener,
 *   it owns shutdown (and closes links gracefully); this module then stays out of the way and the `exit`
 *   hook remains the backstop.
 */
const living = new Set<ChildProcess>();
const FATAL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

/** Registers a spawned upstream process; it is forgotten again when it exits. */
export function reapOnExit(child: ChildProcess): void {
  if (!installed) install();
  living.add(child);
  child.once('exit', () => living.delete(child));
}

/** How many registered processes are still alive (for tests and diagnostics). */
export function livingChildren(): number {
  return living.size;
}

function killAll(): void {
  for (const child of living) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone between the check and the kill; nothing to do.
    }
  }
  living.clear();
}

function onFatalSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  killAll();
  process.removeListener(signal, onFatalSignal);
  process.kill(process.pid, signal);
}

function install(): void {
  installed = true;
  process.on('exit', killAll);
  for (const signal of FATAL_SIGNALS) process.on(signal, onFatalSignal);
}
