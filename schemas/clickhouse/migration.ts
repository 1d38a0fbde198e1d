/**
 * ClickHouse read-model migrations (docs/projector.md "Migrations"). Each is a numbered file of
 * statements applied in order at start and recorded, with a checksum of its statements, in
 * `schema_migrations`; a re-run applies only what is missing, and a recorded migration whose
 * statements changed since is refused. Statements are one per HTTP request (the server takes one
 * statement per query) and each is idempotent (`IF NOT EXISTS`), so a start interrupted inside a
 * migration re-runs it whole.
 *
 * The SQL keeps to what ClickHouse 18.16 (Debian's server, CI) and current releases both run: no
 * DateTime64, LowCardinality, Map or JSON types, no query parameters; times are a `DateTime('UTC')`
 * for partitions and day functions beside an `Int64` of epoch milliseconds for precision.
 */
export interface ClickHouseMigration {
  /** 1, 2, 3 … without gaps: the version the read model is at once this one is applied. */
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
  /** The tables it creates: a read model at an older version does not write into tables it lacks. */
  readonly tables: readonly string[];
  /**
   * The tables it creates are filled from the log: once it is applied to a read model that had
   * already projected events, the projector projects again from position zero (idempotent writes
   * make the events it had written already a no-op).
   */
  readonly reproject: boolean;
}
