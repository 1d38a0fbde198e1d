/**
 * Names on the aggregate endpoint: tools and prompts are namespaced `<upstream>__<name>`;
 * resources keep their URIs and are mapped back to the upstream that listed them (or whose
 * template matches). `__` cannot appear in an upstream name (config schema), so the first `__`
 * splits unambiguously.
 */
export const NAMESPACE_SEPARATOR = '__';

export function qualify(upstream: string, name: string): string {
  return `${upstream}${NAMESPACE_SEPARATOR}${name}`;
}

export function unqualify(qualified: string): { readonly upstream: string; readonly name: string } | undefined {
  const at = qualified.indexOf(NAMESPACE_SEPARATOR);
  if (at <= 0) return undefined;
  return { upstream: qualified.slice(0, at), name: qualified.slice(at + NAMESPACE_SEPARATOR.length) };
}

/**
 * RFC 6570 templates matched loosely: a simple `{var}` matches one or more characters, an
 * operator expression (`{?q}`, `{&x}`, `{#x}`, `{/x}`, `{;x}`, `{.x}`) may expand to nothing.
 */
export function templateMatcher(uriTemplate: string): RegExp {
  const parts = uriTemplate.split(/(\{[^}]*\})/);
  const pattern = parts
    .map((part) => {
      if (part.startsWith('{') && part.endsWith('}')) return /^\{[?&#/;.]/.test(part) ? '.*' : '.+';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${pattern}$`, 's');
}

/** Which upstream serves a URI: the first that listed it (in listing order), or whose template matches. */
export class ResourceDirectory {
  /** URI → upstreams that list it, first lister first. */
  readonly #listers = new Map<string, string[]>();
  /** Upstream → its templates; a Map keeps each upstream's first-listed position. */
  readonly #templates = new Map<string, { readonly template: string; readonly matcher: RegExp }[]>();

  setResources(upstream: string, uris: readonly string[]): void {
    const listed = new Set(uris);
    for (const [uri, listers] of this.#listers) {
      if (listed.has(uri)) continue;
      const remaining = listers.filter((name) => name !== upstream);
      if (remaining.length === 0) this.#listers.delete(uri);
      else this.#listers.set(uri, remaining);
    }
    for (const uri of listed) {
      const listers = this.#listers.get(uri);
      if (listers === undefined) this.#listers.set(uri, [upstream]);
      else if (!listers.includes(upstream)) listers.push(upstream);
    }
  }

  setTemplates(upstream: string, templates: readonly string[]): void {
    this.#templates.set(upstream, templates.map((template) => ({ template, matcher: templateMatcher(template) })));
  }

  ownerOfUri(uri: string): string | undefined {
    const listed = this.#listers.get(uri)?.[0];
    if (listed !== undefined) return listed;
    for (const [upstream, templates] of this.#templates) if (templates.some((t) => t.matcher.test(uri))) return upstream;
    return undefined;
  }

  ownerOfTemplate(template: string): string | undefined {
    for (const [upstream, templates] of this.#templates) if (templates.some((t) => t.template === template)) return upstream;
    return undefined;
  }
}
