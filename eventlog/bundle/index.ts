/**
 * Evidence bundles (docs/evidence.md): the format and its offline verifier. The verifier imports
 * only the Merkle library (../merkle) and the canonical JSON of #schemas — never the log, the
 * gateway or the configuration — so it is small enough for an auditor to read and run alone.
 */
export { BUNDLE_FORMAT, parseBundle } from './bundle-format.ts';
export type { BundleCheckpoint, BundleLeaf, EvidenceBundle } from './bundle-format.ts';
export { BundleError } from './bundle-error.ts';
export type { BundleErrorWhere, BundleFailure } from './bundle-error.ts';
export { verifyBundle } from './verify-bundle.ts';
export type { BundleReport, BundleTrust } from './verify-bundle.ts';
