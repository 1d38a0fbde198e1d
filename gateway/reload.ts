/**
 * Hot reload of the config and policy (SIGHUP, `POST /admin/v1/config/reload`): re-read, validate
 * whole, refuse what cannot change live, then swap (live-config.ts) without dropping a session.
 *
 *   1. The new config is read and validated; the policy compiles. Any failure → ConfigRejected
 *      (the issues, key paths only, never values) and the config in force is unchanged.
 *   2. Settings a running process cannot change (RESTART_ONLY) → rejected, naming them.
 *   3. ConfigApplied is recorded BEFORE the switch (no record, no change). While the new
 *      governance is rebuilt from the log, every charge under the old one is also noted; after
 *      the read, the charges the read did not see are replayed onto the new state, so no call
 *      decided around the switch escapes a limit that still exists. Then one assignment swaps.
 *
 * Reloads run one at a time, in order.
 */
import { ConfigError, GatewayError, PolicyError, SYSTEM_PRINCIPAL, canonicalize } from '#schemas';
import type { AttestConfig, EventDraft, ParsedConfig, Principal } from '#schemas';
import type { EventLog } from '#eventlog';
import { keyStoreFor } from './auth/key-store.ts';
import { Governance } from './governance.ts';
import type { MeteredCall } from '#projections';
import type { LiveConfig } from './live-config.ts';
import type { Logger } from './logger.ts';
import { draft } from './recorder.ts';
import type { Recorder, StreamContext } from './recorder.ts';

export type ReloadTrigger = 'signal' | 'admin';

export type ReloadOutcome =
  | {
      readonly applied: true;
      readonly configHash: string;
      readonly policyHash?: string;
      readonly changed: readonly string[];
      readonly upstreamsAdded: readonly string[];
      readonly upstreamsRemoved: readonly string[];
    }
  | { readonly applied: false; readonly error: GatewayError; readonly issues: readonly string[] };

/** Settings bound at start: the listening socket, the system stream's name, the body limit, the log, anonymous access (checked against the bind and announced at start). */
export const RESTART_ONLY = ['gateway.host', 'gateway.port', 'gateway.instance', 'gateway.maxBodyBytes', 'log', 'auth.anonymous', 'frontDoor', 'state', 'evidence'] as const;

export interface ReloaderDeps {
  readonly live: LiveConfig;
  readonly recorder: Recorder;
  readonly log: EventLog;
  readonly systemContext: StreamContext;
  readonly logger: Logger;
  /** Reads and validates the config again (the CLI's config file loader); absent → reloads are refused. */
  readonly load?: (() => ParsedConfig) | undefined;
}

function same(a: unknown, b: unknown): boolean {
  return canonicalize(a ?? null) === canonicalize(b ?? null);
}

/** Restart-only settings that differ, as key paths (values are not echoed: a log section may hold credentials). */
export function restartOnlyChanges(from: AttestConfig, to: AttestConfig): string[] {
  const out: string[] = [];
  for (const key of ['host', 'port', 'instance', 'maxBodyBytes'] as const) if (!same(from.gateway[key], to.gateway[key])) out.push(`gateway.${key}`);
  const logKeys = new Set([...Object.keys(from.log), ...Object.keys(to.log)]);
  for (const key of logKeys) if (!same((from.log as Record<string, unknown>)[key], (to.log as Record<string, unknown>)[key])) out.push(`log.${key}`);
  if (!same(from.auth.anonymous, to.auth.anonymous)) out.push('auth.anonymous');
  if (!same(from.state, to.state)) out.push('state');
  // The tree, its signing key and trust are opened at start (gateway/evidence); a key never changes unseen.
  if (!same(from.evidence, to.evidence)) out.push('evidence');
  return out;
}

/** Sections whose content differs: `gateway.<key>` for the gateway section, the top-level key otherwise. */
export function changedSections(from: AttestConfig, to: AttestConfig): string[] {
  const out: string[] = [];
  const gatewayKeys = new Set([...Object.keys(from.gateway), ...Object.keys(to.gateway)]);
  for (const key of gatewayKeys) if (!same((from.gateway as Record<string, unknown>)[key], (to.gateway as Record<string, unknown>)[key])) out.push(`gateway.${key}`);
  const keys = new Set([...Object.keys(from), ...Object.keys(to)].filter((k) => k !== 'gateway'));
  for (const key of keys) if (!same((from as Record<string, unknown>)[key], (to as Record<string, unknown>)[key])) out.push(key);
  return out.sort();
}

function issuesOf(error: unknown): string[] {
  if (error instanceof ConfigError) {
    const lines = error.message.split('\n');
    // A YAML error goes on with an excerpt of the file: keep the line and column, not the text.
    if (lines[0]?.includes('is not valid YAML') === true) return [lines[0]];
    return lines[0] === 'invalid config:' ? lines.slice(1) : lines;
  }
  if (error instanceof PolicyError) return error.message.split('\n').map((line) => `policy: ${line}`);
  return [`unexpected error: ${(error as Error).message ?? String(error)}`];
}

export class ConfigReloader {
  readonly #deps: ReloaderDeps;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(deps: ReloaderDeps) {
    this.#deps = deps;
  }

  /** Reloads once the reloads before it finished. Never rejects: a refusal is an outcome (and a ConfigRejected event). */
  reload(trigger: ReloadTrigger, actor: Principal = SYSTEM_PRINCIPAL): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reload(trigger, actor));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reload(trigger: ReloadTrigger, actor: Principal): Promise<ReloadOutcome> {
    const { live, recorder, logger } = this.#deps;
    const context: StreamContext = { ...this.#deps.systemContext, actor };
    const current = live.current;
    const instance = current.config.gateway.instance;
    const reject = async (error: GatewayError, issues: readonly string[], configHash?: string): Promise<ReloadOutcome> => {
      logger.warn({ trigger, issues }, 'config reload rejected; the config in force is unchanged');
      try {
        await recorder.record([draft(context, 'ConfigRejected', { instance, trigger, ...(configHash !== undefined && { configHash: configHash }), currentConfigHash: current.configHash, issues })]);
      } catch (logError) {
        logger.error({ err: logError }, 'ConfigRejected could not be recorded');
      }
      return { applied: false, error, issues };
    };

    if (this.#deps.load === undefined) {
      return reject(new GatewayError('ATTEST_RELOAD_UNAVAILABLE'), ['this gateway was started from a config object, not a file: there is nothing to re-read']);
    }
    let parsed: ParsedConfig;
    try {
      parsed = this.#deps.load();
    } catch (error) {
      const issues = issuesOf(error);
      return reject(new GatewayError('ATTEST_CONFIG_REJECTED', `Config reload rejected, the config in force is unchanged:\n${issues.join('\n')}`, { issues }), issues);
    }
    const next = parsed.config;
    const restartOnly = restartOnlyChanges(current.config, next);
    if (restartOnly.length > 0) {
      const issues = restartOnly.map((key) => `${key}: cannot change while the gateway runs (restart the gateway to change it)`);
      return reject(new GatewayError('ATTEST_CONFIG_REJECTED', `Config reload rejected, the config in force is unchanged: ${restartOnly.join(', ')} cannot change without a restart`, { issues }), issues, parsed.configHash);
    }
    let governance: Governance | undefined;
    try {
      governance = next.policy === undefined ? undefined : new Governance(next.policy);
    } catch (error) {
      const issues = issuesOf(error);
      return reject(new GatewayError('ATTEST_CONFIG_REJECTED', `Config reload rejected, the config in force is unchanged:\n${issues.join('\n')}`, { issues }), issues, parsed.configHash);
    }
    const old = current.governance;
    // An unchanged policy keeps its enforcement state as it is: nothing to rebuild.
    if (governance !== undefined && old !== undefined && governance.policyHash === old.policyHash) governance = old;
    // The new config's keys and token settings, plus the keys issued and revoked at run time (from the log).
    const keys = keyStoreFor(next);
    const before = Object.keys(current.config.upstreams);
    const after = Object.keys(next.upstreams);
    const summary = {
      changed: changedSections(current.config, next),
      upstreamsAdded: after.filter((u) => !before.includes(u)),
      upstreamsRemoved: before.filter((u) => !after.includes(u)),
    };

    // Charges made under the old governance from here on: the ones the rebuild does not read are replayed.
    const charged: { meter: MeteredCall; decision: EventDraft }[] = [];
    const rebuilding = governance !== undefined && governance !== old;
    if (rebuilding && old !== undefined) old.onCharge = (meter, decision) => charged.push({ meter, decision });
    // The run-time keys come from the store in force (what it applied is what the log holds of
    // them), and keys issued or revoked from here to the swap are applied to both: a revocation lost
    // here would make a revoked key work again after the reload.
    const oldKeys = current.keys;
    keys.load(oldKeys.runTimeKeys);
    oldKeys.onApply = (event) => keys.apply(event);
    try {
      // Recorded before the switch, and a barrier: every decision charged before this append is in the log the rebuild reads.
      await recorder.record([
        draft(context, 'ConfigApplied', {
          instance,
          trigger,
          configHash: parsed.configHash,
          previousConfigHash: current.configHash,
          ...(governance !== undefined && { policyHash: governance.policyHash }),
          ...(old !== undefined && { previousPolicyHash: old.policyHash }),
          ...summary,
        }),
      ]);
      const seen = new Set<string>();
      if (rebuilding) await governance?.rebuild(this.#deps.log, seen);
      for (const { meter, decision } of charged) if (!seen.has(decision.id)) governance?.applyCounted(meter, decision);
    } catch (error) {
      if (old !== undefined) old.onCharge = undefined;
      const issues = [`the new config could not be applied: ${(error as Error).message}`];
      return reject(error instanceof GatewayError ? error : new GatewayError('ATTEST_CONFIG_REJECTED', issues[0], { issues }), issues, parsed.configHash);
    } finally {
      oldKeys.onApply = undefined;
    }
    // Decisions charged under the old governance and made durable after the swap (their appends
    // were in flight) still count: they go to the new one as they are confirmed.
    if (rebuilding && old !== undefined && governance !== undefined) {
      const successor = governance;
      old.onCharge = (meter, decision) => successor.applyCounted(meter, decision);
    }
    live.swap({ config: next, configHash: parsed.configHash, keys, governance });
    logger.info({ trigger, configHash: parsed.configHash, ...summary }, 'config reloaded');
    return { applied: true, configHash: parsed.configHash, ...(governance !== undefined && { policyHash: governance.policyHash }), ...summary };
  }
}
