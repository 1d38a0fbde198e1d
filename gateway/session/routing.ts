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

/** RFC 6570 level-1..3 templates matched loosely: each `{expr}` matches one or more characters. */
export function templateMatcher(uriTemplate: string): RegExp {
  const parts = uriTemplate.split(/\{[^}]*\}/);
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`, 's');
}

export class ResourceDirectory {
  readonly #owners = new Map<string, string>();
  #templates: { readonly upstream: string; readonly matcher: RegExp; readonly template: string }[] = [];

  setResources(upstream: string, uris: readonly string[]): void {
    for (const [uri, owner] of this.#owners) if (owner === upstream) this.#owners.delete(uri);
    for (const uri of uris) if (!this.#owners.has(uri)) this.#owners.set(uri, upstream);
  }

  setTemplates(upstream: string, templates: readonly string[]): void {
    this.#templates = [...this.#templates.filter((t) => t.upstream !== upstream), ...templates.map((template) => ({ upstream, template, matcher: templateMatcher(template) }))];
  }

  ownerOfUri(uri: string): string | undefined {
    return this.#owners.get(uri) ?? this.#templates.find((t) => t.matcher.test(uri))?.upstream;
  }

  ownerOfTemplate(template: string): string | undefined {
    return this.#templates.find((t) => t.template === template)?.upstream;
  }
}
