/**
 * Virtual servers: named bundles of upstream tools (and optionally prompts and resources) served
 * at `/servers/<name>/mcp`, as if they were one MCP server. Names inside a bundle are the
 * aggregate endpoint's (`<upstream>__<tool>`). Validated against the upstreams of the same config:
 * a virtual server may not take an upstream's name, and every pattern must name a configured
 * upstream (a typo would otherwise bundle nothing, silently).
 */
import { z } from 'zod';

/** Same grammar as the keys' allowTools: `<upstream>__<name>` with `*` on either side, or `*`. */
const bundlePattern = z.string().regex(/^(\*|[a-zA-Z0-9_*-]+__[^\s]+)$/, 'a pattern "<upstream>__<name>" ("*" allowed on either side) or "*"');

export const VirtualServerSchema = z
  .object({
    description: z.string().max(1024).optional(),
    /** Tools in the bundle, as `<upstream>__<tool>` patterns. */
    tools: z.array(bundlePattern).min(1, 'a virtual server bundles at least one tool pattern'),
    /** Prompts in the bundle, as `<upstream>__<prompt>` patterns; none unless listed. */
    prompts: z.array(bundlePattern).default([]),
    /** Resource URIs (and URI templates) in the bundle, `*` matching any run of characters; none unless listed. */
    resources: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type VirtualServerConfig = z.infer<typeof VirtualServerSchema>;

/** `*` matches any run of characters; everything else literally. */
export function globToRegExp(pattern: string): RegExp {
  if (pattern === '*') return /^.*$/s;
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 's');
}

/** The upstreams a bundle pattern can reach. */
export function upstreamsOfPattern(pattern: string, upstreams: readonly string[]): string[] {
  if (pattern === '*') return [...upstreams];
  const side = pattern.slice(0, pattern.indexOf('__'));
  const re = globToRegExp(side);
  return upstreams.filter((name) => re.test(name));
}

export interface VirtualServerIssue {
  readonly path: (string | number)[];
  readonly message: string;
}

/** Cross-checks virtual servers against the upstreams: name collisions and patterns that reach no upstream. */
export function virtualServerIssues(virtualServers: Readonly<Record<string, VirtualServerConfig>> | undefined, upstreams: readonly string[]): VirtualServerIssue[] {
  const issues: VirtualServerIssue[] = [];
  for (const [name, server] of Object.entries(virtualServers ?? {})) {
    if (upstreams.includes(name)) {
      issues.push({ path: ['virtualServers', name], message: `virtual server "${name}" has the same name as upstream "${name}": both would be served at /servers/${name}/, rename one` });
    }
    for (const kind of ['tools', 'prompts'] as const) {
      server[kind].forEach((pattern, i) => {
        if (upstreamsOfPattern(pattern, upstreams).length === 0) {
          issues.push({ path: ['virtualServers', name, kind, i], message: `pattern "${pattern}" names no configured upstream (upstreams: ${upstreams.join(', ')})` });
        }
      });
    }
  }
  return issues;
}
