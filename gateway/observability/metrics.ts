/**
 * Prometheus metrics as a projection of what the gateway records: every append passes through
 * the Recorder, which hands the drafts to this observer once the log acknowledged them (or failed
 * to). So the numbers count exactly what the audit log holds — a call is counted when its
 * decision is durable — and the session code needs no metric calls of its own.
 *
 * Hot path: per append one `performance.now()`, a switch over one or two drafts, and a few
 * prom-client updates with label objects built once and cached (nested Maps keyed by configured
 * upstream and listed tool). Label cardinality is bounded: upstreams are the configured names
 * (anything else is `_none`), tools are capped per upstream (`maxToolsPerUpstream`, then `_other`;
 * names the gateway refused as unknown are `_unknown`), limit ids come from the policy, error codes
 * from the gateway's own table. Gauges that describe state (sessions per upstream, log counters)
 * are read when scraped.
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventDraft, MetricsConfig } from '#schemas';
import type { EventLog } from '#eventlog';
import type { RecordObserver } from '../recorder.ts';

/** Seconds; resolves 50 µs steps at the low end, where the gateway's own cost lives. */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/** Forwarded calls whose outcome is awaited; beyond this (outcomes never recorded) the gateway-added time is not measured. */
const MAX_IN_FLIGHT = 100_000;

export const NO_UPSTREAM = '_none';
export const OTHER_TOOL = '_other';
export const UNKNOWN_TOOL = '_unknown';

type CallLabels = { readonly upstream: string; readonly tool: string; readonly decision: 'allow' | 'deny' };
type UpstreamLabels = { readonly upstream: string };

interface ToolLabels {
  readonly allow: CallLabels;
  readonly deny: CallLabels;
}

interface UpstreamSeries {
  readonly labels: UpstreamLabels;
  readonly tools: Map<string, ToolLabels>;
  readonly other: ToolLabels;
  readonly unknown: ToolLabels;
  /** Streams (sessions) with a live connection to this upstream. */
  readonly sessions: Set<string>;
  /** 1 after the last UpstreamConnected, 0 after the last UpstreamLost; absent before either. */
  up: number | undefined;
}

/**
 * What a projector running in the gateway's process (`attest start` with readModel) reports; read
 * at each scrape. The gateway does not know the projector: the CLI hands this in.
 */
export interface ProjectorMetricsSource {
  readonly events: number;
  readonly batches: number;
  readonly quarantined: number;
  /** Failures (a read or write retried from the checkpoint), by code. */
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** Records of the log projected since position zero (the checkpoint's `processed`). */
  readonly processed: number;
  /** occurredAt (epoch ms) of the oldest event read and not written yet; undefined when none waits. */
  readonly oldestUnwrittenMs: number | undefined;
  /** When the checkpoint was last written (epoch ms); 0 when never. */
  readonly checkpointAtMs: number;
}

export interface GatewayMetricsOptions {
  readonly config: MetricsConfig;
  readonly upstreams: readonly string[];
  readonly log: EventLog;
}

export class GatewayMetrics implements RecordObserver {
  readonly registry = new Registry();
  readonly #maxTools: number;
  readonly #upstreams = new Map<string, UpstreamSeries>();
  readonly #none: UpstreamSeries;
  readonly #inFlight = new Map<string, number>();
  readonly #trips = new Map<string, { readonly kind: string; readonly limit: string }>();
  readonly #refusals = new Map<string, { readonly error_code: string; readonly jsonrpc_code: string }>();

  readonly #calls: Counter<'upstream' | 'tool' | 'decision'>;
  readonly #callSeconds: Histogram<'upstream'>;
  readonly #addedSeconds: Histogram<'upstream'>;
  readonly #appendSeconds: Histogram;
  readonly #appendFailures: Counter;
  readonly #batchEvents: Histogram;
  readonly #batchSeconds: Histogram;
  readonly #tripsTotal: Counter<'kind' | 'limit'>;
  readonly #refusalsTotal: Counter<'error_code' | 'jsonrpc_code'>;
  readonly #refusalsCounted: Counter<'error_code' | 'jsonrpc_code'>;
  readonly #sessionsOpen: Gauge;
  readonly #log: EventLog;
  #openSessions = 0;

  constructor(options: GatewayMetricsOptions) {
    const { config, upstreams, log } = options;
    this.#maxTools = config.maxToolsPerUpstream;
    this.#log = log;
    for (const name of upstreams) this.#upstreams.set(name, series(name));
    this.#none = series(NO_UPSTREAM);
    const registers = [this.registry];
    this.#calls = new Counter({ name: 'attest_calls_total', help: 'tools/call requests by upstream, tool and decision, counted when the decision is durable', labelNames: ['upstream', 'tool', 'decision'], registers });
    this.#callSeconds = new Histogram({ name: 'attest_call_duration_seconds', help: 'Agent request to durable outcome (what the agent waits for, less the response write), by upstream', labelNames: ['upstream'], buckets: LATENCY_BUCKETS, registers });
    this.#addedSeconds = new Histogram({ name: 'attest_gateway_added_seconds', help: 'The part of attest_call_duration_seconds not spent waiting for the upstream (validation, decision, log appends, relay)', labelNames: ['upstream'], buckets: LATENCY_BUCKETS, registers });
    this.#appendSeconds = new Histogram({ name: 'attest_log_append_duration_seconds', help: 'One append (a group of events) until the log acknowledged it durable', buckets: LATENCY_BUCKETS, registers });
    this.#appendFailures = new Counter({ name: 'attest_log_append_failures_total', help: 'Appends the log refused or did not confirm in time (the message was refused, fail closed)', registers });
    this.#batchEvents = new Histogram({ name: 'attest_log_batch_events', help: 'Events per group commit (one write + one fdatasync)', buckets: BATCH_BUCKETS, registers });
    this.#batchSeconds = new Histogram({ name: 'attest_log_batch_duration_seconds', help: 'Write + sync time of one group commit', buckets: LATENCY_BUCKETS, registers });
    this.#tripsTotal = new Counter({ name: 'attest_limit_trips_total', help: 'Calls refused by a limit, by kind (rate, budget, loop) and limit id', labelNames: ['kind', 'limit'], registers });
    this.#refusalsTotal = new Counter({ name: 'attest_refusals_total', help: 'Refusals by the gateway (recorded RequestRejected and gateway ErrorReturned, plus log failures), by error code', labelNames: ['error_code', 'jsonrpc_code'], registers });
    this.#refusalsCounted = new Counter({ name: 'attest_refusals_counted_total', help: 'Refusals beyond their source\'s recording budget, counted into RequestsRejectedCounted instead of recorded one by one (also in attest_refusals_total)', labelNames: ['error_code', 'jsonrpc_code'], registers });
    this.#sessionsOpen = new Gauge({ name: 'attest_sessions_open', help: 'Agent sessions open (SessionOpened minus SessionClosed)', registers });
    const upstreamSeries = [...this.#upstreams.values()];
    new Gauge({
      name: 'attest_upstream_connected_sessions',
      help: 'Sessions with a live connection to the upstream',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const s of upstreamSeries) this.set(s.labels, s.sessions.size);
      },
    });
    new Gauge({
      name: 'attest_upstream_up',
      help: '1 when the last connection attempt or event for the upstream succeeded, 0 when it was lost or refused; absent before any',
      labelNames: ['upstream'],
      registers,
      collect() {
        this.reset();
        for (const s of upstreamSeries) if (s.up !== undefined) this.set(s.labels, s.up);
      },
    });
    new Gauge({
      name: 'attest_log_events',
      help: 'Durable events in the log',
      registers,
      collect() {
        this.set(log.size());
      },
    });
    if (log.stats !== undefined) {
      const stats = log.stats.bind(log);
      new Gauge({
        name: 'attest_log_backend_stat',
        help: `The ${log.backend} log's own counters (see /healthz), by name`,
        labelNames: ['stat'],
        registers,
        collect() {
          for (const [stat, value] of Object.entries(stats())) this.set({ stat }, value);
        },
      });
    }
    log.onBatch?.((events, ms) => {
      this.#batchEvents.observe(events);
      this.#batchSeconds.observe(ms / 1000);
    });
  }

  /** Adds the attest_projector_* series, read from `source` at each scrape (docs/observability.md). Once. */
  observeProjector(source: () => ProjectorMetricsSource): void {
    const registers = [this.registry];
    const log = this.#log;
    const total = (name: string, help: string, value: (s: ProjectorMetricsSource) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value(source()));
        },
      });
    };
    total('attest_projector_events_total', 'Events the in-process projector wrote into the read model', (s) => s.events);
    total('attest_projector_batches_total', 'Batches the in-process projector wrote and checkpointed', (s) => s.batches);
    total('attest_projector_quarantined_total', 'Records the in-process projector quarantined (unreadable, unknown type or version, invalid shape)', (s) => s.quarantined);
    new Counter({
      name: 'attest_projector_errors_total',
      help: 'Failures of the in-process projector (a read of the log or a write of the read model, retried from the checkpoint), by code',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(source().errorsByCode)) this.inc({ code }, n);
      },
    });
    new Gauge({
      name: 'attest_projector_lag_events',
      help: 'Records in the log not projected yet (attest_log_events minus the checkpoint\'s processed)',
      registers,
      collect() {
        this.set(Math.max(0, log.size() - source().processed));
      },
    });
    new Gauge({
      name: 'attest_projector_lag_seconds',
      help: 'Age of the oldest event the projector read and has not written yet; 0 when none waits',
      registers,
      collect() {
        const oldest = source().oldestUnwrittenMs;
        this.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
      },
    });
    new Gauge({
      name: 'attest_projector_checkpoint_timestamp_seconds',
      help: 'When the projector last wrote its checkpoint (Unix time); 0 before the first',
      registers,
      collect() {
        this.set(source().checkpointAtMs / 1000);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. */
  scrape(): Promise<string> {
    this.#sessionsOpen.set(this.#openSessions);
    return this.registry.metrics();
  }

  appended(drafts: readonly EventDraft[], startedAt: number): void {
    const now = performance.now();
    this.#appendSeconds.observe((now - startedAt) / 1000);
    let request: Extract<EventDraft, { type: 'RequestReceived' }> | undefined;
    for (const draft of drafts) {
      switch (draft.type) {
        case 'RequestReceived':
          request = draft;
          break;
        case 'DecisionMade': {
          if (request === undefined || request.data.from !== 'agent') break;
          const data = draft.data;
          if (data.decision === 'allow' && data.route === 'forward' && draft.callId !== undefined && this.#inFlight.size < MAX_IN_FLIGHT) this.#inFlight.set(draft.callId, now);
          if (request.data.method !== 'tools/call') break;
          const tool = this.#toolLabels(request.data.upstream, request.data.target, data.stage === 'routing');
          this.#calls.inc(data.decision === 'allow' ? tool.allow : tool.deny);
          const trip = data.enforcement?.trip;
          if (trip !== undefined) this.#tripsTotal.inc(this.#tripLabels(trip.kind, trip.limitId));
          break;
        }
        case 'ResultReturned':
          if (draft.data.from === 'agent') this.#forget(draft.callId);
          else this.#outcome(draft.callId, draft.data.upstream, draft.data.durationMs, startedAt, now);
          break;
        case 'ErrorReturned':
          // from the agent: its answer to a server→client request, or its cancellation of a forwarded call.
          if (draft.data.from === 'agent') {
            this.#forget(draft.callId);
            break;
          }
          if (draft.data.from === 'gateway' && draft.data.errorCode !== undefined) this.#refusalsTotal.inc(this.#refusalLabels(draft.data.errorCode, draft.data.jsonrpcCode));
          this.#outcome(draft.callId, draft.data.upstream, draft.data.durationMs, startedAt, now);
          break;
        case 'RequestRejected':
          this.#refusalsTotal.inc(this.#refusalLabels(draft.data.errorCode, draft.data.jsonrpcCode ?? 0));
          break;
        case 'SessionOpened':
          this.#openSessions++;
          break;
        case 'SessionClosed':
          this.#openSessions--;
          for (const s of this.#upstreams.values()) s.sessions.delete(draft.stream);
          break;
        case 'UpstreamConnected': {
          const s = this.#upstreams.get(draft.data.upstream);
          if (s === undefined) break;
          s.sessions.add(draft.stream);
          s.up = 1;
          break;
        }
        case 'UpstreamLost': {
          const s = this.#upstreams.get(draft.data.upstream);
          if (s === undefined) break;
          s.sessions.delete(draft.stream);
          s.up = 0;
          break;
        }
        default:
          break;
      }
    }
  }

  /** A refusal over its source's recording budget: counted into a RequestsRejectedCounted, not recorded on its own. */
  refusalCounted(errorCode: string, jsonrpcCode: number): void {
    this.#refusalsTotal.inc(this.#refusalLabels(errorCode, jsonrpcCode));
    this.#refusalsCounted.inc(this.#refusalLabels(errorCode, jsonrpcCode));
  }

  appendFailed(drafts: readonly EventDraft[], startedAt: number): void {
    void startedAt;
    this.#appendFailures.inc();
    for (const draft of drafts) {
      // The agent is refused with an error that cannot be recorded: count it here, the one place it shows.
      if (draft.type === 'RequestReceived' && draft.data.from === 'agent') this.#refusalsTotal.inc(this.#refusalLabels('ATTEST_LOG_UNAVAILABLE', -32011));
      else if (draft.type === 'ResultReturned' && draft.data.from !== 'agent') this.#refusalsTotal.inc(this.#refusalLabels('ATTEST_RESULT_NOT_RECORDED', -32014));
      this.#forget(draft.callId);
    }
  }

  #forget(callId: string | undefined): void {
    if (callId !== undefined) this.#inFlight.delete(callId);
  }

  #outcome(callId: string | undefined, upstream: string | undefined, durationMs: number, startedAt: number, now: number): void {
    const labels = (upstream === undefined ? undefined : this.#upstreams.get(upstream)) ?? this.#none;
    // durationMs runs from the request's arrival to this outcome's draft; the outcome's own append comes on top.
    const total = durationMs / 1000 + (now - startedAt) / 1000;
    this.#callSeconds.observe(labels.labels, total);
    const admittedAt = callId === undefined ? undefined : this.#inFlight.get(callId);
    if (admittedAt === undefined) {
      this.#addedSeconds.observe(labels.labels, total);
      return;
    }
    this.#inFlight.delete(callId as string);
    this.#addedSeconds.observe(labels.labels, Math.max(0, total - (startedAt - admittedAt) / 1000));
  }

  #toolLabels(upstream: string | undefined, tool: string | undefined, refusedAsUnknown: boolean): ToolLabels {
    const s = (upstream === undefined ? undefined : this.#upstreams.get(upstream)) ?? this.#none;
    if (refusedAsUnknown || tool === undefined || s === this.#none) return s.unknown;
    const known = s.tools.get(tool);
    if (known !== undefined) return known;
    if (s.tools.size >= this.#maxTools) return s.other;
    const labels = toolLabels(s.labels.upstream, tool);
    s.tools.set(tool, labels);
    return labels;
  }

  #tripLabels(kind: string, limit: string): { readonly kind: string; readonly limit: string } {
    const key = `${kind}\u0000${limit}`;
    let labels = this.#trips.get(key);
    if (labels === undefined) this.#trips.set(key, (labels = { kind, limit }));
    return labels;
  }

  #refusalLabels(errorCode: string, jsonrpcCode: number): { readonly error_code: string; readonly jsonrpc_code: string } {
    let labels = this.#refusals.get(errorCode);
    if (labels === undefined) this.#refusals.set(errorCode, (labels = { error_code: errorCode, jsonrpc_code: String(jsonrpcCode) }));
    return labels;
  }
}

function toolLabels(upstream: string, tool: string): ToolLabels {
  return { allow: { upstream, tool, decision: 'allow' }, deny: { upstream, tool, decision: 'deny' } };
}

function series(upstream: string): UpstreamSeries {
  return { labels: { upstream }, tools: new Map(), other: toolLabels(upstream, OTHER_TOOL), unknown: toolLabels(upstream, UNKNOWN_TOOL), sessions: new Set(), up: undefined };
}
