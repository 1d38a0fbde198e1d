/**
 * Prometheus metrics through a real gateway: real calls from raw HTTP to the fixture MCP server
 * (allowed, denied by a rule, rate-limited, unknown tool, a tool past the label cap, bad JSON),
 * then /metrics scraped over HTTP and checked value by value — and who may scrape it.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashApiKey } from '#gateway';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { parseExposition, sampleValue } from './support/prometheus.ts';
import type { Sample } from './support/prometheus.ts';

const AGENT_KEY = 'atk_metrics_agent_0123456789';
const SCRAPER_KEY = 'atk_metrics_scraper_0123456789';

const POLICY = {
  defaultEffect: 'deny',
  rules: [
    { id: 'no-secrets', effect: 'deny', when: "tool == 'echo' && args.text.contains('secret')" },
    { id: 'everyday-tools', effect: 'allow', when: "tool in ['echo', 'add', 'fail']" },
  ],
  rateLimits: [{ id: 'add-per-key', scope: 'key', match: "tool == 'add'", capacity: 1, refillPerSecond: 0.001 }],
};

describe('metrics through the gateway', () => {
  let t: TestGateway | undefined;
  after(async () => {
    await t?.close();
  });

  async function scrape(key: string | undefined): Promise<{ status: number; text: string; type: string | null }> {
    const response = await fetch(`${t?.url}/metrics`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text(), type: response.headers.get('content-type') };
  }

  async function samples(): Promise<Sample[]> {
    const scraped = await scrape(SCRAPER_KEY);
    assert.equal(scraped.status, 200, scraped.text);
    assert.match(scraped.type ?? '', /^text\/plain; version=0\.0\.4/);
    return parseExposition(scraped.text);
  }

  it('counts calls, decisions, limit trips, refusals, sessions and log appends as recorded', { timeout: 60_000 }, async () => {
    t = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      keys: [
        { id: 'agent', hash: hashApiKey(AGENT_KEY), tenant: 't1' },
        { id: 'scraper', hash: hashApiKey(SCRAPER_KEY), tenant: 'ops', roles: ['attest:metrics'] },
      ],
      policy: POLICY,
      observability: { metrics: { maxToolsPerUpstream: 2 } },
    });

    // Who may scrape: nobody without a key, no agent key without the role.
    assert.equal((await scrape(undefined)).status, 401);
    const forbidden = await scrape(AGENT_KEY);
    assert.equal(forbidden.status, 403);
    assert.equal((JSON.parse(forbidden.text) as { error: { data: { errorCode: string } } }).error.data.errorCode, 'ATTEST_FORBIDDEN');

    const mcp = `${t.url}/mcp`;
    const agent = { authorization: `Bearer ${AGENT_KEY}` };
    const { sessionId, result } = await rawInitialize(mcp, agent);
    const headers = { ...agent, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const call = (id: number, name: string, args: Record<string, unknown>) => rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }, headers);
    assert.ok((await rawPost(mcp, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, headers)).messages[0]?.['result']);

    assert.ok((await call(10, 'fixture__echo', { text: 'one' })).messages[0]?.['result']);
    assert.ok((await call(11, 'fixture__echo', { text: 'two' })).messages[0]?.['result']);
    assert.equal(errorOf(await call(12, 'fixture__echo', { text: 'a secret' })).code, -32010);
    assert.ok((await call(13, 'fixture__add', { a: 1, b: 2 })).messages[0]?.['result']);
    assert.equal(errorOf(await call(14, 'fixture__add', { a: 1, b: 2 })).code, -32020);
    assert.equal(errorOf(await call(15, 'fixture__nope', {})).code, -32602);
    assert.ok((await call(16, 'fixture__fail', {})).messages[0]?.['result'], 'a third tool, past maxToolsPerUpstream: 2');
    assert.equal((await rawPost(mcp, '{"jsonrpc":"2.0",', headers)).status, 400);

    let s = await samples();
    const calls = (tool: string, decision: string): number | undefined => sampleValue(s, 'attest_calls_total', { upstream: 'fixture', tool, decision });
    assert.equal(calls('echo', 'allow'), 2);
    assert.equal(calls('echo', 'deny'), 1);
    assert.equal(calls('add', 'allow'), 1);
    assert.equal(calls('add', 'deny'), 1);
    assert.equal(calls('_unknown', 'deny'), 1, 'a name the upstream does not list takes no label of its own');
    assert.equal(calls('_other', 'allow'), 1, 'tools past the cap share one label');
    assert.equal(calls('fail', 'allow'), undefined);
    assert.equal(s.filter((x) => x.name === 'attest_calls_total').reduce((sum, x) => sum + x.value, 0), 7);

    assert.equal(sampleValue(s, 'attest_limit_trips_total', { kind: 'rate', limit: 'add-per-key' }), 1);
    const refusals = (code: string): number | undefined => sampleValue(s, 'attest_refusals_total', { error_code: code });
    assert.equal(refusals('ATTEST_UNAUTHENTICATED'), 1);
    assert.equal(refusals('ATTEST_FORBIDDEN'), 1);
    assert.equal(refusals('ATTEST_DENIED'), 1);
    assert.equal(refusals('ATTEST_RATE_LIMITED'), 1);
    assert.equal(refusals('ATTEST_UNKNOWN_TOOL'), 1);
    assert.equal(refusals('ATTEST_PARSE_ERROR'), 1);
    assert.equal(sampleValue(s, 'attest_refusals_total', { error_code: 'ATTEST_RATE_LIMITED', jsonrpc_code: '-32020' }), 1);

    assert.equal(sampleValue(s, 'attest_sessions_open'), 1);
    assert.equal(sampleValue(s, 'attest_upstream_connected_sessions', { upstream: 'fixture' }), 1);
    assert.equal(sampleValue(s, 'attest_upstream_up', { upstream: 'fixture' }), 1);

    // Seven tool calls name the upstream; initialize and the aggregated tools/list are the gateway's own.
    assert.equal(sampleValue(s, 'attest_call_duration_seconds_count', { upstream: 'fixture' }), 7);
    assert.equal(sampleValue(s, 'attest_call_duration_seconds_count', { upstream: '_none' }), 2);
    assert.equal(sampleValue(s, 'attest_gateway_added_seconds_count', { upstream: 'fixture' }), 7);
    const total = sampleValue(s, 'attest_call_duration_seconds_sum', { upstream: 'fixture' }) ?? NaN;
    const added = sampleValue(s, 'attest_gateway_added_seconds_sum', { upstream: 'fixture' }) ?? NaN;
    assert.ok(added > 0 && added <= total, `gateway-added ${added} s within the total ${total} s`);
    assert.ok((sampleValue(s, 'attest_call_duration_seconds_bucket', { upstream: 'fixture', le: '60' }) ?? 0) === 7);
    assert.ok(s.some((x) => x.name === 'attest_call_duration_seconds_bucket' && x.labels['le'] === '0.00005'), 'a 50 µs bucket');

    const events = await t.events();
    assert.equal(sampleValue(s, 'attest_log_events'), events.length);
    assert.equal(sampleValue(s, 'attest_log_batch_events_sum'), events.length, 'every durable event was in a group commit the metrics saw');
    assert.ok((sampleValue(s, 'attest_log_batch_events_count') ?? 0) >= 1);
    assert.ok((sampleValue(s, 'attest_log_append_duration_seconds_count') ?? 0) >= 10);
    assert.equal(sampleValue(s, 'attest_log_append_failures_total'), 0);
    assert.equal(sampleValue(s, 'attest_log_backend_stat', { stat: 'events' }), events.length);
    // The metrics agree with the log they project.
    const decided = events.filter((e) => e.type === 'DecisionMade' && e.data.stage !== 'gateway').length;
    assert.ok(decided >= 7);

    const closed = await fetch(mcp, { method: 'DELETE', headers, signal: AbortSignal.timeout(10_000) });
    assert.equal(closed.status, 200);
    // The DELETE is answered before the session's close is recorded: wait for SessionClosed, bounded.
    const deadline = Date.now() + 10_000;
    do {
      s = await samples();
      if (sampleValue(s, 'attest_sessions_open') === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } while (Date.now() < deadline);
    assert.equal(sampleValue(s, 'attest_sessions_open'), 0);
    assert.equal(sampleValue(s, 'attest_upstream_connected_sessions', { upstream: 'fixture' }), 0);
  });
});
