#!/usr/bin/env node
/**
 * `attest`: one CLI, a subcommand per process plus the operator tools.
 * Exit codes: 0 ok, 1 failure (verification failed, service error), 2 usage or config error.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { ConfigError, PolicyError } from '#schemas';
import type { AttestEvent } from '#schemas';
import { cursorOf, openEventLogReader, verifyEventLog } from '#eventlog';
import type { LogCursor } from '#eventlog';
import { createLogger, generateApiKey, GATEWAY_VERSION, hashApiKey, serveStdio, startGateway } from '#gateway';
import { loadConfigFile } from './config-file.ts';
import { KEYS_ADMIN_ACTIONS, KEYS_OPTIONS, KEYS_USAGE, runKeysAdmin } from './keys.ts';
import { NoteKeyUsageError, runNoteKey } from './note-key.ts';
import { approvalsCommand } from './approvals.ts';
import { reloadOnHangup } from './reload-signal.ts';
import { projectBeside, projectorCommand } from './projector.ts';
import { pinsCommand } from './pins.ts';
import { EXPORT_OPTIONS, EXPORT_USAGE, EvidenceUsageError, PROVE_OPTIONS, PROVE_USAGE, TRUST_OPTIONS, runExport, runProve, runVerifyBundle, runVerifyCheckpoint } from './evidence.ts';

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number>;
}

const configOption = { config: { type: 'string', short: 'c' } } as const;

function requireConfig(values: Record<string, string | boolean | string[] | undefined>): ReturnType<typeof loadConfigFile> {
  const file = values['config'];
  if (typeof file !== 'string') throw new UsageError('--config FILE is required');
  return loadConfigFile(file);
}

class UsageError extends Error {}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    // `on`, not `once`: Node removes a `once` listener before calling it, so the upstream reaper
    // (gateway/upstreams/reaper.ts) would count itself alone and re-raise the signal, killing the
    // gateway before it closes (no GatewayStopped). A second signal while closing is ignored (SIGKILL is not).
    process.on('SIGINT', () => resolve('SIGINT'));
    process.on('SIGTERM', () => resolve('SIGTERM'));
  });
}

async function runGateway(values: Record<string, string | boolean | string[] | undefined>, what: 'gateway' | 'start'): Promise<number> {
  const loaded = requireConfig(values);
  const logger = createLogger();
  // Listen for signals before starting, so a SIGTERM during start-up still shuts down cleanly.
  const signalled = untilSignal();
  if (values['stdio'] === true) {
    const stdio = await serveStdio(loaded.config, { logger, configHash: loaded.configHash });
    const reason = await Promise.race([stdio.done.then(() => 'stdin closed'), signalled]);
    await stdio.close(reason);
    return 0;
  }
  const port = typeof values['port'] === 'string' ? Number(values['port']) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port must be an integer 0-65535, got "${String(values['port'])}"`);
  const hangup = reloadOnHangup(logger);
  const gateway = await startGateway(loaded.config, { logger, configHash: loaded.configHash, reloadFrom: () => loadConfigFile(loaded.file), ...(port !== undefined && { port }), ...(typeof values['host'] === 'string' && { host: values['host'] }) });
  // `attest start` runs the projector beside the gateway when a read model is configured (docs/projector.md).
  const readModel = what === 'start' ? loaded.config.readModel : undefined;
  const projector = readModel === undefined ? undefined : await projectBeside(readModel, gateway.log, loaded.config.log, logger).catch(async (error: unknown) => {
    await gateway.close('the read model could not be opened');
    throw error;
  });
  if (projector !== undefined) gateway.metrics?.observeProjector(() => projector.metrics());
  // One line on stdout for scripts and tests that start the gateway and wait for it.
  process.stdout.write(`attest ${what} listening on ${gateway.url} (aggregate endpoint ${gateway.url}/mcp)\n`);
  hangup.attach(gateway);
  const signal = await signalled;
  hangup.detach();
  await projector?.stop();
  await gateway.close(`received ${signal}`);
  await projector?.finish();
  return 0;
}

function summarize(event: AttestEvent): string {
  switch (event.type) {
    case 'RequestReceived':
      return `${event.data.from} ${event.data.method}${event.data.upstream === undefined ? '' : ` → ${event.data.upstream}`}${event.data.target === undefined ? '' : ` ${event.data.target}`}`;
    case 'DecisionMade':
      return `${event.data.decision} (${event.data.stage}: ${event.data.ruleId}) ${event.data.reason}`;
    case 'ResultReturned':
      return `${event.data.from}${event.data.upstream === undefined ? '' : ` ${event.data.upstream}`} ${event.data.isError ? 'isError ' : ''}${event.data.durationMs} ms ${event.data.result.bytes} B`;
    case 'ErrorReturned':
      return `${event.data.from} ${event.data.jsonrpcCode} ${event.data.errorCode ?? ''} ${event.data.message}`;
    case 'NotificationRelayed':
      return `${event.data.from} ${event.data.method}`;
    case 'RequestRejected':
      return `${event.data.errorCode} ${event.data.message}`;
    default:
      return JSON.stringify(event.data).slice(0, 160);
  }
}

const commands: Record<string, Command> = {
  gateway: {
    summary: 'run the gateway (HTTP, or one agent over stdio with --stdio)',
    usage: 'attest gateway --config FILE [--port N] [--host H] [--stdio]',
    options: { ...configOption, port: { type: 'string', short: 'p' }, host: { type: 'string' }, stdio: { type: 'boolean' } },
    run: (values) => runGateway(values, 'gateway'),
  },
  start: {
    summary: 'run every service of the embedded default in one process (today: the gateway, and the projector when readModel is configured)',
    usage: 'attest start --config FILE [--port N] [--host H]',
    options: { ...configOption, port: { type: 'string', short: 'p' }, host: { type: 'string' } },
    run: (values) => runGateway(values, 'start'),
  },
  events: {
    summary: 'print the event log (optionally one stream, optionally following new events, optionally resuming after a cursor)',
    usage: 'attest events --config FILE [--json] [--stream S] [--follow] [--after CURSOR]',
    options: { ...configOption, json: { type: 'boolean' }, stream: { type: 'string', short: 's' }, follow: { type: 'boolean', short: 'f' }, after: { type: 'string' } },
    async run(values) {
      const { config } = requireConfig(values);
      const reader = await openEventLogReader(config.log);
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const options = {
        ...(typeof values['stream'] === 'string' && { stream: values['stream'] }),
        ...(typeof values['after'] === 'string' && { after: values['after'] as LogCursor }),
        signal: controller.signal,
      };
      try {
        const events = values['follow'] === true ? reader.follow(options) : reader.read(options);
        for await (const stored of events) {
          const { event, position } = stored;
          const line = values['json'] === true
            ? JSON.stringify({ position, cursor: cursorOf(stored), event })
            : `${String(position.index).padStart(7)} ${event.occurredAt} ${event.type.padEnd(19)} ${event.stream} #${event.seq} ${summarize(event)}`;
          if (!process.stdout.write(`${line}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        }
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      } finally {
        await reader.close();
      }
      return 0;
    },
  },
  verify: {
    summary: 'verify the hash chains of the log; with --checkpoint the tree and signed checkpoints too; --bundle an exported bundle offline; exit 1 naming the first bad event or checkpoint',
    usage: [
      'attest verify --config FILE [--json]                   every hash chain of the log; with evidence.enabled, then the',
      '         tree against the log and every checkpoint of the evidence dir (as --checkpoint does, without a kept one)',
      '       attest verify --config FILE --checkpoint FILE [--origin O --key K [--key K …]] [--json]',
      '         chains, every leaf of the tree against the log, every checkpoint of the evidence dir, and that the log',
      '         is a consistent extension of FILE (a checkpoint kept from before: catches a cut tail and a rewrite);',
      '         trusted: --origin and --key when given, else the config\'s evidence origin and keys',
      '       attest verify --bundle FILE [--origin O --key K …] [--checkpoint KEPT] [--json]',
      '         an exported bundle, offline: no config, no network; without --origin/--key it trusts the keys the bundle names;',
      '         --checkpoint: one kept from before (an earlier bundle\'s latest): the bundle must hold it, same root',
    ].join('\n'),
    options: { ...configOption, json: { type: 'boolean' }, bundle: { type: 'string' }, checkpoint: { type: 'string' }, ...TRUST_OPTIONS },
    async run(values) {
      const bundle = values['bundle'];
      if (typeof bundle === 'string') {
        if (values['config'] !== undefined) throw new UsageError('--bundle verifies the bundle alone, offline: give no --config with it');
        return runVerifyBundle(bundle, values);
      }
      const { config } = requireConfig(values);
      const checkpoint = values['checkpoint'];
      if (typeof checkpoint === 'string') return runVerifyCheckpoint(config, checkpoint, values);
      const report = await verifyEventLog(config.log);
      // With the evidence tree on, a sound log is then checked against its tree and signed checkpoints.
      if (report.ok && config.evidence.enabled) {
        if (values['json'] !== true) process.stdout.write(`ok: ${report.eventsChecked} events in ${report.streams} streams: every chain verified\n`);
        return runVerifyCheckpoint(config, undefined, values);
      }
      if (values['json'] === true) process.stdout.write(`${JSON.stringify(report)}\n`);
      else if (report.ok) process.stdout.write(`ok: ${report.eventsChecked} events in ${report.streams} streams verified (${config.log.backend === 'file' ? config.log.dir : config.log.backend})\n`);
      else {
        const f = report.firstFailure;
        process.stdout.write(`FAILED after ${report.eventsChecked} good events: ${f?.reason ?? 'unknown failure'}\n`);
        if (f !== undefined) process.stdout.write(`  at index ${f.index}${f.segment === undefined ? '' : `, segment ${f.segment}, offset ${f.offset}`}${f.eventId === undefined ? '' : `, event ${f.eventId}`}${f.stream === undefined ? '' : `, stream ${f.stream}`}${f.seq === undefined ? '' : `, seq ${f.seq}`}\n`);
      }
      return report.ok ? 0 : 1;
    },
  },
  keys: {
    summary: 'API keys: `new`/`hash` offline; `issue`/`list`/`show`/`revoke` on a running gateway (cli/keys.ts)',
    usage: KEYS_USAGE,
    options: KEYS_OPTIONS,
    async run(values, positionals) {
      const action = positionals[0];
      if (action !== undefined && KEYS_ADMIN_ACTIONS.includes(action)) return runKeysAdmin(action, values, positionals.slice(1));
      if (action === 'new') {
        const key = generateApiKey();
        process.stdout.write(`key:  ${key}\nhash: ${hashApiKey(key)}\n(store the hash under auth.keys[].hash; give the key to the agent; it is not shown again)\n`);
        return 0;
      }
      if (action === 'hash') {
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        const key = Buffer.concat(chunks).toString('utf8').trim();
        // The hash of nothing is a valid-looking hash that matches no key anyone holds.
        if (key === '') throw new UsageError('hash needs the key on stdin and got nothing (empty or only whitespace): pipe it in, e.g. printf %s "$KEY" | attest keys hash');
        process.stdout.write(`${hashApiKey(key)}\n`);
        return 0;
      }
      if (action === 'note') {
        // Checkpoint signing keys (evidence, issue 12): cli/note-key.ts.
        const out = values['out'];
        return await runNoteKey(positionals[1], typeof out === 'string' ? out : undefined).catch((error: unknown) => {
          throw error instanceof NoteKeyUsageError ? new UsageError(error.message) : error;
        });
      }
      throw new UsageError('keys needs an action: new | hash | note | issue | list | show | revoke');
    },
  },
  prove: {
    summary: 'print an RFC 9162 inclusion or consistency proof from the evidence tree as JSON',
    usage: PROVE_USAGE,
    options: PROVE_OPTIONS,
    run: (values, positionals) => runProve(requireConfig(values).config, values, positionals[0]),
  },
  export: {
    summary: 'write the self-contained evidence bundle of a period (events, checkpoints, proofs, keys)',
    usage: EXPORT_USAGE,
    options: EXPORT_OPTIONS,
    run: (values) => runExport(requireConfig(values).config, values),
  },
  approvals: approvalsCommand,
  pins: pinsCommand,
  projector: projectorCommand,
};

function help(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `attest ${GATEWAY_VERSION} — the audit-first MCP gateway\n\nUsage: attest <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun "attest <command> --help" for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(`${GATEWAY_VERSION}\n`);
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`attest: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.summary}\n\nUsage: ${command.usage}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    return await command.run(values as Record<string, string | boolean | string[] | undefined>, positionals);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof PolicyError || error instanceof UsageError || error instanceof EvidenceUsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      process.stderr.write(`attest ${name}: ${(error as Error).message}\nUsage: ${command.usage}\n`);
      return 2;
    }
    process.stderr.write(`attest ${name}: ${(error as Error).message}\n`);
    return 1;
  }
}

const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
// Anything still holding the event loop after a clean shutdown must not keep the CLI alive.
setTimeout(() => process.exit(exitCode), 3000).unref();
