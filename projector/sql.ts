/**
 * The one way a value reaches ClickHouse SQL text (docs/projector.md "Queries"). ClickHouse 18.16
 * has no server-side query parameters, so every literal of every query goes through these: a
 * string is quoted and escaped (backslash, quote, and the control characters ClickHouse's lexer
 * reads as escapes), a number must be finite, a name must match a plain identifier. Rows are never
 * spliced into SQL: they travel as JSONEachRow data.
 */

const ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};
const NEEDS_ESCAPE = /[\\'\0\b\f\n\r\t]/g;

/** A single-quoted ClickHouse string literal whose value is exactly `value`, whatever it holds. */
export function sqlString(value: string): string {
  return `'${value.replace(NEEDS_ESCAPE, (ch) => ESCAPES[ch] ?? ch)}'`;
}

/** A numeric literal; anything but a finite number is a bug of the caller, refused. */
export function sqlNumber(value: number): string {
  if (!Number.isFinite(value)) throw new TypeError(`not a finite number for SQL: ${String(value)}`);
  return String(value);
}

/** `(a, b, c)` of string literals, for `IN`; empty lists are the caller's to avoid (SQL has no `IN ()`). */
export function sqlStringList(values: Iterable<string>): string {
  const items = [...values].map(sqlString);
  if (items.length === 0) throw new TypeError('an empty IN list');
  return `(${items.join(', ')})`;
}

const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/;

/** A database or table name, back-quoted; only plain identifiers are accepted (the config checks the same). */
export function sqlIdentifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new TypeError(`not a plain identifier: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}
