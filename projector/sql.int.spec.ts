/**
 * The one escaping function, against the real ClickHouse server (18.16 in CI): hostile strings come
 * back byte for byte as the literal's value, and cannot end the literal to run SQL of their own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sqlIdentifier, sqlNumber, sqlString, sqlStringList } from './sql.ts';
import { clickhouseQuery, testDatabase } from './spec-support.ts';

const HOSTILE = [
  "'",
  "''",
  "\\'",
  '\\',
  "it's",
  "'; DROP TABLE victims; --",
  "x' OR '1'='1",
  "\\'; DROP TABLE victims; --",
  'a\u0000b',
  '\u0000',
  'line\nbreak\r\ttab\bback\fform',
  'ünïcødé ✓ 🦀 日本語',
  '\u202eright-to-left',
  '`backtick` "double"',
  '{name:String}',
  '$1 ? :x',
  '',
];

describe('sqlString on the real ClickHouse', () => {
  it('gives back every hostile string exactly, byte for byte', { timeout: 60_000 }, async (t) => {
    const { url } = await testDatabase(t);
    for (const value of HOSTILE) {
      const out = await clickhouseQuery(url, `SELECT ${sqlString(value)} AS s, hex(s) AS h FORMAT JSONEachRow`);
      const row = JSON.parse(out) as { s: string; h: string };
      assert.equal(row.s, value, `value of ${JSON.stringify(value)}`);
      assert.equal(row.h, Buffer.from(value, 'utf8').toString('hex').toUpperCase(), `bytes of ${JSON.stringify(value)}`);
    }
  });

  it('keeps an injection attempt inside the literal: the table is still there and matched nothing', { timeout: 60_000 }, async (t) => {
    const { url, database } = await testDatabase(t);
    await clickhouseQuery(url, `CREATE DATABASE ${database}`);
    await clickhouseQuery(url, `CREATE TABLE ${database}.victims (name String) ENGINE = MergeTree ORDER BY name`);
    await clickhouseQuery(url, `INSERT INTO ${database}.victims VALUES ('alice'), ('bob')`);
    for (const value of HOSTILE) {
      const out = await clickhouseQuery(url, `SELECT count() AS n FROM ${database}.victims WHERE name = ${sqlString(value)} OR name IN ${sqlStringList([value, 'nobody'])} FORMAT JSONEachRow`);
      assert.deepEqual(JSON.parse(out), { n: '0' }, JSON.stringify(value));
    }
    assert.equal(await clickhouseQuery(url, `SELECT count() FROM ${database}.victims`), '2\n');
    // The same attempt without escaping does break out of the literal: the test could fail.
    await assert.rejects(clickhouseQuery(url, `SELECT count() FROM ${database}.victims WHERE name = '${"x' OR '1'='1"}' FORMAT TSV`).then((n) => assert.equal(n, '0\n')));
  });
});

describe('sql literals', () => {
  it('refuse what is not a finite number, a plain identifier or a non-empty list', () => {
    assert.equal(sqlNumber(42), '42');
    assert.equal(sqlNumber(-1.5), '-1.5');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => sqlNumber(bad), /finite/);
    assert.equal(sqlIdentifier('attest_1'), '`attest_1`');
    for (const bad of ['a`b', 'a b', '1abc', '', 'x;DROP', 'db.table']) assert.throws(() => sqlIdentifier(bad), /identifier/);
    assert.throws(() => sqlStringList([]), /empty/);
    assert.equal(sqlStringList(['a', "b'"]), "('a', 'b\\'')");
  });
});
