/**
 * W3C trace context through a real gateway to the real fixture MCP server over Streamable HTTP,
 * with a recording proxy in front of the upstream to see the `traceparent` and `tracestate` headers on the wire,
 * and a real OTLP/HTTP receiver on loopback (a node:http server taking the exporter's JSON POSTs).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { rawInitialize, rawPost } from './support/raw-mcp.ts';
import { startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { startNodeServer, stopAllProcesses } from './harness/processes.ts';
import type { ListeningProcess } from './harness/processes.ts';
import { startRecordingProxy } from '../gateway/upstreams/fixtures/recording-proxy.ts';
import type { RecordingProxy } from '../gateway/upstreams/fixtures/recording-proxy.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/upstream/server.ts', import.meta.url));
const TRACE_A = '0af7651916cd43dd8448eb211c80319c';
const AGENT_SPAN_A = 'b7ad6b7169203331';
const TRACE_B = '4bf92f3577b34da6a3ce929d0e0e4736';
const AGENT_SPAN_B = '00f067aa0ba902b7';

interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly status?: { readonly code?: number; readonly message?: string };
  readonly attributes: readonly { readonly key: string; readonly value: Record<string, unknown> }[];
}

interface OtlpReceiver {
  readonly url: string;
  readonly spans: OtlpSpan[];
  readonly resources: Record<string, unknown>[];
  readonly contentTypes: string[];
  close(): Promise<void>;
}

/** Accepts OTLP/HTTP JSON trace exports, as a collector would. */
async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: OtlpSpan[] = [];
  const resources: Record<string, unknown>[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      contentTypes.push(request.headers['content-type'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: { resource?: Record<string, unknown>; scopeSpans?: { spans?: OtlpSpan[] }[] }[] };
      for (const rs of body.resourceSpans ?? []) {
        resources.push(rs.resource ?? {});
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    resources,
    contentTypes,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function attribute(span: OtlpSpan, key: string): unknown {
  const found = span.attributes.find((a) => a.key === key)?.value;
  return found === undefined ? undefined : Object.values(found)[0];
}

describe('trace context through the gateway', () => {
  let fixture: ListeningProcess | undefined;
  let proxy: RecordingProxy | undefined;
  let legacy: ListeningProcess | undefined;
  let legacyProxy: RecordingProxy | undefined;
  let receiver: OtlpReceiver | undefined;
  let t: TestGateway | undefined;
  const gateways: TestGateway[] = [];
  after(async () => {
    for (const gw of gateways) await gw.close();
    await proxy?.close();
    await legacyProxy?.close();
    await receiver?.close();
    await stopAllProcesses();
  });

  async function session(gw: TestGateway): Promise<(id: number, params: Record<string, unknown>, extra?: Record<string, string>) => Promise<Record<string, unknown> | undefined>> {
    const mcp = `${gw.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, gw.headers);
    const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    return async (id, params, extra = {}) => (await rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params }, { ...headers, ...extra })).messages[0];
  }

  /** traceparent headers the upstream received on tools/call POSTs, in order. */
  function upstreamTraceparents(through: RecordingProxy | undefined = proxy): string[] {
    return (through?.requests ?? []).filter((r) => r.method === 'POST' && typeof r.headers['traceparent'] === 'string').map((r) => r.headers['traceparent'] as string);
  }

  /** The tracestate header beside each of those traceparents ('' when there was none). */
  function upstreamTracestates(through: RecordingProxy | undefined = proxy): string[] {
    return (through?.requests ?? []).filter((r) => r.method === 'POST' && typeof r.headers['traceparent'] === 'string').map((r) => (typeof r.headers['tracestate'] === 'string' ? r.headers['tracestate'] : ''));
  }

  it('without a tracing section: a valid agent traceparent reaches the upstream unchanged, an invalid one does not', { timeout: 60_000 }, async () => {
    fixture = await startNodeServer(FIXTURE, { args: ['--http'] });
    proxy = await startRecordingProxy(Number(new URL(fixture.url).port));
    // The legacy SSE transport goes through the SDK's client transport (http.ts), not the native POST.
    legacy = await startNodeServer(FIXTURE, { args: ['--sse'] });
    legacyProxy = await startRecordingProxy(Number(new URL(legacy.url).port));
    t = await startTestGateway({ upstreams: { fixture: { transport: 'streamable-http', url: `${proxy.origin}/mcp` }, legacy: { transport: 'sse', url: `${legacyProxy.origin}/sse` } } });
    gateways.push(t);
    const call = await session(t);
    const fromMeta = `00-${TRACE_A}-${AGENT_SPAN_A}-01`;
    // tracestate travels with its traceparent: _meta's with _meta's (the header's is not mixed in), the header's with the header's.
    assert.ok((await call(10, { name: 'fixture__echo', arguments: { text: 'meta' }, _meta: { traceparent: fromMeta, tracestate: 'rojo=00f067aa0ba902b7' } }, { tracestate: 'congo=from-header' }))?.['result']);
    const fromHeader = `00-${TRACE_B}-${AGENT_SPAN_B}-00`;
    assert.ok((await call(11, { name: 'fixture__echo', arguments: { text: 'header' } }, { traceparent: fromHeader, tracestate: 'congo=t61rcWkgMzE,Bad Key=1' }))?.['result']);
    assert.ok((await call(12, { name: 'fixture__echo', arguments: { text: 'bad' } }, { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }))?.['result']);
    assert.deepEqual(upstreamTraceparents(), [fromMeta, fromHeader], 'passed on as received; the all-zero trace id is invalid and not forwarded');
    assert.deepEqual(upstreamTracestates(), ['rojo=00f067aa0ba902b7', 'congo=t61rcWkgMzE'], 'tracestate passed on with its traceparent, the invalid member dropped');
    assert.ok((await call(13, { name: 'legacy__echo', arguments: { text: 'sse' } }, { traceparent: fromHeader, tracestate: 'congo=t61rcWkgMzE' }))?.['result']);
    assert.deepEqual(upstreamTraceparents(legacyProxy), [fromHeader], 'the SDK transport path (legacy SSE upstream) carries it too');
    assert.deepEqual(upstreamTracestates(legacyProxy), ['congo=t61rcWkgMzE']);

    const requests = (await t.events()).filter((e) => e.type === 'RequestReceived' && e.data.method === 'tools/call');
    assert.deepEqual(requests.map((e) => e.traceparent), [fromMeta, fromHeader, '00-00000000000000000000000000000000-00f067aa0ba902b7-01', fromHeader], 'the events record what the agent sent');
    await t.close();
    t = undefined;
  });

  it('with tracing: the gateway span is the upstream\'s parent in the same trace, and spans are exported over OTLP/HTTP', { timeout: 60_000 }, async () => {
    proxy?.requests.splice(0);
    receiver = await startOtlpReceiver();
    assert.ok(proxy !== undefined);
    t = await startTestGateway({
      upstreams: { fixture: { transport: 'streamable-http', url: `${proxy.origin}/mcp` } },
      observability: { tracing: { endpoint: receiver.url, serviceName: 'attest-under-test' } },
    });
    gateways.push(t);
    const call = await session(t);
    assert.ok((await call(20, { name: 'fixture__echo', arguments: { text: 'meta' }, _meta: { traceparent: `00-${TRACE_A}-${AGENT_SPAN_A}-01` } }))?.['result']);
    assert.ok((await call(21, { name: 'fixture__echo', arguments: { text: 'header' } }, { traceparent: `00-${TRACE_B}-${AGENT_SPAN_B}-01`, tracestate: 'congo=t61rcWkgMzE' }))?.['result']);
    assert.ok((await call(22, { name: 'fixture__echo', arguments: { text: 'none' } }))?.['result']);
    const unknown = await call(23, { name: 'nowhere__echo', arguments: {} }, { traceparent: `00-${TRACE_B}-${AGENT_SPAN_B}-01` });
    assert.equal((unknown?.['error'] as { code: number } | undefined)?.code, -32602);

    const seen = upstreamTraceparents().map((h) => h.split('-'));
    assert.equal(seen.length, 3, `three calls forwarded, each with a traceparent: ${JSON.stringify(seen)}`);
    const [a, b, root] = seen as [string[], string[], string[]];
    assert.equal(a[1], TRACE_A, 'same trace id as the agent');
    assert.notEqual(a[2], AGENT_SPAN_A, 'the parent the upstream sees is the gateway span, not the agent span');
    assert.equal(b[1], TRACE_B);
    assert.notEqual(b[2], AGENT_SPAN_B);
    assert.deepEqual(upstreamTracestates(), ['', 'congo=t61rcWkgMzE', ''], 'the agent tracestate rides on the gateway span');
    assert.ok(root[1] !== TRACE_A && root[1] !== TRACE_B && /^[0-9a-f]{32}$/.test(root[1] ?? ''), 'a call without context starts a new trace at the gateway');

    await t.close(); // flushes the batch processor
    t = undefined;
    assert.ok(receiver.contentTypes.every((type) => type.startsWith('application/json')), `OTLP JSON: ${receiver.contentTypes.join(', ')}`);
    const serviceNames = receiver.resources.flatMap((r) => (r['attributes'] as { key: string; value: { stringValue?: string } }[]).filter((x) => x.key === 'service.name').map((x) => x.value.stringValue));
    assert.ok(serviceNames.includes('attest-under-test'));

    const spanA = receiver.spans.find((s) => s.spanId === a[2]);
    assert.ok(spanA, `the span whose id the upstream saw was exported: ${JSON.stringify(receiver.spans.map((s) => s.spanId))}`);
    assert.equal(spanA.traceId, TRACE_A);
    assert.equal(spanA.parentSpanId, AGENT_SPAN_A, 'child of the agent span');
    assert.equal(spanA.kind, 2, 'SERVER');
    assert.equal(spanA.name, 'tools/call echo');
    assert.equal(attribute(spanA, 'attest.decision'), 'allow');
    assert.equal(attribute(spanA, 'attest.upstream'), 'fixture');
    assert.equal(attribute(spanA, 'gen_ai.tool.name'), 'echo');
    const spanB = receiver.spans.find((s) => s.spanId === b[2]);
    assert.equal(spanB?.parentSpanId, AGENT_SPAN_B);
    const denied = receiver.spans.find((s) => s.traceId === TRACE_B && s.spanId !== b[2]);
    assert.ok(denied, 'the refused call has a span in the agent trace too');
    assert.equal(denied.status?.code, 2, 'ERROR');
    assert.equal(denied.status?.message, 'ATTEST_UNKNOWN_TOOL');
    assert.ok(receiver.spans.some((s) => s.name === 'initialize'), 'every agent request gets a span');
  });
});
