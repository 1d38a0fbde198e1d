/**
 * Strings a client controls (Host, User-Agent, the path, the method, messages that echo input) are
 * recorded cut to a documented length (docs/events.md "Capped strings"), so one request cannot put
 * kilobytes into the log. The original's length and digest are kept in the event's `truncated`.
 */
import { sha256Hex } from '#schemas';

/** The longest value recorded per field, in UTF-16 code units. */
export const RECORDED_TEXT_LIMITS = Object.freeze({
  message: 512,
  path: 256,
  method: 128,
  host: 256,
  userAgent: 256,
  sessionId: 128,
  remoteAddress: 64,
});
export type CappedField = keyof typeof RECORDED_TEXT_LIMITS;

export type Truncations = Record<string, { readonly length: number; readonly digest: `sha256:${string}` }>;

/** `value` as recorded in `field`; when cut, notes the original's length and digest in `truncated`. */
export function capText(field: CappedField, value: string, truncated: Truncations): string {
  const limit = RECORDED_TEXT_LIMITS[field];
  if (value.length <= limit) return value;
  truncated[field] = { length: value.length, digest: `sha256:${sha256Hex(value)}` };
  // Never half a surrogate pair: canonical JSON has no form for a lone surrogate.
  const code = value.charCodeAt(limit - 1);
  return value.slice(0, code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit);
}
