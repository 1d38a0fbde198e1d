import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { parseConfig } from '#schemas';
import { createLogger, redactSecretValues, secretValuesOf } from '../logger.ts';
import { traceHeadersOf, upstreamTraceContext, validTraceparent, validTracestate } from './tracing.ts';

describe('W3C traceparent', () => {
  const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('accepts a valid one and refuses malformed, all-zero and version ff', () => {
    assert.equal(validTraceparent(valid), valid);
    assert.equal(validTraceparent(undefined), undefined);
    assert.equal(validTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7'), undefined);
    assert.equal(validTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), undefined);
    assert.equal(validTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'), undefined);
    assert.equal(validTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), undefined);
    assert.equal(validTraceparent('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'), undefined, 'lower-case hex only');
  });
  it('without tracing, the agent context is forwarded as is; headers read without allocating when absent', () => {
    assert.deepEqual(upstreamTraceContext(undefined, 'c', 'tools/call', valid, undefined), { traceparent: valid });
    assert.deepEqual(upstreamTraceContext(undefined, 'c', 'tools/call', valid, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'), { traceparent: valid, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    assert.equal(upstreamTraceContext(undefined, 'c', 'tools/call', 'junk', 'a=b'), undefined, 'no tracestate without a valid traceparent');
    assert.equal(traceHeadersOf(undefined, 'a=b'), undefined);
    assert.deepEqual(traceHeadersOf(valid, ['x', 'y']), { traceparent: valid, tracestate: undefined });
  });
});

describe('W3C tracestate', () => {
  it('keeps valid list members, drops invalid ones, and refuses one longer than 512 characters', () => {
    assert.equal(validTracestate('rojo=00f067aa0ba902b7'), 'rojo=00f067aa0ba902b7');
    assert.equal(validTracestate('vendor@tenant=x,rojo=1'), 'vendor@tenant=x,rojo=1', 'multi-tenant keys');
    assert.equal(validTracestate('rojo=1,Bad Key=2,congo=3'), 'rojo=1,congo=3', 'an invalid member is dropped, the rest kept');
    assert.equal(validTracestate('no equals sign'), undefined);
    assert.equal(validTracestate('a=b\r\nx-injected: 1'), undefined, 'nothing that could break the header line');
    assert.equal(validTracestate(''), undefined);
    assert.equal(validTracestate(undefined), undefined);
    assert.equal(validTracestate(`k=${'v'.repeat(520)}`), undefined);
    const members = Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(',');
    assert.equal(validTracestate(members)?.split(',').length, 32, 'at most 32 members');
  });
});

describe('log secrets', () => {
  const config = parseConfig(
    {
      log: { backend: 'kafka', brokers: ['b:9092'], sasl: { mechanism: 'plain', username: 'u', password: 'sasl-password-1' } },
      upstreams: {
        a: { transport: 'streamable-http', url: 'https://svc:url%2Fpass@example.com/mcp?key=query-secret-9', headers: { Authorization: 'Bearer header-token-1', 'X-Short': 'abc' } },
        b: { transport: 'stdio', command: 'node', env: { TOKEN: 'env-value-12345' } },
      },
      observability: { tracing: { endpoint: 'http://collector:4318/v1/traces', headers: { 'x-honeycomb-team': 'otlp-team-key' } } },
    },
    { env: {} },
  ).config;

  it('collects every credential the config holds', () => {
    const secrets = secretValuesOf(config);
    for (const expected of ['sasl-password-1', 'url/pass', 'query-secret-9', 'Bearer header-token-1', 'header-token-1', 'env-value-12345', 'otlp-team-key', Buffer.from('svc:url/pass').toString('base64')]) {
      assert.ok(secrets.includes(expected), `${expected} in ${JSON.stringify(secrets)}`);
    }
  });

  it('scrubs them from every line, by value and by key', () => {
    let written = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString('utf8');
        done();
      },
    });
    const logger = createLogger('debug', sink);
    redactSecretValues(logger, secretValuesOf(config));
    logger.child({ upstream: 'b' }).error({ line: 'my token is env-value-12345', abc: 'abc' }, 'failed with header-token-1');
    logger.info({ err: { config: { headers: { Authorization: 'Bearer zzz' } } }, env: { TOKEN: 'x' } }, 'nested');
    assert.ok(!written.includes('env-value-12345') && !written.includes('header-token-1') && !written.includes('zzz'), written);
    assert.match(written, /"line":"my token is \[redacted\]"/);
    assert.match(written, /"abc":"abc"/, 'short values are left alone');
    assert.match(written, /"headers":"\[redacted\]"/);
    assert.match(written, /"env":"\[redacted\]"/);
  });
});
