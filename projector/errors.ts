/**
 * Errors of the projector and its read models, with stable string codes:
 *   ATTEST_READMODEL_UNAVAILABLE  the read model's server refused or did not answer
 *   ATTEST_READMODEL_MIGRATION    the read model's schema cannot be brought to this version
 *   ATTEST_READMODEL_NOT_MIGRATED the read model's database or tables do not exist yet (nothing migrated it)
 */
export type ReadModelErrorCode = 'ATTEST_READMODEL_UNAVAILABLE' | 'ATTEST_READMODEL_MIGRATION' | 'ATTEST_READMODEL_NOT_MIGRATED';

export class ReadModelError extends Error {
  readonly code: ReadModelErrorCode;
  constructor(code: ReadModelErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ReadModelError';
    this.code = code;
  }
}
