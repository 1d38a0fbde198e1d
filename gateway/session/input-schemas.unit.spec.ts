import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InputSchemas, unsafeSchemaPattern } from './input-schemas.ts';

describe('input schemas from upstreams', () => {
  it('finds a pattern that could backtrack exponentially, anywhere in the schema', () => {
    assert.equal(unsafeSchemaPattern({ type: 'object', properties: { name: { type: 'string', pattern: '^[a-z]+$' } } }), undefined);
    assert.equal(unsafeSchemaPattern({ type: 'object', properties: { name: { type: 'string', pattern: '(a+)+$' } } }), '(a+)+$');
    assert.equal(unsafeSchemaPattern({ anyOf: [{ type: 'array', items: { pattern: '^(\\w+\\s?)*$' } }] }), '^(\\w+\\s?)*$');
    assert.equal(unsafeSchemaPattern({ type: 'object', patternProperties: { '(x+x+)+y': { type: 'string' } } }), '(x+x+)+y');
    const huge = { anyOf: Array.from({ length: 150_000 }, () => ({ type: 'string' })) };
    assert.match(unsafeSchemaPattern(huge) ?? '', /a schema of more than 100000 nodes/, 'too large to check: not compiled either');
  });

  // The timeout only bounds a regression: compiled, '^(a+)+$' against 40 a's and a '!' backtracks for minutes.
  it('enforces a safe schema and leaves one with an unsafe pattern to the upstream (no stall on hostile input)', { timeout: 10_000 }, () => {
    const schemas = new InputSchemas();
    schemas.learn([
      { name: 'safe', inputSchema: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]+$' } }, required: ['id'] } },
      { name: 'hostile', inputSchema: { type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } } },
    ]);
    assert.match(schemas.problem('safe', { id: 'x1' }) ?? '', /pattern/);
    assert.equal(schemas.problem('safe', { id: '42' }), undefined);
    assert.equal(schemas.problem('hostile', { name: `${'a'.repeat(40)}!` }), undefined, 'not checked by the gateway: the pattern was not compiled');
  });
});
