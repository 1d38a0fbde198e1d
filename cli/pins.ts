/**
 * `attest pins list|approve|reject`: the tool-definition pins of a running gateway, through its
 * admin API (docs/tool-pinning.md). The admin key comes from ATTEST_ADMIN_KEY only, never argv
 * (argv is visible to every user of the machine).
 */
import type { ParseArgsConfig } from 'node:util';
import { adminCall as call } from './admin-client.ts';

interface PinView {
  readonly upstream: string;
  readonly tool: string;
  readonly hash: string;
  readonly pinnedAt: string;
  readonly quarantined: boolean;
  readonly pending: readonly { readonly hash: string; readonly observedAt: string; readonly definition: unknown }[];
  readonly rejected: readonly string[];
}

const USAGE = [
  'attest pins list    --url URL [--all] [--json]',
  '       attest pins approve --url URL --upstream U --tool T --hash sha256:… --reason TEXT',
  '       attest pins reject  --url URL --upstream U --tool T --hash sha256:… --reason TEXT',
  '       (the admin key, role attest:admin, is read from ATTEST_ADMIN_KEY)',
].join('\n');

const options: NonNullable<ParseArgsConfig['options']> = {
  url: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  upstream: { type: 'string' },
  tool: { type: 'string' },
  hash: { type: 'string' },
  reason: { type: 'string' },
};

function usage(message: string): number {
  process.stderr.write(`attest pins: ${message}\nUsage: ${USAGE}\n`);
  return 2;
}

function describePin(pin: PinView): string {
  const lines = [`${pin.upstream}/${pin.tool}  pinned ${pin.hash}  (${pin.pinnedAt})${pin.quarantined ? '  QUARANTINED' : ''}`];
  for (const change of pin.pending) {
    const description = (change.definition as { description?: unknown } | null)?.description;
    lines.push(`  pending ${change.hash}  seen ${change.observedAt}${typeof description === 'string' ? `\n    description: ${description}` : ''}`);
  }
  for (const hash of pin.rejected) lines.push(`  rejected ${hash}`);
  return lines.join('\n');
}

export const pinsCommand = {
  summary: 'tool-definition pins of a running gateway: list quarantined tools, approve or reject a changed definition',
  usage: USAGE,
  options,
  async run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number> {
    const action = positionals[0];
    const url = values['url'];
    if (action !== 'list' && action !== 'approve' && action !== 'reject') return usage('needs an action: list | approve | reject');
    if (typeof url !== 'string') return usage('--url URL of the gateway is required (e.g. http://127.0.0.1:8787)');
    const key = process.env['ATTEST_ADMIN_KEY'];
    if (key === undefined || key === '') return usage('set ATTEST_ADMIN_KEY to a key with the role attest:admin');
    if (action === 'list') {
      const body = await call(url, key, 'GET', `/admin/v1/pins${values['all'] === true ? '' : '?quarantined=true'}`);
      const pins = (body['pins'] ?? []) as PinView[];
      if (values['json'] === true) process.stdout.write(`${JSON.stringify(pins)}\n`);
      else process.stdout.write(pins.length === 0 ? `${values['all'] === true ? 'no pins' : 'no quarantined tools'}\n` : `${pins.map(describePin).join('\n')}\n`);
      return 0;
    }
    const missing = ['upstream', 'tool', 'hash', 'reason'].filter((name) => typeof values[name] !== 'string');
    if (missing.length > 0) return usage(`${action} needs ${missing.map((m) => `--${m}`).join(', ')}`);
    const body = await call(url, key, 'POST', `/admin/v1/pins/${action}`, { upstream: values['upstream'], tool: values['tool'], hash: values['hash'], reason: values['reason'] });
    const pin = body['pin'] as PinView;
    if (values['json'] === true) process.stdout.write(`${JSON.stringify(pin)}\n`);
    else process.stdout.write(`${action === 'approve' ? 'approved' : 'rejected'}: ${describePin(pin)}\n`);
    return 0;
  },
};
