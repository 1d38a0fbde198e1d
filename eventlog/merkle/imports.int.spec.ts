import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/** Spec support: imported by specs, the fixture and bench/, never by the library itself. */
const SPEC_SUPPORT = new Set(['tree-contract.ts', 'reference-tree.ts', 'merkle-vectors.ts', 'note-vectors.ts', 'spec-support.ts', 'merkle-writer.fixture.ts']);

void describe('eventlog/merkle boundaries', () => {
  void it('the library imports only node: built-ins, #schemas and its own files, and none of its spec support', async () => {
    const dir = import.meta.dirname;
    const sources = (await readdir(dir)).filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts') && !SPEC_SUPPORT.has(name));
    assert.ok(sources.includes('index.ts') && sources.includes('merkle-store.ts'));
    for (const name of sources) {
      const text = await readFile(join(dir, name), 'utf8');
      for (const [, specifier] of text.matchAll(/^(?:import|export)\s(?:[^;]*?from\s+)?'([^']+)'/gm)) {
        const allowed = specifier?.startsWith('node:') || specifier === '#schemas' || (specifier?.startsWith('./') === true && !specifier.includes('/', 2) && !SPEC_SUPPORT.has(specifier.slice(2)));
        assert.ok(allowed, `${name} imports ${specifier}`);
      }
    }
  });
});
