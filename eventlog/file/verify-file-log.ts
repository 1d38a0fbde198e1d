/**
 * `attest verify` for the file backend: walks the segment files itself, so damage below the event
 * level — a checksum failure, a truncated or extra record, a missing segment — is reported as the
 * first failure with its position instead of being thrown, then checks every event's hash and
 * chain like verifyLog. Read-only and lock-free: it can run beside a live writer.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LogUnavailableError } from '../port.ts';
import { ChainVerifier } from '../verify.ts';
import type { VerifyResult } from '../verify.ts';
import { diskSource } from './file-reader.ts';
import { scanLog } from './log-scanner.ts';
import { describeDefect } from './read-errors.ts';

export interface VerifyFileLogOptions {
  /**
   * A bad record at the very end may be a live writer's write in progress: look again once after
   * this delay before failing it (default 250 ms; 0 to judge the bytes as they are).
   */
  readonly tailGraceMs?: number;
}

export async function verifyFileLog(dir: string, options: VerifyFileLogOptions = {}): Promise<VerifyResult> {
  const path = resolve(dir);
  try {
    if (!(await stat(path)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (error) {
    throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `no event log at ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  const verifier = new ChainVerifier();
  for await (const item of scanLog(diskSource(path, 0), { follow: false, tail: 'strict', tailGraceMs: options.tailGraceMs ?? 250 })) {
    if (item.kind === 'event') {
      verifier.check(item.stored);
      if (verifier.settled) break;
      continue;
    }
    const { defect } = item;
    verifier.damaged({
      index: defect.index,
      ...(defect.claimed.eventId === undefined ? {} : { eventId: defect.claimed.eventId }),
      ...(defect.claimed.stream === undefined ? {} : { stream: defect.claimed.stream }),
      ...(defect.claimed.seq === undefined ? {} : { seq: defect.claimed.seq }),
      segment: defect.segment,
      offset: defect.offset,
      reason: describeDefect(defect),
    });
    break;
  }
  return verifier.result();
}
