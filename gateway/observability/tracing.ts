/**
 * W3C Trace Context through the gateway, and OpenTelemetry spans when configured.
 *
 * The agent's trace context comes from `params._meta.traceparent` (MCP's place for it) or else the
 * HTTP `traceparent` header of the POST that carried the request; it is recorded in the request's
 * events as received. `tracestate` comes from the same place as the traceparent it belongs to.
 * What goes to an HTTP upstream (the `traceparent` and `tracestate` headers of the upstream POST):
 * - no `observability.tracing` → no SDK is loaded; the agent's traceparent is passed on unchanged
 *   when it is valid W3C (the gateway is not a participant in the trace), with its tracestate
 *   (invalid list members dropped, as W3C asks; none beyond 512 characters);
 * - with tracing → the gateway starts a SERVER span per agent request, child of the agent's
 *   context, and the upstream gets the same trace id with the gateway's span as parent, and the
 *   agent's tracestate carried by that span.
 * Spans end from the Recorder (RecordObserver): when the call's outcome is durable, or when an
 * append for it failed. Export: OTLP/HTTP (JSON) through a batch processor, off the hot path.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Span, Tracer } from '@opentelemetry/api';
import { TraceState, parseTraceParent } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { EventDraft, TracingConfig } from '#schemas';
import type { RecordObserver } from '../recorder.ts';

/** Trace context the transport saw on the HTTP request that carried a message. */
export interface TraceHeaders {
  readonly traceparent: string;
  readonly tracestate?: string | undefined;
}

export interface CallTracing extends RecordObserver {
  /** Starts the gateway's span for an agent request; returns the trace context to send upstream. */
  startCall(callId: string, method: string, traceparent: string | undefined, tracestate: string | undefined): TraceHeaders | undefined;
  shutdown(): Promise<void>;
}

/** Spans not ended (outcome never recorded nor failed) beyond this are not started: memory stays bounded. */
const MAX_OPEN_SPANS = 100_000;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$/;

/** The traceparent if it is valid W3C Trace Context (version ≠ ff, ids not all zero), else undefined. */
export function validTraceparent(value: string | undefined): string | undefined {
  if (value === undefined || value.length < 55 || !TRACEPARENT.test(value)) return undefined;
  return parseTraceParent(value) === null ? undefined : value;
}

/** W3C: a tracestate of more than 512 characters may be dropped whole; this gateway does. */
const MAX_TRACESTATE_CHARS = 512;

/** The tracestate with invalid list members dropped (at most 32 kept), or undefined when nothing valid is left. */
export function validTracestate(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0 || value.length > MAX_TRACESTATE_CHARS) return undefined;
  const serialized = new TraceState(value).serialize();
  return serialized === '' ? undefined : serialized;
}

/** The W3C headers of an HTTP request, without allocating when there are none. */
export function traceHeadersOf(traceparent: string | string[] | null | undefined, tracestate: string | string[] | null | undefined): TraceHeaders | undefined {
  if (typeof traceparent !== 'string') return undefined;
  return { traceparent, tracestate: typeof tracestate === 'string' ? tracestate : undefined };
}

/**
 * The trace context to forward for an agent request: the gateway's span when tracing is on, else
 * the agent's own when its traceparent is valid.
 */
export function upstreamTraceContext(tracing: CallTracing | undefined, callId: string, method: string, traceparent: string | undefined, tracestate: string | undefined): TraceHeaders | undefined {
  if (tracing !== undefined) return tracing.startCall(callId, method, traceparent, tracestate);
  const valid = validTraceparent(traceparent);
  if (valid === undefined) return undefined;
  const state = validTracestate(tracestate);
  return state === undefined ? { traceparent: valid } : { traceparent: valid, tracestate: state };
}

export interface OtelTracingOptions {
  readonly config: TracingConfig;
  readonly instance: string;
  readonly version: string;
  /** Tests only: export here instead of OTLP. */
  readonly exporter?: SpanExporter;
}

export function createOtelTracing(options: OtelTracingOptions): CallTracing {
  return new OtelTracing(options);
}

class OtelTracing implements CallTracing {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #open = new Map<string, Span>();

  constructor(options: OtelTracingOptions) {
    const { config } = options;
    const exporter = options.exporter ?? new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers }, timeoutMillis: config.exportTimeoutMs });
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': options.version, 'service.instance.id': options.instance }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor({ exporter, exportTimeoutMillis: config.exportTimeoutMs })],
    });
    this.#tracer = this.#provider.getTracer('attest-gateway', options.version);
  }

  startCall(callId: string, method: string, traceparent: string | undefined, tracestate: string | undefined): TraceHeaders | undefined {
    const parentContext = validTraceparent(traceparent) === undefined ? undefined : parseTraceParent(traceparent as string);
    const state = parentContext === undefined || parentContext === null ? undefined : validTracestate(tracestate);
    if (this.#open.size >= MAX_OPEN_SPANS) return parentContext === undefined || parentContext === null ? undefined : { traceparent: traceparent as string, ...(state !== undefined && { tracestate: state }) };
    let context = ROOT_CONTEXT;
    if (parentContext !== undefined && parentContext !== null) {
      context = trace.setSpanContext(ROOT_CONTEXT, { ...parentContext, isRemote: true, ...(state !== undefined && { traceState: new TraceState(state) }) });
    }
    const span = this.#tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': method, 'attest.call_id': callId } }, context);
    this.#open.set(callId, span);
    const { traceId, spanId, traceFlags, traceState } = span.spanContext();
    const forwarded = traceState?.serialize();
    return { traceparent: `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`, ...(forwarded !== undefined && forwarded !== '' && { tracestate: forwarded }) };
  }

  appended(drafts: readonly EventDraft[]): void {
    for (const draft of drafts) {
      const callId = draft.callId;
      if (callId === undefined) continue;
      const span = this.#open.get(callId);
      if (span === undefined) continue;
      switch (draft.type) {
        case 'RequestReceived':
          if (draft.data.upstream !== undefined) span.setAttribute('attest.upstream', draft.data.upstream);
          if (draft.data.target !== undefined) {
            span.setAttribute('attest.target', draft.data.target);
            if (draft.data.method === 'tools/call') span.setAttribute('gen_ai.tool.name', draft.data.target);
            span.updateName(`${draft.data.method} ${draft.data.target}`);
          }
          span.setAttribute('mcp.session.id', draft.stream);
          break;
        case 'DecisionMade':
          span.setAttributes({ 'attest.decision': draft.data.decision, 'attest.decision.stage': draft.data.stage, 'attest.decision.rule_id': draft.data.ruleId, 'attest.route': draft.data.route });
          span.addEvent('decision recorded');
          break;
        case 'ResultReturned':
          if (draft.data.isError) span.setAttribute('attest.tool_error', true);
          this.#end(callId, span, undefined);
          break;
        case 'ErrorReturned':
          span.setAttribute('rpc.jsonrpc.error_code', draft.data.jsonrpcCode);
          this.#end(callId, span, draft.data.errorCode ?? `JSON-RPC ${draft.data.jsonrpcCode}`);
          break;
        default:
          break;
      }
    }
  }

  appendFailed(drafts: readonly EventDraft[]): void {
    for (const draft of drafts) {
      const span = draft.callId === undefined ? undefined : this.#open.get(draft.callId);
      if (span !== undefined) this.#end(draft.callId as string, span, `the ${draft.type} event could not be recorded`);
    }
  }

  #end(callId: string, span: Span, error: string | undefined): void {
    this.#open.delete(callId);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end();
  }

  async shutdown(): Promise<void> {
    for (const [callId, span] of this.#open) this.#end(callId, span, 'the gateway stopped before the call ended');
    await this.#provider.shutdown();
  }
}
