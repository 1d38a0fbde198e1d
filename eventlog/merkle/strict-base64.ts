/**
 * Standard base64 (RFC 4648 §4) decoded strictly: Buffer.from(…, 'base64') skips characters it
 * does not know, accepts the URL alphabet and missing padding, so a mangled key or signature
 * could decode to something. Here only the canonical encoding of some bytes decodes.
 */
const CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes `text` is the canonical base64 of, or undefined. */
export function decodeBase64(text: string): Buffer | undefined {
  if (!CANONICAL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Non-zero padding bits would decode too; the canonical form has them zero.
  return bytes.toString('base64') === text ? bytes : undefined;
}
