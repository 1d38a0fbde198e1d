/**
 * `attest approvals list | grant ID | deny ID`: decides held calls on a running gateway through
 * its approvals API (gateway/http/admin-approvals.ts). The key comes from ATTEST_ADMIN_KEY — never
 * from a flag, so it stays out of shell history and process lists; it needs the role
 * `attest:admin` or an approver role.
 */
import type { ParseArgsConfig } from 'node:util';
import { adminRequest as call, describeAdminError } from './admin-client.ts';
import type { AdminResponse } from './admin-client.ts';

const DEFAULT_URL = 'http://127.0.0.1:8787';

interface Approval {
  readonly id: string;
  readonly tenant: string;
  readonly agent: { readonly id: string; readonly agent?: string };
  readonly upstream: string;
  readonly tool: string;
  readonly argumentsDigest: string;
  readonly arguments?: unknown;
  readonly ruleId: string;
  readonly expiresAt: string;
}

function fail(message: string, code: number): number {
  process.stderr.write(`attest approvals: ${message}\n`);
  return code;
}

export const approvalsCommand = {
  summary: 'calls held for approval on a running gateway: list, grant ID, deny ID (key from ATTEST_ADMIN_KEY)',
  usage: 'attest approvals list | grant ID --reason TEXT | deny ID --reason TEXT   [--url URL (default http://127.0.0.1:8787)] [--json]',
  options: { url: { type: 'string', short: 'u' }, reason: { type: 'string', short: 'r' }, json: { type: 'boolean' } } satisfies NonNullable<ParseArgsConfig['options']>,
  async run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number> {
    const [action, id, ...extra] = positionals;
    const usage = `\nUsage: ${approvalsCommand.usage}`;
    if (action !== 'list' && action !== 'grant' && action !== 'deny') return fail(`an action is needed: list | grant ID | deny ID${usage}`, 2);
    if (action === 'list' ? id !== undefined : id === undefined || extra.length > 0) return fail(`${action === 'list' ? 'list takes no id' : `${action} needs exactly one approval id`}${usage}`, 2);
    const reason = values['reason'];
    if (action !== 'list' && (typeof reason !== 'string' || reason.trim() === '')) return fail(`${action} needs --reason TEXT (it is recorded with your identity)${usage}`, 2);
    const key = process.env['ATTEST_ADMIN_KEY'];
    if (key === undefined || key === '') return fail('set ATTEST_ADMIN_KEY to a key with the role "attest:admin" or an approver role', 2);
    const url = typeof values['url'] === 'string' ? values['url'] : DEFAULT_URL;
    try {
      new URL(url);
    } catch {
      return fail(`--url is not a URL: "${url}"${usage}`, 2);
    }
    let answer: AdminResponse;
    try {
      answer = action === 'list'
        ? await call(url, key, 'GET', '/admin/v1/approvals')
        : await call(url, key, 'POST', `/admin/v1/approvals/${encodeURIComponent(id ?? '')}/${action}`, { reason });
    } catch (error) {
      return fail((error as Error).message, 1);
    }
    if (answer.status !== 200) return fail(describeAdminError(answer), 1);
    if (values['json'] === true) {
      process.stdout.write(`${JSON.stringify(answer.json)}\n`);
      return 0;
    }
    if (action === 'list') {
      const approvals = (answer.json['approvals'] ?? []) as Approval[];
      if (approvals.length === 0) process.stdout.write('no pending approvals\n');
      for (const a of approvals) {
        const args = a.arguments === undefined ? a.argumentsDigest : JSON.stringify(a.arguments);
        process.stdout.write(`${a.id}  ${a.tenant}/${a.agent.id}  ${a.upstream}__${a.tool}  rule ${a.ruleId}  expires ${a.expiresAt}  ${args}\n`);
      }
      return 0;
    }
    process.stdout.write(`${String(answer.json['outcome'])} ${String(answer.json['id'])} (recorded as event ${String(answer.json['eventId'])})\n`);
    return 0;
  },
};
