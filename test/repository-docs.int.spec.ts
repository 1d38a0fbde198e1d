/**
 * The repository carries its own design documentation: a person who clones it can follow every
 * link of its Markdown files, none sends them to a folder they do not have, and every package.json
 * `imports` name maps to a file that exists.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, globSync, readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.join(import.meta.dirname, '..');
const MARKDOWN = globSync('**/*.md', { cwd: REPO, exclude: ['node_modules/**', 'dist/**', '.cache/**', 'data/**', 'bench/results/**'] }).sort();

/** `[text](target)` links, without URLs and in-page anchors; the target without its `#fragment`. */
function relativeLinks(markdown: string): string[] {
  const out: string[] = [];
  for (const match of markdown.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
    const target = match[1] ?? '';
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
    out.push(decodeURIComponent(target.split('#')[0] ?? ''));
  }
  return out;
}

describe('the repository documents itself', () => {
  it('docs/architecture.md and docs/compliance.md exist and README.md links both', () => {
    for (const file of ['docs/architecture.md', 'docs/compliance.md']) assert.ok(MARKDOWN.includes(file), `${file} is in the repository`);
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
    assert.ok(relativeLinks(readme).includes('docs/architecture.md'));
    assert.ok(relativeLinks(readme).includes('docs/compliance.md'));
  });

  it('no Markdown file points at the shared folder or at design files outside the repository', () => {
    assert.ok(MARKDOWN.length > 10, `found ${MARKDOWN.length} Markdown files`);
    const offenders: string[] = [];
    for (const file of MARKDOWN) {
      readFileSync(path.join(REPO, file), 'utf8').split('\n').forEach((line, index) => {
        if (/shared folder|\.\.\/shared\/|\/work\/shared|\b(ARCHITECTURE|COMPLIANCE|STYLE)\.md\b/.test(line)) offenders.push(`${file}:${index + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(offenders, []);
  });

  it('every relative link of every Markdown file leads to a file or folder of the repository', () => {
    const broken: string[] = [];
    for (const file of MARKDOWN) {
      for (const target of relativeLinks(readFileSync(path.join(REPO, file), 'utf8'))) {
        const resolved = path.resolve(REPO, path.dirname(file), target);
        if (!resolved.startsWith(REPO) || !existsSync(resolved)) broken.push(`${file} → ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('every package.json `imports` name maps to a file that exists in the sources', () => {
    const imports = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { imports: Record<string, Record<string, string>> }).imports;
    const missing = Object.entries(imports)
      .map(([name, conditions]) => [name, conditions['attest-source'] ?? ''] as const)
      .filter(([, target]) => !existsSync(path.join(REPO, target)))
      .map(([name, target]) => `${name} → ${target}`);
    assert.deepEqual(missing, []);
  });
});
