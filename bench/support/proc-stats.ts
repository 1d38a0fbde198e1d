/**
 * What Linux says about a process and the machine (proc(5)): CPU time of a process (all its
 * threads: the event loop, libuv's pool doing the writes and fdatasync, V8's GC and compiler
 * threads), its peak resident memory, and the machine's busy time, so a cell can say how much CPU
 * was spent by something other than the processes under test.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

let clockTicks: number | undefined;

/** USER_HZ: the unit of the times in /proc/<pid>/stat (100 on every Linux we run on; asked once). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time of a process so far, in ms (10 ms resolution at USER_HZ 100). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / ticksPerSecond();
}

/** Peak resident set size (VmHWM) and the current one (VmRSS), in bytes. */
export function processMemory(pid: number): { peakRssBytes: number; rssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { peakRssBytes: kb('VmHWM'), rssBytes: kb('VmRSS') };
}

/**
 * CPU time of the whole machine so far, in ms summed over cores: `processMs` is time spent running
 * processes (user, nice, system); `interruptMs` is irq + softirq (on loopback, mostly the network
 * stack, not charged to any process); `stealMs` is time the hypervisor gave to other guests.
 */
export function machineCpuMs(): { processMs: number; interruptMs: number; stealMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, ...values] = line.trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values.map(Number);
  const ms = (ticks: number): number => (ticks * 1000) / ticksPerSecond();
  return { processMs: ms(user + nice + system), interruptMs: ms(irq + softirq), stealMs: ms(steal) };
}

/**
 * Waits (bounded) until the rest of the machine is quiet: samples the time processes ran over
 * `sampleMs` until it is below `thresholdPercent` of one core, or `maxWaitMs` have passed. Returns
 * the last sample, so a cell started anyway can say how busy the machine was.
 */
export async function waitForQuietMachine(thresholdPercent: number, maxWaitMs: number, sampleMs = 1_000): Promise<number> {
  const giveUpAt = Date.now() + maxWaitMs;
  for (;;) {
    const before = machineCpuMs().processMs;
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    const busyPercent = ((machineCpuMs().processMs - before) / sampleMs) * 100;
    if (busyPercent < thresholdPercent || Date.now() >= giveUpAt) return busyPercent;
  }
}

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly loadAverage: readonly number[];
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const memTotalKb = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return {
    cores: cpus().length,
    cpuModel: model,
    memoryGiB: Math.round((memTotalKb / 1024 / 1024) * 10) / 10,
    node: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
