import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from './index.ts';

const base = {
  log: { backend: 'file', dir: 'data' },
  upstreams: { ledger: { transport: 'stdio', command: 'node' }, fx: { transport: 'stdio', command: 'node' } },
};

function rejection(raw: unknown): string {
  try {
    parseConfig(raw, { baseDir: '/srv' });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('config was accepted');
}

describe('config: virtualServers', () => {
  it('accepts bundles of existing upstreams, with defaults for prompts and resources', () => {
    const { config } = parseConfig({ ...base, virtualServers: { finance: { description: 'money', tools: ['ledger__read_*', 'fx__rate', '*__ping'] } } });
    assert.deepEqual(config.virtualServers?.['finance'], { description: 'money', tools: ['ledger__read_*', 'fx__rate', '*__ping'], prompts: [], resources: [] });
  });

  it('is optional: without it nothing changes', () => {
    assert.equal(parseConfig(base).config.virtualServers, undefined);
  });

  it('rejects a name that collides with an upstream, naming both', () => {
    const message = rejection({ ...base, virtualServers: { ledger: { tools: ['fx__rate'] } } });
    assert.match(message, /virtualServers\.ledger: virtual server "ledger" has the same name as upstream "ledger"/);
  });

  it('rejects a pattern that reaches no configured upstream, naming the key path', () => {
    const message = rejection({ ...base, virtualServers: { finance: { tools: ['fx__rate', 'ledgr__read'], prompts: ['nope*__x'] } } });
    assert.match(message, /virtualServers\.finance\.tools\[1\]: pattern "ledgr__read" names no configured upstream \(upstreams: ledger, fx\)/);
    assert.match(message, /virtualServers\.finance\.prompts\[0\]/);
  });

  it('rejects bad shapes: no tools, a malformed pattern, unknown keys, a bad name', () => {
    assert.match(rejection({ ...base, virtualServers: { finance: { tools: [] } } }), /virtualServers\.finance\.tools: a virtual server bundles at least one tool pattern/);
    assert.match(rejection({ ...base, virtualServers: { finance: { tools: ['no-separator'] } } }), /virtualServers\.finance\.tools\[0\]/);
    assert.match(rejection({ ...base, virtualServers: { finance: { tools: ['fx__rate'], tool: [] } } }), /virtualServers\.finance/);
    assert.match(rejection({ ...base, virtualServers: { 'a__b': { tools: ['fx__rate'] } } }), /virtualServers/);
  });
});
