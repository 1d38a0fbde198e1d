/**
 * `ATTEST_EVIDENCE_INVALID`: a checkpoint file, the tree or the log does not support what was asked
 * (a checkpoint that does not verify, an export the log and tree disagree on, a period no checkpoint
 * covers yet). `ATTEST_EVIDENCE_NOT_FOUND`: an event id or index the log does not hold.
 */
export type EvidenceErrorCode = 'ATTEST_EVIDENCE_INVALID' | 'ATTEST_EVIDENCE_NOT_FOUND';

export class EvidenceError extends Error {
  readonly code: EvidenceErrorCode;
  constructor(code: EvidenceErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EvidenceError';
    this.code = code;
  }
}
