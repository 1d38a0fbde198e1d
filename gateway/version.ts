import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The package version, read once from package.json (works from source and from dist/). */
export const GATEWAY_VERSION: string = (() => {
  for (let dir = import.meta.dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'attest-gateway' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here; keep walking up
    }
  }
  return '0.0.0-unknown';
})();
