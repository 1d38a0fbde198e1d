/**
 * `attest projector status`: where the projector is, how far behind the log's head (events, and
 * seconds: the age of the oldest event not projected yet), what it quarantined, its errors.
 */
import type { EventLogReader } from '#eventlog';
import type { Checkpoint, ProjectorErrorRecord, QuarantinedRecord, ReadModel } from './port.ts';

export interface ProjectorStatus {
  readonly readModel: string;
  readonly checkpoint: Checkpoint;
  /** Records in the log (the index the next one takes). */
  readonly logSize: number;
  readonly lagEvents: number;
  /** 0 when nothing is behind. */
  readonly lagSeconds: number;
  readonly quarantined: number;
  readonly recentQuarantined: readonly QuarantinedRecord[];
  readonly errors: number;
  readonly recentErrors: readonly ProjectorErrorRecord[];
}

async function oldestUnprojectedMs(reader: EventLogReader, checkpoint: Checkpoint): Promise<number | undefined> {
  const controller = new AbortController();
  try {
    for await (const entry of reader.entries({ ...(checkpoint.cursor !== undefined && { after: checkpoint.cursor }), signal: controller.signal })) {
      if (entry.event !== undefined) return Date.parse(entry.event.occurredAt);
    }
    return undefined;
  } finally {
    controller.abort();
  }
}

export async function projectorStatus(model: ReadModel, reader: EventLogReader, now = Date.now()): Promise<ProjectorStatus> {
  const [readModel, checkpoint, quarantine, errors, logSize] = await Promise.all([model.describe(), model.checkpoint(), model.quarantined(5), model.errors(5), reader.size()]);
  const lagEvents = Math.max(0, logSize - checkpoint.processed);
  const oldest = lagEvents === 0 ? undefined : await oldestUnprojectedMs(reader, checkpoint);
  return {
    readModel,
    checkpoint,
    logSize,
    lagEvents,
    lagSeconds: oldest === undefined ? 0 : Math.max(0, (now - oldest) / 1000),
    quarantined: quarantine.count,
    recentQuarantined: quarantine.recent,
    errors: errors.count,
    recentErrors: errors.recent,
  };
}

export function formatStatus(status: ProjectorStatus): string {
  const { checkpoint } = status;
  const lines = [
    `read model:  ${status.readModel}`,
    `position:    ${checkpoint.cursor === undefined ? 'nothing projected yet' : `index ${checkpoint.index} (cursor ${checkpoint.cursor})`}`,
    `projected:   ${checkpoint.processed} of ${status.logSize} records${checkpoint.updatedAtMs === 0 ? '' : `, checkpoint written ${new Date(checkpoint.updatedAtMs).toISOString()}`}`,
    `lag:         ${status.lagEvents} events, ${status.lagSeconds.toFixed(1)} s behind the head`,
    `quarantined: ${status.quarantined}`,
    ...status.recentQuarantined.map((q) => `  index ${q.index} ${q.type} (${q.problem}): ${q.reason}`),
    `errors:      ${status.errors}`,
    ...status.recentErrors.map((e) => `  ${new Date(e.atMs).toISOString()} ${e.code}: ${e.message}`),
  ];
  return `${lines.join('\n')}\n`;
}
