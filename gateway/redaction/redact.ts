/**
 * Redaction of personal data and secrets in recorded payloads (data policy `redacted`).
 *
 * Walks a JSON value: strings (and integers that look like card numbers) are scanned, object keys
 * are left alone, and every match is replaced by a typed placeholder (`[email]`, `[card]` …). The
 * caller gets the masked copy and how many matches of each kind were masked.
 *
 * Written here rather than taken from npm: the libraries looked at (@arcjet/redact — async WASM per
 * string; redact-pii / @dawn-analytics/redact-pii, @cdssnc/sanitize-pii — regex only, no Luhn or
 * mod-97 check, no key prefixes or entropy test; @openredaction/openredaction — hundreds of patterns
 * and document/OCR features far beyond a hot-path masker) either do not validate candidates (and so
 * mask order numbers) or cost far more per string than one pass of one regular expression.
 *
 * One pass per string: a single global regex with one named group per kind; every
 * quantifier is bounded, so the scan stays linear in the string's length. Candidates whose kind has
 * a checksum (card: Luhn, IBAN: ISO 13616 mod 97) or a statistical test (long tokens: Shannon
 * entropy) are only masked when they pass it.
 */

export type RedactionKind = 'email' | 'phone' | 'card' | 'iban' | 'jwt' | 'bearer' | 'apiKey' | 'highEntropy';
export type RedactionCounts = Partial<Record<RedactionKind, number>>;

export const PLACEHOLDERS: Readonly<Record<RedactionKind, string>> = Object.freeze({
  email: '[email]',
  phone: '[phone]',
  card: '[card]',
  iban: '[iban]',
  jwt: '[jwt]',
  bearer: 'Bearer [token]',
  apiKey: '[api-key]',
  highEntropy: '[secret]',
});

// Order matters: at one position the first alternative that matches wins.
const ALTERNATIVES = [
  // header.payload.signature, both JSON parts base64url of "{"
  String.raw`(?<jwt>(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,4096}\.eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{0,4096})`,
  String.raw`(?<bearer>\b[Bb]earer[ \t]+[A-Za-z0-9._~+/-]{8,4096}=*)`,
  // OpenAI/Anthropic sk-, GitHub ghp_/gho_/ghu_/ghs_/ghr_/github_pat_, Slack xox?-, Attest's own atk_, AWS access key ids
  String.raw`(?<apiKey>(?<![A-Za-z0-9_-])(?:sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,512}|gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255}|xox[abposr]-[A-Za-z0-9-]{10,255}|atk_[A-Za-z0-9_-]{12,255}|(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9_-]))`,
  String.raw`(?<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]))`,
  String.raw`(?<iban>(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9]))`,
  String.raw`(?<card>(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9]))`,
  // +international; (area) local; NANP 555-123-4567; trunk-0 national with a separator
  String.raw`(?<phone>(?<![\w+])(?:\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?)?(?:[ .-]?[0-9]{2,5}){1,5}|\([0-9]{2,4}\)[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}|[0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}|0[0-9]{1,4}(?:[ /-][0-9]{2,8}){1,4})(?![\w]))`,
  String.raw`(?<highEntropy>(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,512}={0,2}(?![A-Za-z0-9+/_=-]))`,
];

const KINDS: readonly RedactionKind[] = ['jwt', 'bearer', 'apiKey', 'email', 'iban', 'card', 'phone', 'highEntropy'];

/** Strings shorter than this cannot hold any kind (the shortest: a 9-digit phone with a separator). */
const MIN_CANDIDATE = 6;
/** Bits per character a long token must reach to count as a secret (random base64 ≈ 4.7–5, English and paths < 4.2, hex ≤ 4). */
const MIN_ENTROPY = 4.3;

/**
 * The e-mail and long-token alternatives cost the most per byte scanned (they are tried at the start
 * of every word) and can only match when the string holds an "@" / a run of 32 token characters, so
 * four variants of the one regex are built, and each string is scanned with the smallest that can
 * match it. Each variant is a fresh RegExp per call of redactValue (lastIndex is state).
 */
const EMAIL_ALTERNATIVE = 3;
const ENTROPY_ALTERNATIVE = 7;
function variantSource(withEmail: boolean, withEntropy: boolean): string {
  return ALTERNATIVES.filter((_, i) => (i !== EMAIL_ALTERNATIVE || withEmail) && (i !== ENTROPY_ALTERNATIVE || withEntropy)).join('|');
}
const SOURCES = [variantSource(false, false), variantSource(true, false), variantSource(false, true), variantSource(true, true)] as const;
type Scanners = (RegExp | undefined)[];

function scannerFor(text: string, scanners: Scanners): RegExp {
  const index = (text.includes('@') ? 1 : 0) + (hasLongTokenRun(text) ? 2 : 0);
  let re = scanners[index];
  if (re === undefined) {
    re = new RegExp(SOURCES[index] ?? '', 'g');
    scanners[index] = re;
  }
  return re;
}

/** Whether `text` holds 32 consecutive base64/base64url characters (what the long-token kind needs). */
function hasLongTokenRun(text: string): boolean {
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const token = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 95 || c === 45;
    if (!token) run = 0;
    else if (++run >= 32) return true;
  }
  return false;
}

export interface Redacted<T = unknown> {
  readonly value: T;
  readonly counts: RedactionCounts;
  /** Total matches masked. */
  readonly total: number;
}

/** A masked copy of a JSON value and what was masked. The input is not modified. */
export function redactValue(value: unknown): Redacted {
  const counts: RedactionCounts = {};
  const state = { total: 0 };
  const out = walk(value, counts, state, []);
  return { value: out, counts, total: state.total };
}

/** Redacts one string. */
export function redactString(text: string): Redacted<string> {
  const counts: RedactionCounts = {};
  const state = { total: 0 };
  const out = scan(text, counts, state, []);
  return { value: out, counts, total: state.total };
}

function walk(value: unknown, counts: RedactionCounts, state: { total: number }, scanners: Scanners): unknown {
  if (typeof value === 'string') return scan(value, counts, state, scanners);
  if (typeof value === 'number') {
    // A card number sent as a JSON number.
    if (Number.isSafeInteger(value) && value >= 1e12 && luhn(String(value))) {
      count(counts, state, 'card');
      return PLACEHOLDERS.card;
    }
    return value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const masked = walk(item, counts, state, scanners);
      if (masked !== item) {
        copy ??= value.slice();
        copy[i] = masked;
      }
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    const masked = walk(item, counts, state, scanners);
    if (masked !== item) {
      copy ??= { ...record };
      copy[key] = masked;
    }
  }
  return copy ?? value;
}

function scan(text: string, counts: RedactionCounts, state: { total: number }, scanners: Scanners): string {
  if (text.length < MIN_CANDIDATE) return text;
  const re = scannerFor(text, scanners);
  re.lastIndex = 0;
  let out: string[] | undefined;
  let from = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) {
    const groups = match.groups ?? {};
    let kind: RedactionKind | undefined;
    for (const k of KINDS) {
      if (groups[k] !== undefined) {
        kind = k;
        break;
      }
    }
    const found = match[0];
    let end = match.index + found.length;
    let accepted = kind !== undefined && accept(kind, found);
    if (!accepted && kind === 'iban') {
      // A spaced IBAN followed by more capitals ("… 0130 00 AND"): retry without the trailing groups.
      const shorter = shortestValidIban(found);
      if (shorter !== undefined) {
        end = match.index + shorter;
        accepted = true;
      }
    }
    if (!accepted || kind === undefined) {
      // Let another kind try from the next character (a failed card may still hold a phone …).
      re.lastIndex = match.index + 1;
      continue;
    }
    out ??= [];
    out.push(text.slice(from, match.index), PLACEHOLDERS[kind]);
    from = end;
    re.lastIndex = end;
    count(counts, state, kind);
  }
  if (out === undefined) return text;
  out.push(text.slice(from));
  return out.join('');
}

function count(counts: RedactionCounts, state: { total: number }, kind: RedactionKind): void {
  counts[kind] = (counts[kind] ?? 0) + 1;
  state.total++;
}

function accept(kind: RedactionKind, found: string): boolean {
  switch (kind) {
    case 'card': {
      const digits = found.replace(/[ -]/g, '');
      return digits.length >= 13 && digits.length <= 19 && luhn(digits);
    }
    case 'iban':
      return ibanValid(found.replace(/ /g, ''));
    case 'phone': {
      const digits = countDigits(found);
      return digits >= 9 && digits <= 15;
    }
    case 'highEntropy':
      return looksRandom(found);
    default:
      return true;
  }
}

function countDigits(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

/** Luhn (ISO/IEC 7812-1) check over a string of digits. */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 must be 1. */
export function ibanValid(iban: string): boolean {
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) remainder = (remainder * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) remainder = (remainder * 100 + (c - 55)) % 97;
    else return false;
  }
  return remainder === 1;
}

function shortestValidIban(found: string): number | undefined {
  let cut = found.lastIndexOf(' ');
  while (cut > 0) {
    if (ibanValid(found.slice(0, cut).replace(/ /g, ''))) return cut;
    cut = found.lastIndexOf(' ', cut - 1);
  }
  return undefined;
}

/** Long tokens count as secrets when they mix letters and digits and their characters are close to uniformly random. */
function looksRandom(token: string): boolean {
  let letters = 0;
  let digits = 0;
  const freq = new Map<number, number>();
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) letters++;
    freq.set(c, (freq.get(c) ?? 0) + 1);
  }
  if (letters === 0 || digits === 0) return false;
  let entropy = 0;
  for (const n of freq.values()) {
    const p = n / token.length;
    entropy -= p * Math.log2(p);
  }
  return entropy >= MIN_ENTROPY;
}
