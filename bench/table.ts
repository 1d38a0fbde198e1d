/**
 * The result of one benchmark cell and the one table they are printed as (Markdown).
 * `node bench/table.ts bench/results/latest.json` prints the table of a saved run again.
 */
import { readFileSync } from 'node:fs';
import type { LoadResult } from './load/load-generator.ts';

export interface CellResult {
  readonly scenario: string;
  readonly concurrency: number;
  readonly payloadBytes: number;
  /** Open-loop cells: the offered rate. */
  readonly ratePerSecond?: number;
  readonly status: 'ok' | 'failed' | 'not run';
  readonly note?: string;
  readonly load?: LoadResult;
  readonly gatewayCpuMsPerCall?: number | undefined;
  readonly gatewayCpuPercent?: number;
  readonly gatewayPeakRssBytes?: number;
  readonly eventsPerSecond?: number;
  readonly eventsPerCall?: number | undefined;
  readonly meanBatchEvents?: number | undefined;
  readonly batches?: number;
  readonly maxFsyncMs?: number | undefined;
  readonly upstreamCpuPercent?: number;
  readonly otherCpuPercent?: number;
  readonly interruptCpuPercent?: number;
  /** Hypervisor steal during the cell, % of one core (summed over cores). */
  readonly stealCpuPercent?: number;
}

const UNITS: readonly [string, number][] = [
  ['MB', 1024 * 1024],
  ['KB', 1024],
  ['B', 1],
];

/** `100B`, `10KB`, `1MB` (binary units) or a plain byte count. */
export function parsePayload(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KB|MB)?$/i.exec(text.trim());
  if (match === null) throw new Error(`--payload takes sizes like 100B, 10KB, 1MB; got "${text}"`);
  const unit = UNITS.find(([name]) => name === (match[2] ?? 'B').toUpperCase());
  return Math.round(Number(match[1]) * (unit?.[1] ?? 1));
}

export function formatBytes(bytes: number): string {
  for (const [name, size] of UNITS) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${name}`;
  return `${bytes} B`;
}

function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function int(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '—' : Math.round(value).toLocaleString('en-US');
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

const HEADER = [
  'scenario',
  'conc.',
  'payload',
  'calls/s',
  'p50 ms',
  'p99 ms',
  'p99.9 ms',
  '+p50 ms',
  '+p99 ms',
  'gw CPU ms/call',
  'gw peak RSS MB',
  'events/s',
  'mean batch (events)',
  'loadgen CPU %',
  'other CPU %',
  'errors',
];

/** One row per cell; added latency is this cell's percentile minus the direct cell's at the same concurrency and payload. */
export function renderTable(cells: readonly CellResult[]): string {
  const direct = new Map<string, CellResult>();
  const key = (cell: CellResult): string => `${cell.concurrency}/${cell.payloadBytes}/${cell.ratePerSecond ?? 'closed'}`;
  for (const cell of cells) if (cell.scenario === 'direct' && cell.load !== undefined) direct.set(key(cell), cell);
  const rows = cells.map((cell) => {
    const head = [cell.scenario, cell.ratePerSecond === undefined ? String(cell.concurrency) : `${cell.concurrency} @ ${cell.ratePerSecond}/s`, formatBytes(cell.payloadBytes)];
    const l = cell.load;
    if (l === undefined) return [...head, `${cell.status}: ${cell.note ?? ''}`.replace(/\|/g, '/'), ...HEADER.slice(4).map(() => '')];
    const floor = cell.scenario === 'direct' ? undefined : direct.get(key(cell))?.load?.latency;
    return [
      ...head,
      int(l.callsPerSecond),
      ms(l.latency.p50Ms),
      ms(l.latency.p99Ms),
      ms(l.latency.p999Ms),
      floor === undefined ? '—' : ms(l.latency.p50Ms - floor.p50Ms),
      floor === undefined ? '—' : ms(l.latency.p99Ms - floor.p99Ms),
      fixed(cell.gatewayCpuMsPerCall, 3),
      cell.gatewayPeakRssBytes === undefined ? '—' : int(cell.gatewayPeakRssBytes / 1024 / 1024),
      cell.eventsPerSecond === undefined || cell.eventsPerSecond === 0 ? '—' : int(cell.eventsPerSecond),
      fixed(cell.meanBatchEvents, 1),
      int(l.clientCpuPercent),
      // /proc/<pid>/stat charges some network softirq work to the processes that /proc/stat counts
      // apart, so "other" can come out slightly negative on a quiet machine: shown as 0.
      int(cell.otherCpuPercent === undefined ? undefined : Math.max(0, cell.otherCpuPercent)),
      l.errors === 0 ? '0' : String(l.errors),
    ];
  });
  const lines = [HEADER, HEADER.map(() => '---'), ...rows].map((cols) => `| ${cols.join(' | ')} |`);
  return lines.join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: node bench/table.ts RESULTS.json');
  const report = JSON.parse(readFileSync(file, 'utf8')) as { cells: CellResult[] };
  process.stdout.write(`${renderTable(report.cells)}\n`);
}
