/**
 * The layering of docs/architecture.md, checked on every import of the repository:
 *   schemas ← eventlog ← gateway | projector | reporting, and projections (pure folds, on schemas)
 *   imported by the services; gateway, projector and reporting never import each other; the CLI
 *   wires them all.
 * A module reaches another only through its barrel (`#name`); a relative import that leaves its
 * module's folder reaches into another's internals and fails. Specs and their support files may
 * also use the test harness (test/). test/ and bench/ are exempt: they drive everything.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';

const ROOT = path.join(import.meta.dirname, '..');

/** Who may import whom (through the barrels). */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  schemas: [],
  eventlog: ['schemas'],
  projections: ['schemas'],
  gateway: ['schemas', 'eventlog', 'projections'],
  projector: ['schemas', 'eventlog', 'projections'],
  reporting: ['schemas', 'eventlog', 'projections'],
  cli: ['schemas', 'eventlog', 'projections', 'gateway', 'projector', 'reporting'],
};

export interface SourceFile {
  /** Path relative to the repository root, with `/`. */
  readonly file: string;
  readonly text: string;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function isTestSupport(file: string): boolean {
  return /\.(spec|bench|fixture)\.ts$/.test(file) || /(^|\/)(spec-support|fake-[a-z-]+)\.ts$/.test(file) || file.includes('/fixtures/');
}

/** Every import that breaks the layering, as `file: specifier — why`. */
export function layeringViolations(files: readonly SourceFile[]): string[] {
  const violations: string[] = [];
  for (const { file, text } of files) {
    const module = file.split('/')[0] ?? '';
    const allowed = ALLOWED[module];
    if (allowed === undefined) continue;
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? '';
      if (specifier.startsWith('#')) {
        const target = specifier.slice(1);
        if (target !== module && !allowed.includes(target)) violations.push(`${file}: ${specifier} — ${module} may import ${allowed.length === 0 ? 'no other module' : allowed.map((m) => `#${m}`).join(', ')}`);
        continue;
      }
      if (!specifier.startsWith('.')) continue;
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      const targetModule = resolved.split('/')[0] ?? '';
      if (targetModule === module) continue;
      if (targetModule === 'test' && isTestSupport(file)) continue;
      violations.push(`${file}: ${specifier} — reaches into ${targetModule}/ (import #${targetModule} through its barrel${ALLOWED[targetModule] === undefined ? '' : ', if the layering allows it'})`);
    }
  }
  return violations;
}

async function sources(dir: string): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...(await sources(rel)));
    } else if (entry.name.endsWith('.ts')) {
      out.push({ file: rel, text: await readFile(path.join(ROOT, rel), 'utf8') });
    }
  }
  return out;
}

void describe('layering', () => {
  void it('no module imports another’s internals or a module the layering forbids', async () => {
    const present = (await readdir(ROOT)).filter((name) => ALLOWED[name] !== undefined);
    assert.ok(present.includes('gateway') && present.includes('eventlog') && present.includes('schemas'));
    const files = (await Promise.all(present.map((dir) => sources(dir)))).flat();
    assert.ok(files.length > 100, `read ${files.length} source files`);
    assert.deepEqual(layeringViolations(files), []);
  });

  void it('catches what it is for: a sibling service, a forbidden barrel, a relative path into another module', () => {
    const violations = layeringViolations([
      { file: 'gateway/x.ts', text: "import { startProjector } from '#projector';" },
      { file: 'schemas/y.ts', text: "import type { EventLog } from '#eventlog';" },
      { file: 'eventlog/z.ts', text: "import { draft } from '../gateway/recorder.ts';" },
      { file: 'projector/w.ts', text: "const m = await import('../reporting/pdf.ts');" },
      { file: 'eventlog/kafka/spec-support.ts', text: "import { kafkaBrokers } from '../../test/services/index.ts';" },
      { file: 'gateway/session/session.ts', text: "import { qualify } from './routing.ts';\nimport { draft } from '../recorder.ts';\nimport { SCHEMA_VERSION } from '#schemas';" },
    ]);
    assert.equal(violations.length, 4, violations.join('\n'));
    assert.match(violations[0] ?? '', /gateway\/x\.ts: #projector/);
    assert.match(violations[1] ?? '', /schemas\/y\.ts: #eventlog — schemas may import no other module/);
    assert.match(violations[2] ?? '', /reaches into gateway\//);
    assert.match(violations[3] ?? '', /reaches into reporting\//);
  });
});
