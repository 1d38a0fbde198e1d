/**
 * `attest projector --config FILE`: projects the configured log into the configured read model
 * from its checkpoint and follows it live until SIGINT/SIGTERM (the batch being written is
 * finished and checkpointed first). `attest projector status --config FILE`: position, lag and
 * errors (docs/projector.md).
 */
import type { ParseArgsConfig } from 'node:util';
import { ConfigError } from '#schemas';
import type { AttestConfig, LogConfig, ReadModelConfig } from '#schemas';
import { openEventLogReader } from '#eventlog';
import type { EventLogReader } from '#eventlog';
import { createLogger } from '#gateway';
import type { ProjectorMetricsSource } from '#gateway';
import { formatStatus, openReadModel, Projector, projectorStatus } from '#projector';
import type { ProjectorLogger } from '#projector';
import { loadConfigFile } from './config-file.ts';

const USAGE = 'attest projector --config FILE\n       attest projector status --config FILE [--json]';

const options: NonNullable<ParseArgsConfig['options']> = { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } };

function loadReadModelConfig(values: Record<string, string | boolean | undefined>): { config: AttestConfig; readModel: ReadModelConfig } {
  const file = values['config'];
  if (typeof file !== 'string') throw new ConfigError('--config FILE is required');
  const { config } = loadConfigFile(file);
  if (config.readModel === undefined) throw new ConfigError(`invalid config:\nreadModel: is required by attest projector (backend: clickhouse, url, database, user, password) — see docs/projector.md`);
  return { config, readModel: config.readModel };
}

function logName(config: AttestConfig): string {
  switch (config.log.backend) {
    case 'file':
      return `file log ${config.log.dir}`;
    case 'kafka':
      return `Kafka topic ${config.log.topic}`;
    case 'kurrent':
      return `KurrentDB streams ${config.log.streamPrefix}*`;
  }
}

async function status(values: Record<string, string | boolean | undefined>): Promise<number> {
  const { config, readModel } = loadReadModelConfig(values);
  const model = openReadModel(readModel);
  const reader = await openEventLogReader(config.log);
  try {
    const report = await projectorStatus(model, reader);
    process.stdout.write(values['json'] === true ? `${JSON.stringify(report)}\n` : formatStatus(report));
    return 0;
  } finally {
    await reader.close();
    await model.close();
  }
}

async function run(values: Record<string, string | boolean | undefined>): Promise<number> {
  const { config, readModel } = loadReadModelConfig(values);
  const logger = createLogger();
  const controller = new AbortController();
  const stop = (signal: string) => (): void => {
    if (!controller.signal.aborted) logger.info({ signal }, 'projector stopping after the batch in progress');
    controller.abort();
  };
  process.on('SIGINT', stop('SIGINT'));
  process.on('SIGTERM', stop('SIGTERM'));
  const model = openReadModel(readModel);
  try {
    const migrated = await model.migrate();
    if (migrated.applied.length > 0) logger.info({ applied: migrated.applied, version: migrated.version, reproject: migrated.reproject }, 'read model migrated');
    const reader = await openEventLogReader(config.log);
    try {
      const projector = new Projector(reader, model, { batchEvents: readModel.batchEvents, flushMs: readModel.flushMs, logger });
      const from = await model.checkpoint();
      // One line on stdout for scripts and tests that start the projector and wait for it.
      process.stdout.write(`attest projector following the ${logName(config)} into ${await model.describe()} from ${from.cursor === undefined ? 'the start' : `index ${from.index}`}\n`);
      const stats = await projector.run(controller.signal);
      logger.info({ batches: stats.batches, events: stats.events, quarantined: stats.quarantined, errors: stats.errors, index: stats.checkpoint.index }, 'projector stopped');
    } finally {
      await reader.close();
    }
  } finally {
    await model.close();
  }
  return 0;
}

export interface ProjectorBeside {
  /** Stops following the live log (the batch in progress is written and checkpointed first). */
  stop(): Promise<void>;
  /** Once the gateway closed its log: projects what it wrote last (its SessionClosed, GatewayStopped), then closes the read model. */
  finish(): Promise<void>;
  /** The live projector's numbers, for the gateway's /metrics. */
  metrics(): ProjectorMetricsSource;
}

/**
 * `attest start` with a readModel section: the projector in the gateway's process, following the
 * gateway's own log (no polling). The read model is migrated before the gateway serves; a read
 * model that cannot be reached then is a start-up error, like a log that cannot be opened.
 */
export async function projectBeside(readModel: ReadModelConfig, log: EventLogReader, logConfig: LogConfig, logger: ProjectorLogger): Promise<ProjectorBeside> {
  const model = openReadModel(readModel);
  const options = { batchEvents: readModel.batchEvents, flushMs: readModel.flushMs, logger };
  try {
    await model.migrate();
  } catch (error) {
    await model.close();
    throw error;
  }
  const controller = new AbortController();
  const projector = new Projector(log, model, options);
  const running = projector.run(controller.signal);
  return {
    metrics() {
      const { events, batches, quarantined, errorsByCode, checkpoint } = projector.stats;
      return { events, batches, quarantined, errorsByCode, processed: checkpoint.processed, oldestUnwrittenMs: projector.oldestUnwrittenMs, checkpointAtMs: checkpoint.updatedAtMs };
    },
    async stop() {
      controller.abort();
      await running;
    },
    async finish() {
      try {
        const reader = await openEventLogReader(logConfig);
        try {
          await new Projector(reader, model, options).catchUp();
        } finally {
          await reader.close();
        }
      } catch (error) {
        logger.error({ err: error }, 'the projector could not project the last events of the stopped gateway; the next start projects them');
      } finally {
        await model.close();
      }
    },
  };
}

export const projectorCommand = {
  summary: 'project the event log into the read model (ClickHouse) and follow it; `status` shows position, lag and errors',
  usage: USAGE,
  options,
  async run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number> {
    const action = positionals[0];
    if (action === undefined) return run(values);
    if (action === 'status') return status(values);
    throw new ConfigError(`unknown projector action "${action}": use no action (run) or status\nUsage: ${USAGE}`);
  },
};
