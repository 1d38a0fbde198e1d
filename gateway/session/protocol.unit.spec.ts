import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  isKnownMethod,
  isNotification,
  isRequest,
  isResponse,
  jsonRpcProblem,
  LATEST_PROTOCOL_VERSION,
  MAX_MESSAGE_DEPTH,
  negotiateProtocolVersion,
  paramsProblem,
  progressTokenOf,
  SUPPORTED_PROTOCOL_VERSIONS,
  unrecordable,
} from './protocol.ts';
import type { RpcRequest } from './protocol.ts';

function request(method: string, params?: Record<string, unknown>): RpcRequest {
  return { jsonrpc: '2.0', id: 1, method, ...(params !== undefined && { params }) };
}

describe('jsonRpcProblem', () => {
  it('accepts requests, notifications and responses', () => {
    assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), undefined);
    assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 'abc', method: 'tools/call', params: { name: 'x' } }), undefined);
    assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 0, method: 'ping' }), undefined);
    assert.equal(jsonRpcProblem({ jsonrpc: '2.0', method: 'notifications/initialized' }), undefined);
    assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 3, result: {} }), undefined);
    assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'nope' } }), undefined);
  });

  it('refuses anything that is not a JSON object', () => {
    for (const value of [null, undefined, 1, 'ping', true, [], [{ jsonrpc: '2.0', id: 1, method: 'ping' }]]) {
      assert.equal(jsonRpcProblem(value), 'Invalid Request: a JSON-RPC message must be a JSON object', `for ${JSON.stringify(value)}`);
    }
  });

  it('refuses a missing or wrong "jsonrpc"', () => {
    const expected = 'Invalid Request: "jsonrpc" must be the string "2.0"';
    assert.equal(jsonRpcProblem({ id: 1, method: 'ping' }), expected);
    assert.equal(jsonRpcProblem({ jsonrpc: '1.0', id: 1, method: 'ping' }), expected);
    assert.equal(jsonRpcProblem({ jsonrpc: 2, id: 1, method: 'ping' }), expected);
  });

  it('refuses a method that is not a string', () => {
    for (const method of [5, null, {}, ['ping']]) {
      assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 1, method }), 'Invalid Request: "method" must be a string');
    }
  });

  it('refuses an id that is neither a string nor a number', () => {
    for (const id of [true, null, {}, ['1']]) {
      assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id, method: 'ping' }), 'Invalid Request: "id" must be a string or an integer', `for id ${JSON.stringify(id)}`);
    }
  });

  it('refuses positional (array) params and other non-object params', () => {
    for (const params of [['echo'], [], null, 'x', 3]) {
      assert.equal(jsonRpcProblem({ jsonrpc: '2.0', id: 1, method: 'tools/call', params }), 'Invalid Request: "params" must be an object (MCP uses named params)');
    }
  });

  it('refuses an object that is no kind of JSON-RPC message', () => {
    assert.match(jsonRpcProblem({ jsonrpc: '2.0' }) ?? '', /^Invalid Request: /);
    assert.match(jsonRpcProblem({ jsonrpc: '2.0', id: 1 }) ?? '', /^Invalid Request: /);
  });
});

describe('unrecordable', () => {
  const nested = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);
  const tooDeep = (value: unknown, max: number): boolean => unrecordable(value, max)?.startsWith('nests objects or arrays deeper') === true;
  it('counts object and array levels exactly, the outermost as 1', () => {
    assert.equal(tooDeep(nested(3), 3), false);
    assert.equal(tooDeep(nested(4), 3), true);
    assert.equal(tooDeep({ a: { b: [1, 'x', null] } }, 3), false);
    assert.equal(tooDeep({ a: { b: [1, 'x', { c: 1 }] } }, 3), true);
    assert.equal(unrecordable('text'), undefined);
    assert.equal(unrecordable(null), undefined);
  });
  it('finds what canonical JSON has no form for: Infinity from 1e400, lone surrogates in strings and keys', () => {
    assert.match(unrecordable(JSON.parse('{"a":[1,{"b":1e400}]}')) ?? '', /beyond the range of a double/);
    assert.match(unrecordable(JSON.parse('{"a":-1e400}')) ?? '', /beyond the range of a double/);
    assert.match(unrecordable(JSON.parse('{"a":"x\\ud800y"}')) ?? '', /lone UTF-16 surrogate/);
    assert.match(unrecordable(JSON.parse('{"\\udfff":1}')) ?? '', /lone UTF-16 surrogate/);
    assert.equal(unrecordable(JSON.parse('{"a":"\\ud83d\\ude00","n":1.7976931348623157e308}')), undefined, 'a surrogate pair and the largest double are fine');
  });
  it('takes a hostile depth without recursion, and jsonRpcProblem refuses past MAX_MESSAGE_DEPTH', () => {
    assert.equal(tooDeep(nested(200_000), MAX_MESSAGE_DEPTH), true);
    const at = (depth: number) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 't', arguments: { deep: nested(depth) } } });
    // message (1) → params (2) → arguments (3) → the nested arrays
    assert.equal(jsonRpcProblem(at(MAX_MESSAGE_DEPTH - 3)), undefined);
    assert.match(jsonRpcProblem(at(MAX_MESSAGE_DEPTH - 2)) ?? '', /the tools\/call message nests objects or arrays deeper than 512 levels/);
    assert.match(jsonRpcProblem({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 't', arguments: { n: Infinity } } }) ?? '', /the tools\/call message holds a number beyond the range of a double .*it cannot be recorded, so it is not relayed/);
  });
});

describe('paramsProblem', () => {
  it('names the field of a tools/call whose name is a number', () => {
    assert.equal(paramsProblem(request('tools/call', { name: 42 })), 'Invalid params for tools/call: params.name: Invalid input: expected string, received number');
  });

  it('names a missing required field', () => {
    assert.match(paramsProblem(request('tools/call', {})) ?? '', /^Invalid params for tools\/call: params\.name: /);
    assert.match(paramsProblem(request('resources/read', {})) ?? '', /^Invalid params for resources\/read: params\.uri: /);
    assert.match(paramsProblem(request('prompts/get', { name: 1 })) ?? '', /params\.name: /);
  });

  it('names a nested field', () => {
    assert.match(paramsProblem(request('tools/call', { name: 'echo', arguments: 'text' })) ?? '', /params\.arguments: /);
  });

  it('accepts valid params and requests that need none', () => {
    assert.equal(paramsProblem(request('tools/call', { name: 'echo', arguments: { message: 'hi' } })), undefined);
    assert.equal(paramsProblem(request('tools/list')), undefined);
    assert.equal(paramsProblem(request('tools/list', { cursor: 'c1' })), undefined);
    assert.equal(paramsProblem(request('ping')), undefined);
    assert.equal(paramsProblem(request('resources/read', { uri: 'file:///x' })), undefined);
  });

  it('leaves unknown methods to routing', () => {
    assert.equal(isKnownMethod('tools/call'), true);
    assert.equal(isKnownMethod('vendor/custom'), false);
    assert.equal(paramsProblem(request('vendor/custom', { anything: [1, 2] })), undefined);
  });
});

describe('negotiateProtocolVersion', () => {
  it('echoes each supported version', () => {
    for (const version of ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']) {
      assert.equal(negotiateProtocolVersion(version), version);
    }
    assert.deepEqual([...SUPPORTED_PROTOCOL_VERSIONS], ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
  });

  it('answers anything else with the latest version (MCP lifecycle: the server proposes its own)', () => {
    assert.equal(LATEST_PROTOCOL_VERSION, '2025-11-25');
    for (const requested of ['2099-01-01', '2024-10-07', '', undefined, null, 20251125, ['2025-06-18']]) {
      assert.equal(negotiateProtocolVersion(requested), '2025-11-25', `for ${JSON.stringify(requested)}`);
    }
  });
});

describe('progressTokenOf', () => {
  it('returns a string or number _meta.progressToken, including 0', () => {
    assert.equal(progressTokenOf({ _meta: { progressToken: 'tok-1' } }), 'tok-1');
    assert.equal(progressTokenOf({ _meta: { progressToken: 7 } }), 7);
    assert.equal(progressTokenOf({ _meta: { progressToken: 0 } }), 0);
  });

  it('returns undefined when there is no usable token', () => {
    assert.equal(progressTokenOf(undefined), undefined);
    assert.equal(progressTokenOf({}), undefined);
    assert.equal(progressTokenOf({ _meta: null }), undefined);
    assert.equal(progressTokenOf({ _meta: 'tok' }), undefined);
    assert.equal(progressTokenOf({ _meta: {} }), undefined);
    assert.equal(progressTokenOf({ _meta: { progressToken: true } }), undefined);
    assert.equal(progressTokenOf({ _meta: { progressToken: { id: 1 } } }), undefined);
    assert.equal(progressTokenOf({ progressToken: 'top-level' }), undefined);
  });
});

describe('message kinds', () => {
  it('tells requests, notifications and responses apart', () => {
    const req = { jsonrpc: '2.0', id: 0, method: 'ping' } as const;
    const note = { jsonrpc: '2.0', method: 'notifications/progress', params: {} } as const;
    const ok = { jsonrpc: '2.0', id: 0, result: {} } as const;
    const failed = { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } } as const;
    assert.deepEqual([isRequest(req), isNotification(req), isResponse(req)], [true, false, false]);
    assert.deepEqual([isRequest(note), isNotification(note), isResponse(note)], [false, true, false]);
    assert.deepEqual([isRequest(ok), isNotification(ok), isResponse(ok)], [false, false, true]);
    assert.deepEqual([isRequest(failed), isNotification(failed), isResponse(failed)], [false, false, true]);
  });
});
