/**
 * Errors of the projector and its read models, with stable string codes:
 *   ATTEST_READMODEL_UNAVAILABLE  the read model's server refused or did not answer
 *   ATTEST_READMODEL_MIGRATION    the read model's schema cannot be brought to this version
 */
export type ReadModelErrorCode = 'ATTEST_READMODEL_UNAVAILABLE' | 'ATTEST_READMODEL_MIGRATION';

export class ReadModelError extends Error {
  readonly code: ReadModelErrorCode;
  constructor(code: ReadModelErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ReadModelError';
    this.code = code;
  }
}
