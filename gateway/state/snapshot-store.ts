/**
 * Snapshots of the gateway's state on disk (`state.dir`): one JSON file per snapshot, named after
 * the number of log records it folded (`snapshot-00000000000000120000.json`), written atomically
 * (temporary file, fsync, rename, fsync of the directory) and checked on load: its own SHA-256,
 * its format, the instance and the log it was taken of. A snapshot that fails any check is
 * skipped with the reason (an older one, or the whole log, is read instead) — never trusted.
 * The log itself checks the snapshot's cursor when it resumes (ATTEST_CURSOR_INVALID).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { LogConfig } from '#schemas';
import type { GatewayStateJson } from './gateway-state.ts';
import { writeFileDurably } from '../durable-file.ts';

export const SNAPSHOT_FORMAT = 'attest-gateway-snapshot/1';
const NAME = /^snapshot-(\d{20})\.json$/;

export interface SnapshotFile {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly instance: string;
  /** Which log it folded: `file:<dir>`, `kafka:<topic>`, `kurrent:<stream prefix>`. */
  readonly log: string;
  readonly gatewayVersion: string;
  readonly takenAt: string;
  /** SHA-256 (hex) of `JSON.stringify(body)`. */
  readonly sha256: string;
  readonly body: GatewayStateJson;
}

export function logIdentity(config: LogConfig): string {
  switch (config.backend) {
    case 'file':
      return `file:${path.resolve(config.dir)}`;
    case 'kafka':
      return `kafka:${config.topic}`;
    case 'kurrent':
      return `kurrent:${config.streamPrefix}`;
  }
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export interface SnapshotStoreOptions {
  readonly dir: string;
  readonly instance: string;
  readonly log: LogConfig;
  readonly gatewayVersion: string;
  /** Snapshots kept (the newest); older ones are removed after a write. */
  readonly keep?: number;
}

export interface LoadedSnapshot {
  readonly file: string;
  readonly body: GatewayStateJson;
}

export class SnapshotStore {
  readonly dir: string;
  readonly #options: SnapshotStoreOptions;

  constructor(options: SnapshotStoreOptions) {
    this.dir = options.dir;
    this.#options = options;
  }

  /** The newest snapshot that passes every check, and why the newer ones (if any) did not. */
  async latest(): Promise<{ readonly snapshot: LoadedSnapshot | undefined; readonly skipped: readonly string[] }> {
    const skipped: string[] = [];
    for (const name of await this.#names()) {
      const file = path.join(this.dir, name);
      try {
        return { snapshot: { file, body: this.#check(JSON.parse(await readFile(file, 'utf8')) as Partial<SnapshotFile>) }, skipped };
      } catch (error) {
        skipped.push(`${file}: ${(error as Error).message}`);
      }
    }
    return { snapshot: undefined, skipped };
  }

  /** Writes a snapshot atomically, then removes all but the newest `keep`. */
  async write(body: GatewayStateJson): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const text = JSON.stringify(body);
    const snapshot: SnapshotFile = {
      format: SNAPSHOT_FORMAT,
      instance: this.#options.instance,
      log: logIdentity(this.#options.log),
      gatewayVersion: this.#options.gatewayVersion,
      takenAt: new Date().toISOString(),
      sha256: sha256(text),
      body,
    };
    const file = path.join(this.dir, `snapshot-${String(body.size).padStart(20, '0')}.json`);
    await writeFileDurably(file, JSON.stringify(snapshot));
    for (const name of (await this.#names()).slice(this.#options.keep ?? 2)) await rm(path.join(this.dir, name), { force: true });
    return file;
  }

  /** Snapshot file names, newest (most records) first. */
  async #names(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names.filter((name) => NAME.test(name)).sort().reverse();
  }

  #check(file: Partial<SnapshotFile>): GatewayStateJson {
    if (file.format !== SNAPSHOT_FORMAT) throw new Error(`format ${JSON.stringify(file.format)}, expected ${SNAPSHOT_FORMAT}`);
    if (file.instance !== this.#options.instance) throw new Error(`taken by instance "${String(file.instance)}", this is "${this.#options.instance}"`);
    const log = logIdentity(this.#options.log);
    if (file.log !== log) throw new Error(`taken of log ${String(file.log)}, this gateway writes ${log}`);
    if (file.body === undefined || file.sha256 !== sha256(JSON.stringify(file.body))) throw new Error('its SHA-256 does not match its content (damaged)');
    return file.body;
  }
}
