import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

void describe('eventlog/bundle boundaries', () => {
  void it('the offline verifier imports only the Merkle library, #schemas and its own files: no log, gateway or config', async () => {
    const dir = import.meta.dirname;
    const sources = (await readdir(dir)).filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts'));
    assert.ok(sources.includes('verify-bundle.ts') && sources.includes('bundle-format.ts'));
    for (const name of sources) {
      const text = await readFile(join(dir, name), 'utf8');
      for (const [, specifier] of text.matchAll(/^(?:import|export)\s(?:[^;]*?from\s+)?'([^']+)'/gm)) {
        const allowed = specifier === '#schemas' || specifier === '../merkle/index.ts' || (specifier?.startsWith('./') === true && !specifier.includes('/', 2));
        assert.ok(allowed, `${name} imports ${specifier}`);
      }
    }
  });
});
