/**
 * Why an evidence bundle does not verify. One stable code, a `reason` to branch on, and where the
 * first failure is — a JSON path, a leaf index and event id, or a checkpoint's size — so the message
 * names the first event or checkpoint that does not match.
 */
export type BundleFailure =
  /** Not JSON at all, or cut short. */
  | 'not-json'
  /** Another format or version. */
  | 'unsupported-format'
  /** A field missing or of the wrong type (`path` names it). */
  | 'malformed'
  /** A hash that is not the canonical base64 of 32 bytes. */
  | 'bad-hash'
  /** A verifier key that does not parse. */
  | 'bad-key'
  /** The bundle's origin is not the one the auditor trusts. */
  | 'origin-mismatch'
  /** A checkpoint refused: unknown key, bad signature, wrong origin, smaller than the one before, a fork, an inconsistent proof (`cause`). */
  | 'checkpoint'
  /** An event whose `hash` does not match its content. */
  | 'event-altered'
  /** Two events of one stream that do not chain (seq, prevHash). */
  | 'chain-broken'
  /** The leaves do not give the root a checkpoint signed. */
  | 'root-mismatch'
  /** The leaves are not proven in a signed checkpoint (the coverage proof fails or names no listed checkpoint). */
  | 'not-covered';

export interface BundleErrorWhere {
  readonly path?: string;
  readonly leafIndex?: number;
  readonly eventId?: string;
  readonly checkpointSize?: number;
}

export class BundleError extends Error {
  readonly code = 'ATTEST_BUNDLE_INVALID';
  readonly reason: BundleFailure;
  readonly where: BundleErrorWhere;
  constructor(reason: BundleFailure, message: string, options: ErrorOptions & BundleErrorWhere = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BundleError';
    this.reason = reason;
    const { cause: _cause, ...where } = options;
    this.where = where;
  }
}
