/**
 * A virtual server's bundle as a session applies it: which upstreams to connect, and which
 * tools, prompts and resources the agent may see and use. Names are the aggregate endpoint's
 * (`<upstream>__<tool>`); anything outside the bundle is unknown on that endpoint. Policy and
 * the key's tool lists still apply on top (a bundle only narrows).
 */
import { globToRegExp, upstreamsOfPattern } from '#schemas';
import type { VirtualServerConfig } from '#schemas';

export type BundleKind = 'tool' | 'prompt' | 'resource';

export interface VirtualBundle {
  readonly name: string;
  /** Upstreams at least one pattern can reach: the only ones the session connects. */
  readonly upstreams: readonly string[];
  /** `name` is `<upstream>__<name>` for tools and prompts, the URI (or URI template) for resources. */
  has(kind: BundleKind, name: string): boolean;
}

export function compileBundle(name: string, server: VirtualServerConfig, upstreams: readonly string[]): VirtualBundle {
  const tools = server.tools.map(globToRegExp);
  const prompts = server.prompts.map(globToRegExp);
  const resources = server.resources.map(globToRegExp);
  const reachable = new Set([...server.tools, ...server.prompts].flatMap((pattern) => upstreamsOfPattern(pattern, upstreams)));
  return {
    name,
    upstreams: upstreams.filter((u) => reachable.has(u)),
    has(kind, candidate) {
      const patterns = kind === 'tool' ? tools : kind === 'prompt' ? prompts : resources;
      return patterns.some((re) => re.test(candidate));
    },
  };
}
