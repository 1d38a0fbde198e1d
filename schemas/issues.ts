import type { z } from 'zod';

/** Formats zod issues as `path.to.key: message` lines (the path names what to fix). */
export function formatConfigIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length > 0 ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') : '(root)';
      // A bad record key (an upstream name) nests the reason one level down.
      const nested = issue.code === 'invalid_key' ? issue.issues.map((i) => i.message).join('; ') : '';
      return `${path}: ${issue.message}${nested === '' ? '' : ` (${nested})`}`;
    })
    .join('\n');
}
