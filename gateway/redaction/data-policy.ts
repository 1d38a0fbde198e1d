/**
 * Which data policy (`full`, `redacted`, `digest`) applies to a message: the upstream's
 * `recordingByTool` entry for the tool, else the upstream's `recording`. Exact tool names win over
 * patterns; patterns are tried in the order they are written. Compiled once per upstream config.
 */
import type { UpstreamConfig } from '#schemas';
import type { Recording } from '../recorder.ts';

interface CompiledPolicy {
  readonly fallback: Recording;
  readonly exact: ReadonlyMap<string, Recording>;
  readonly patterns: readonly { readonly re: RegExp; readonly recording: Recording }[];
}

const compiled = new WeakMap<UpstreamConfig, CompiledPolicy>();

function compile(config: UpstreamConfig): CompiledPolicy {
  const exact = new Map<string, Recording>();
  const patterns: { re: RegExp; recording: Recording }[] = [];
  for (const [pattern, recording] of Object.entries(config.recordingByTool)) {
    if (!pattern.includes('*')) exact.set(pattern, recording);
    else patterns.push({ re: new RegExp(`^${pattern.split('*').map(escape).join('.*')}$`), recording });
  }
  return { fallback: config.recording, exact, patterns };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The recording for a message of `upstream` about `tool` (undefined: not about one tool → the upstream's default). */
export function recordingFor(config: UpstreamConfig | undefined, tool?: string): Recording {
  if (config === undefined) return 'full';
  let policy = compiled.get(config);
  if (policy === undefined) {
    policy = compile(config);
    compiled.set(config, policy);
  }
  if (tool === undefined) return policy.fallback;
  const exact = policy.exact.get(tool);
  if (exact !== undefined) return exact;
  for (const { re, recording } of policy.patterns) if (re.test(tool)) return recording;
  return policy.fallback;
}

const STRICTNESS: Readonly<Record<Recording, number>> = { full: 0, redacted: 1, digest: 2 };

/** The strictest default among upstreams (for a message bound for all of them). */
export function strictestRecording(configs: readonly UpstreamConfig[]): Recording {
  let strictest: Recording = 'full';
  for (const config of configs) if (STRICTNESS[config.recording] > STRICTNESS[strictest]) strictest = config.recording;
  return strictest;
}
