import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileCostModel } from './cost-model.ts';

describe('cost model', () => {
  it('costs 1 per call when nothing matches', () => {
    assert.equal(compileCostModel({}).costOf('fs', 'read_file'), 1);
    assert.equal(compileCostModel({ 'web__*': 5 }).costOf('fs', 'read_file'), 1);
  });

  it('prefers an exact name, then the most literal pattern, then "*"', () => {
    const model = compileCostModel({ '*': 2, 'search__*': 5, 'search__deep_*': 20, 'search__deep_research': 50, '*__read_file': 0.5 });
    assert.equal(model.costOf('search', 'deep_research'), 50);
    assert.equal(model.costOf('search', 'deep_dive'), 20);
    assert.equal(model.costOf('search', 'quick'), 5);
    assert.equal(model.costOf('fs', 'read_file'), 0.5);
    assert.equal(model.costOf('fs', 'write_file'), 2);
  });

  it('breaks a specificity tie by the order written, and allows free tools', () => {
    assert.equal(compileCostModel({ 'a__*x': 3, 'a__x*': 4 }).costOf('a', 'xx'), 3);
    assert.equal(compileCostModel({ 'a__x*': 4, 'a__*x': 3 }).costOf('a', 'xx'), 4);
    assert.equal(compileCostModel({ 'fs__ping': 0 }).costOf('fs', 'ping'), 0);
  });

  it('treats regex characters in names literally', () => {
    const model = compileCostModel({ 'my-up__tool.v2': 9 });
    assert.equal(model.costOf('my-up', 'tool.v2'), 9);
    assert.equal(model.costOf('my-up', 'toolXv2'), 1);
  });
});
