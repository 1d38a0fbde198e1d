/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): where the samples were, by function (self
 * and total time) and by component (a package, a Node core area, an Attest folder), as Markdown.
 *
 *   node bench/profile/cpuprofile-summary.ts FILE.cpuprofile [--top 30]
 *
 * Self time of a sample is the interval until the next sample; total time counts a function once
 * per sample however often it recurses.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface Row {
  readonly name: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

export interface ProfileSummary {
  readonly wallMs: number;
  readonly sampledMs: number;
  readonly idleMs: number;
  readonly functions: readonly Row[];
  readonly components: readonly Row[];
  /** Each busy sample counted once, for the innermost frame that belongs to a stage of the gateway's hot path. */
  readonly stages: readonly { readonly stage: string; readonly ms: number }[];
}

/**
 * Stages of the gateway's hot path, innermost first: a sample belongs to the first stage found
 * walking from the sampled frame towards the root, so Node core and library frames count for the
 * Attest or SDK code that called them (a socket write made by the SDK's server transport is the
 * transport's; seal() called from inside the SDK's onmessage is the log's).
 */
const STAGES: readonly { readonly stage: string; readonly match: (frame: CallFrame) => boolean }[] = [
  { stage: 'log: seal (zod check of the draft, RFC 8785 canonical JSON, SHA-256)', match: (f) => f.url.includes('/eventlog/chain.ts') },
  { stage: 'log: encode, group commit, write, fdatasync completion', match: (f) => f.url.includes('/eventlog/') },
  { stage: 'recording: payload digest (JSON.stringify, canonical JSON, SHA-256)', match: (f) => f.url.includes('/gateway/recorder.ts') && f.functionName === 'recordPayload' },
  { stage: 'recording: event ids (UUIDv7) and timestamps', match: (f) => f.url.includes('/schemas/ids.ts') },
  { stage: 'recording: drafts and the append call', match: (f) => f.url.includes('/gateway/recorder.ts') },
  { stage: 'upstream leg: SDK client transport + fetch (undici) + AbortSignal/ALS', match: (f) => f.url.includes('/@modelcontextprotocol/client/') || f.url.includes('/gateway/upstreams/') || f.url.includes('undici') },
  { stage: 'downstream leg: SDK server transport + @hono/node-server + web streams', match: (f) => /\/@modelcontextprotocol\/(server|node|core)\/|\/@hono\/|webstreams/.test(f.url) },
  { stage: 'session relay (plan, id mapping, receipts, responses)', match: (f) => f.url.includes('/gateway/session/') },
  { stage: 'front door: Fastify routing, hooks, API key, body parse', match: (f) => /\/(fastify|find-my-way|light-my-request|avvio)\/|\/gateway\/(http|auth)\//.test(f.url) },
];
/** For samples with none of the stages above on their stack (async continuations started by Node itself). */
const FALLBACK_STAGES: readonly { readonly stage: string; readonly match: (frame: CallFrame) => boolean }[] = [
  { stage: 'garbage collection', match: (f) => f.functionName === '(garbage collector)' },
  { stage: 'zod, called from a continuation', match: (f) => f.url.includes('/zod/') },
  { stage: 'Node core with no Attest or SDK caller on the stack (socket writes, HTTP parsing, stream and timer callbacks)', match: (f) => /^node:/.test(f.url) || f.url === '' },
];
const UNATTRIBUTED = 'other (native without a JS caller, V8 "(program)")';

const REPO_MARKER = /\/(schemas|eventlog|gateway|cli|bench|projector|reporting|test)\//;

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  const repo = REPO_MARKER.exec(url);
  if (repo !== null) return url.slice(repo.index + 1);
  return url.replace(/^file:\/\//, '');
}

/** The component a frame belongs to: an npm package, an area of Node core, an Attest folder, or V8 itself. */
export function componentOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'V8: garbage collector';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return 'V8/native: (program)';
    if (functionName === '(root)') return '(root)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + '/node_modules/'.length).split('/');
    return `npm: ${parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '?')}`;
  }
  if (url.startsWith('node:')) {
    const path = url.slice('node:'.length).replace(/^internal\//, '');
    if (/^(deps\/undici|undici)/.test(path)) return 'node: undici (fetch)';
    if (/^(_http|http)/.test(path) || path.startsWith('http')) return 'node: http';
    if (/^(net|stream|streams|_stream|tcp|dns)/.test(path) || path.startsWith('stream_base')) return 'node: net/streams';
    if (/^(fs|file)/.test(path)) return 'node: fs';
    if (/^crypto/.test(path)) return 'node: crypto';
    if (/^(process|timers|async_hooks|event_target|events|abort_controller)/.test(path) || path === 'events') return 'node: process/timers/events';
    return `node: ${path.split('/')[0] ?? path}`;
  }
  const repo = REPO_MARKER.exec(url);
  if (repo !== null) {
    const rest = url.slice(repo.index + 1);
    return `attest: ${rest.split('/').slice(0, 2).join('/')}`;
  }
  return url;
}

function functionKey(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return name;
  return `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

export function summarise(profile: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const componentSelf = new Map<string, number>();
  const componentTotal = new Map<string, number>();
  const stages = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number): void => {
    map.set(key, (map.get(key) ?? 0) + us);
  };
  const { samples, timeDeltas } = profile;
  let sampledUs = 0;
  let idleUs = 0;
  for (let i = 0; i < samples.length; i++) {
    // A sample stands for the time until the next one.
    const us = Math.max(0, timeDeltas[i + 1] ?? 0);
    const leaf = byId.get(samples[i] as number);
    if (leaf === undefined) continue;
    sampledUs += us;
    if (leaf.callFrame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    add(self, functionKey(leaf.callFrame), us);
    add(componentSelf, componentOf(leaf.callFrame), us);
    const seenFunctions = new Set<string>();
    const seenComponents = new Set<string>();
    let stage: string | undefined;
    let fallback: string | undefined;
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = (byId.get(id) as ProfileNode).callFrame;
      if (frame.functionName === '(root)') break;
      stage ??= STAGES.find((s) => s.match(frame))?.stage;
      fallback ??= FALLBACK_STAGES.find((s) => s.match(frame))?.stage;
      const key = functionKey(frame);
      if (!seenFunctions.has(key)) {
        seenFunctions.add(key);
        add(total, key, us);
      }
      const component = componentOf(frame);
      if (!seenComponents.has(component)) {
        seenComponents.add(component);
        add(componentTotal, component, us);
      }
    }
    add(stages, stage ?? fallback ?? UNATTRIBUTED, us);
  }
  const rows = (selfMap: Map<string, number>, totalMap: Map<string, number>): Row[] =>
    [...new Set([...selfMap.keys(), ...totalMap.keys()])].map((name) => ({ name, selfMs: (selfMap.get(name) ?? 0) / 1000, totalMs: (totalMap.get(name) ?? 0) / 1000 }));
  return {
    wallMs: (profile.endTime - profile.startTime) / 1000,
    sampledMs: sampledUs / 1000,
    idleMs: idleUs / 1000,
    functions: rows(self, total),
    components: rows(componentSelf, componentTotal),
    stages: [...stages].map(([name, us]) => ({ stage: name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
  };
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(1)} %` : '—';
}

/** Markdown: busy time, top functions by self time, top by total time, components by self and total. */
export function renderSummary(summary: ProfileSummary, top = 30): string {
  const busy = summary.sampledMs - summary.idleMs;
  const lines: string[] = [];
  lines.push(`profile: ${summary.wallMs.toFixed(0)} ms wall, ${busy.toFixed(0)} ms on the main thread (${pct(busy, summary.sampledMs)}), ${summary.idleMs.toFixed(0)} ms idle; percentages are of main-thread busy time`);
  const table = (title: string, rows: readonly Row[], key: 'selfMs' | 'totalMs'): void => {
    lines.push('', `**${title}**`, '', '| # | self ms | self % | total ms | total % | where |', '| --- | --- | --- | --- | --- | --- |');
    [...rows]
      .sort((a, b) => b[key] - a[key])
      .slice(0, top)
      .forEach((row, i) => lines.push(`| ${i + 1} | ${row.selfMs.toFixed(0)} | ${pct(row.selfMs, busy)} | ${row.totalMs.toFixed(0)} | ${pct(row.totalMs, busy)} | \`${row.name.replace(/\|/g, '\\|')}\` |`));
  };
  lines.push('', '**hot-path stages** (each busy sample counted once, for the innermost stage on its stack)', '', '| stage | ms | % |', '| --- | --- | --- |');
  for (const { stage, ms } of summary.stages) lines.push(`| ${stage} | ${ms.toFixed(0)} | ${pct(ms, busy)} |`);
  table('components by self time', summary.components, 'selfMs');
  table('components by total time (callees included)', summary.components, 'totalMs');
  table('functions by self time', summary.functions, 'selfMs');
  table('functions by total time', summary.functions, 'totalMs');
  return lines.join('\n');
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
  const file = positionals[0];
  if (file === undefined) throw new Error('usage: cpuprofile-summary.ts FILE.cpuprofile [--top N]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${renderSummary(summarise(profile), Number(values.top))}\n`);
}
