//! The registry database's schema, once per database: each list is append only (never edit or
//! reorder an entry). SQLite counts the migrations that ran in `PRAGMA user_version`;
//! PostgreSQL in the one row of `webcpm_schema`, under an advisory lock so that replicas that
//! start together migrate once. A database written by a newer webcpm (more migrations than this
//! one knows) is refused rather than misread.
//!
//! Both schemas hold the same tables with the same columns (see `mod.rs`); PostgreSQL's use
//! `BIGINT` for every integer (flags are 0 and 1, as in SQLite) and `DOUBLE PRECISION` for reals,
//! so that a statement reads the same values from either.

use super::sql::{Conn, Dialect, SqlError, args};

pub(super) const SQLITE: &[&str] = &[
    "
CREATE TABLE packages (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE TABLE versions (
    package       TEXT NOT NULL REFERENCES packages(name) ON DELETE CASCADE,
    version       TEXT NOT NULL,
    major         INTEGER NOT NULL,
    minor         INTEGER NOT NULL,
    patch         INTEGER NOT NULL,
    pre           TEXT NOT NULL,
    archived      INTEGER NOT NULL DEFAULT 0,
    published_at  INTEGER NOT NULL,
    v2_sha256     TEXT NOT NULL,
    v2_size       INTEGER NOT NULL,
    v2_manifest   TEXT NOT NULL,
    v3_sha256     TEXT NOT NULL,
    v3_size       INTEGER NOT NULL,
    v3_manifest   TEXT NOT NULL,
    only_format   TEXT CHECK (only_format IN ('v2', 'v3')),
    PRIMARY KEY (package, version)
) STRICT;
",
    "
CREATE TABLE policy_changes (
    version      INTEGER PRIMARY KEY NOT NULL,
    v3_percent   INTEGER NOT NULL CHECK (v3_percent BETWEEN 0 AND 100),
    packages     TEXT NOT NULL,
    rolled_back  INTEGER NOT NULL,
    halted       INTEGER NOT NULL,
    action       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           INTEGER NOT NULL
) STRICT;
CREATE TABLE automation (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    action       TEXT NOT NULL CHECK (action IN ('off', 'halt', 'rollback')),
    min_samples  INTEGER NOT NULL,
    threshold    REAL NOT NULL,
    window_secs  INTEGER NOT NULL
) STRICT;
CREATE TABLE reports (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    client       TEXT NOT NULL,
    package      TEXT NOT NULL,
    version      TEXT NOT NULL,
    format       TEXT NOT NULL CHECK (format IN ('v2', 'v3')),
    phase        TEXT NOT NULL,
    ok           INTEGER NOT NULL,
    error_class  TEXT,
    bucket       INTEGER NOT NULL
) STRICT;
CREATE INDEX reports_by_time ON reports(received_at, package);
",
    "
CREATE TABLE tokens (
    sha256      TEXT PRIMARY KEY NOT NULL,
    namespace   TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
ALTER TABLE versions ADD COLUMN description TEXT;
",
    "
CREATE TABLE report_tokens (
    sha256      TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
ALTER TABLE reports ADD COLUMN token TEXT NOT NULL DEFAULT '';
CREATE INDEX reports_by_client ON reports(token, client, received_at);
",
    "
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY NOT NULL,
    namespace   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    total       INTEGER,
    chunks      TEXT NOT NULL
) STRICT;
",
    "
ALTER TABLE versions ADD COLUMN readme TEXT;
ALTER TABLE versions ADD COLUMN requests TEXT;
ALTER TABLE versions ADD COLUMN archived_reason TEXT;
",
    "
ALTER TABLE versions ADD COLUMN published_by TEXT;
ALTER TABLE tokens ADD COLUMN user_name TEXT;
",
];

pub(super) const POSTGRES: &[&str] = &[
    "
CREATE TABLE packages (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE versions (
    package       TEXT NOT NULL REFERENCES packages(name) ON DELETE CASCADE,
    version       TEXT NOT NULL,
    major         BIGINT NOT NULL,
    minor         BIGINT NOT NULL,
    patch         BIGINT NOT NULL,
    pre           TEXT NOT NULL,
    archived      BIGINT NOT NULL DEFAULT 0,
    published_at  BIGINT NOT NULL,
    v2_sha256     TEXT NOT NULL,
    v2_size       BIGINT NOT NULL,
    v2_manifest   TEXT NOT NULL,
    v3_sha256     TEXT NOT NULL,
    v3_size       BIGINT NOT NULL,
    v3_manifest   TEXT NOT NULL,
    only_format   TEXT CHECK (only_format IN ('v2', 'v3')),
    description   TEXT,
    PRIMARY KEY (package, version)
);
CREATE INDEX versions_v2_sha256 ON versions(v2_sha256);
CREATE INDEX versions_v3_sha256 ON versions(v3_sha256);
CREATE TABLE policy_changes (
    version      BIGINT PRIMARY KEY NOT NULL,
    v3_percent   BIGINT NOT NULL CHECK (v3_percent BETWEEN 0 AND 100),
    packages     TEXT NOT NULL,
    rolled_back  BIGINT NOT NULL,
    halted       BIGINT NOT NULL,
    action       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE TABLE automation (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    action       TEXT NOT NULL CHECK (action IN ('off', 'halt', 'rollback')),
    min_samples  BIGINT NOT NULL,
    threshold    DOUBLE PRECISION NOT NULL,
    window_secs  BIGINT NOT NULL
);
CREATE TABLE reports (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  BIGINT NOT NULL,
    client       TEXT NOT NULL,
    package      TEXT NOT NULL,
    version      TEXT NOT NULL,
    format       TEXT NOT NULL CHECK (format IN ('v2', 'v3')),
    phase        TEXT NOT NULL,
    ok           BIGINT NOT NULL,
    error_class  TEXT,
    bucket       BIGINT NOT NULL
);
CREATE INDEX reports_by_time ON reports(received_at, package);
CREATE TABLE tokens (
    sha256      TEXT PRIMARY KEY NOT NULL,
    namespace   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
",
    "
CREATE TABLE report_tokens (
    sha256      TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
ALTER TABLE reports ADD COLUMN token TEXT NOT NULL DEFAULT '';
CREATE INDEX reports_by_client ON reports(token, client, received_at);
",
    "
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY NOT NULL,
    namespace   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    received    BIGINT NOT NULL,
    total       BIGINT,
    chunks      TEXT NOT NULL
);
",
    "
ALTER TABLE versions ADD COLUMN readme TEXT;
ALTER TABLE versions ADD COLUMN requests TEXT;
ALTER TABLE versions ADD COLUMN archived_reason TEXT;
",
    "
ALTER TABLE versions ADD COLUMN published_by TEXT;
ALTER TABLE tokens ADD COLUMN user_name TEXT;
",
];

/// The key of the advisory lock that serialises PostgreSQL migrations ("webcpm" in ASCII).
const MIGRATION_LOCK: i64 = 0x7765_6263_706d;

/// What a migration run found.
pub(super) enum Migrated {
    UpToDate,
    /// The database holds more migrations than this webcpm knows.
    TooNew {
        found: i64,
        known: usize,
    },
}

/// Brings the schema up to date, in one transaction.
pub(super) fn migrate(conn: &mut Conn) -> Result<Migrated, SqlError> {
    let list = match conn.dialect() {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    conn.transaction(|c| {
        let found = schema_version(c)?;
        if found < 0 || found as usize > list.len() {
            return Ok(Migrated::TooNew {
                found,
                known: list.len(),
            });
        }
        for (i, migration) in list.iter().enumerate().skip(found as usize) {
            c.batch(migration)?;
            set_schema_version(c, (i + 1) as i64)?;
        }
        Ok(Migrated::UpToDate)
    })
}

fn schema_version(c: &mut Conn) -> Result<i64, SqlError> {
    match c.dialect() {
        Dialect::Sqlite => Ok(c
            .query_opt("PRAGMA user_version", &[])?
            .map_or(Ok(0), |r| r.int(0))?),
        Dialect::Postgres => {
            c.execute("SELECT pg_advisory_xact_lock($1)", args![MIGRATION_LOCK])?;
            c.batch("CREATE TABLE IF NOT EXISTS webcpm_schema (version BIGINT NOT NULL)")?;
            Ok(c.query_opt("SELECT version FROM webcpm_schema", &[])?
                .map_or(Ok(0), |r| r.int(0))?)
        }
    }
}

fn set_schema_version(c: &mut Conn, version: i64) -> Result<(), SqlError> {
    match c.dialect() {
        Dialect::Sqlite => c.batch(&format!("PRAGMA user_version = {version}")),
        Dialect::Postgres => {
            c.execute("DELETE FROM webcpm_schema", &[])?;
            c.execute(
                "INSERT INTO webcpm_schema (version) VALUES ($1)",
                args![version],
            )?;
            Ok(())
        }
    }
}
