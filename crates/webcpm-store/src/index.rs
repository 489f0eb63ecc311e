//! `index.sqlite`: what the store holds and why.
//!
//! Tables (migration 1): `meta` (key/value, e.g. the installation id), `blobs` (every verified
//! file in `blobs/`), `packages`, `versions` and `distributions` (what each registry offered, both
//! formats of each version), `installs` (one row per installed package name: the version, the
//! format, the blob, and why that format), `install_members` (the whole resolved tree of each
//! install), `decisions` (each candidate format's outcome for an install), `atoms` (the modules
//! inside each blob, by SHA-256), `artifacts` (compiled atoms per engine, or why compiling
//! failed) and `events` (a log). Migration 3 adds `grants`: what the user granted each package.
//!
//! Migrations are an append-only list applied under `PRAGMA user_version`; an index whose version
//! is newer than this binary knows is refused, never altered. WAL mode, foreign keys on, a busy
//! timeout so that concurrent processes wait for each other instead of failing.
//!
//! This file opens and migrates the index and holds what every table shares: the connection, the
//! error type, `meta`, and `cache clean`. Each group of tables has its own file: [`blobs`] (blobs
//! and atoms), [`installs`] (installs, their members and decisions), [`distributions`] (packages,
//! versions and distributions), [`artifacts`] and [`events`]. Package names, digests, formats and
//! versions go in and out of columns through the conversions in [`sql`]: a stored value that does
//! not parse is [`IndexError::Corrupt`], except where a reader says it reads it as absent.

mod artifacts;
mod blobs;
mod distributions;
mod events;
mod grants;
mod installs;
mod sql;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{
    CachedStatement, Connection, OptionalExtension, Params, Row, Transaction, TransactionBehavior,
    params,
};

pub use artifacts::{ArtifactEntry, ArtifactRow, BaselineOnly};
pub use blobs::{AtomRow, BlobEntry, BlobRow};
pub use events::Event;
pub use grants::Capability;
pub use installs::{Decision, InstallMember, InstallRecord, Installed, Repoint};
pub use sql::IndexError;
use sql::now_ms;

/// The schema version this binary writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Append-only: never edit a released entry, add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    webc TEXT NOT NULL,
    manifest TEXT,                  -- the container's manifest as JSON, once its contents are known
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
);
CREATE TABLE packages (
    registry TEXT NOT NULL,
    name TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (registry, name)
);
CREATE TABLE versions (
    registry TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    archived INTEGER NOT NULL,
    PRIMARY KEY (registry, package, version),
    FOREIGN KEY (registry, package) REFERENCES packages (registry, name)
);
CREATE TABLE distributions (
    registry TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    webc TEXT NOT NULL,
    offer TEXT NOT NULL,            -- offered | not_offered | invalid
    url TEXT,
    sha256 TEXT,
    size INTEGER,
    claimed TEXT,
    manifest TEXT,
    problem TEXT,
    PRIMARY KEY (registry, package, version, webc),
    FOREIGN KEY (registry, package, version) REFERENCES versions (registry, package, version)
);
CREATE TABLE installs (
    package TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    request TEXT NOT NULL,
    registry TEXT NOT NULL,
    webc TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256),
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    fell_back_from TEXT,
    installed_at INTEGER NOT NULL
);
CREATE TABLE install_members (
    install TEXT NOT NULL REFERENCES installs (package) ON DELETE CASCADE,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    webc TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256),
    depth INTEGER NOT NULL,
    PRIMARY KEY (install, package)
);
CREATE INDEX install_members_by_blob ON install_members (sha256);
CREATE TABLE decisions (
    install TEXT NOT NULL REFERENCES installs (package) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    webc TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (install, seq)
);
CREATE TABLE atoms (
    blob TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (blob, name)
);
CREATE INDEX atoms_by_sha256 ON atoms (sha256);
CREATE TABLE artifacts (
    engine TEXT NOT NULL,
    atom TEXT NOT NULL,
    size INTEGER,                   -- NULL when the atom could not be compiled
    sha256 TEXT,                    -- of the artifact file, for `cache verify`
    error TEXT,                     -- why it could not
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (engine, atom)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    package TEXT,
    detail TEXT NOT NULL
);
"#,
    // 2: the ABI of each atom, read from its imports at install (NULL: recorded before this).
    r#"
ALTER TABLE atoms ADD COLUMN abi TEXT;
"#,
    // 3: what the user granted each package (`webcpm grant`): the network, a host directory
    // (host and guest path), the host's environment. User decisions: `cache clean` keeps them.
    r#"
CREATE TABLE grants (
    package TEXT NOT NULL,
    capability TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    guest TEXT NOT NULL DEFAULT '',
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (package, capability, host, guest)
);
"#,
    // 4: who published each version, as the registry said at install (NULL: it did not say).
    r#"
ALTER TABLE versions ADD COLUMN publisher TEXT;
"#,
];

/// The open index. One connection, shared behind a mutex: SQLite work is short.
#[derive(Debug)]
pub struct Index {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Index {
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        Ok(Index::open_with(path, true)?.expect("a migrating open returns the index"))
    }

    /// Opens the index if it exists at this binary's schema version; `None` when it must be
    /// created or migrated first (which [`Index::open`] does, under the store's exclusive lock).
    /// One connection either way: this is on the path of every command.
    pub fn open_current(path: &Path) -> Result<Option<Index>, IndexError> {
        if !path.exists() {
            return Ok(None);
        }
        Index::open_with(path, false)
    }

    /// Opens the index read-only (the warm path of `run`, which only reads), if it exists at
    /// this binary's schema version; `None` otherwise.
    pub fn open_read_only(path: &Path) -> Result<Option<Index>, IndexError> {
        if !path.exists() {
            return Ok(None);
        }
        let sql = |source| sql::index_error(path, source);
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(sql)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        if found != SCHEMA_VERSION {
            return Ok(None);
        }
        Ok(Some(Index {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        }))
    }

    /// Whether this connection may not write (see [`Index::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.conn().is_readonly(rusqlite::MAIN_DB).unwrap_or(false)
    }

    fn open_with(path: &Path, migrate: bool) -> Result<Option<Index>, IndexError> {
        let sql = |source| sql::index_error(path, source);
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(sql)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        if found > SCHEMA_VERSION {
            return Err(IndexError::TooNew {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION && !migrate {
            return Ok(None);
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        if found < SCHEMA_VERSION {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Exclusive)
                .map_err(sql)?;
            // Read again inside the transaction: another process may have migrated meanwhile.
            let found: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(sql)?;
            for (i, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
                tx.execute_batch(migration).map_err(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)
                    .map_err(sql)?;
            }
            tx.commit().map_err(sql)?;
        }
        Ok(Some(Index {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> IndexError + '_ {
        |source| sql::index_error(&self.path, source)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `query` on the cached statement for `sql`.
    fn query<T>(
        &self,
        sql: &str,
        query: impl FnOnce(&mut CachedStatement<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, IndexError> {
        self.conn()
            .prepare_cached(sql)
            .and_then(|mut s| query(&mut s))
            .map_err(self.sql())
    }

    /// The first row of a query (one found by its key), read by `read`; `None` when there is none.
    fn row<T, R>(&self, sql: &str, params: impl Params, read: R) -> Result<Option<T>, IndexError>
    where
        R: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.query(sql, |s| s.query_row(params, read).optional())
    }

    /// Every row of a query, each read by `read`, in the query's order.
    fn rows<T, R>(&self, sql: &str, params: impl Params, read: R) -> Result<Vec<T>, IndexError>
    where
        R: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.query(sql, |s| s.query_map(params, read)?.collect())
    }

    /// Runs one statement outside any transaction.
    fn execute(&self, sql: &str, params: impl Params) -> Result<(), IndexError> {
        self.conn()
            .execute(sql, params)
            .map(drop)
            .map_err(self.sql())
    }

    /// Runs `work` in an immediate transaction, committed when it returns `Ok` and rolled back
    /// when it fails.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, IndexError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let out = work(&tx).map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, IndexError> {
        self.row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
    }

    /// Sets `key` only if it has no value yet; returns the value that holds afterwards.
    pub fn meta_init(&self, key: &str, value: &str) -> Result<String, IndexError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .map_err(self.sql())?;
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map_err(self.sql())
    }

    /// Forgets everything but `meta` (the installation id), for `cache clean`.
    pub fn clear(&self) -> Result<(), IndexError> {
        self.conn()
            .execute_batch(
                "BEGIN IMMEDIATE;
                 DELETE FROM decisions; DELETE FROM install_members; DELETE FROM installs;
                 DELETE FROM atoms; DELETE FROM artifacts; DELETE FROM blobs;
                 DELETE FROM distributions; DELETE FROM versions; DELETE FROM packages;
                 INSERT INTO events (at, kind, package, detail)
                     VALUES (strftime('%s','now') * 1000, 'clean', NULL, 'removed everything');
                 COMMIT;",
            )
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webcpm_formats::package::{PackageName, Sha256Digest, WebcVersion};

    #[test]
    fn a_newer_index_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        Index::open(&path).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
                .unwrap();
        }
        let err = Index::open(&path).unwrap_err();
        assert!(matches!(err, IndexError::TooNew { found, .. } if found == SCHEMA_VERSION + 5));
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 5);
    }

    #[test]
    fn migrations_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let index = Index::open(&path).unwrap();
        index.meta_init("installation_id", "a").unwrap();
        drop(index);
        let index = Index::open(&path).unwrap();
        assert_eq!(index.meta_init("installation_id", "b").unwrap(), "a");
    }

    /// An index with one install of `ns/pkg` 1.0.0 as v2, and a raw connection to spoil it.
    fn spoilable() -> (tempfile::TempDir, Index, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let index = Index::open(&path).unwrap();
        let sha = "ab".repeat(32);
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(&format!(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO blobs (sha256, size, webc, created_at, last_used_at)
                 VALUES ('{sha}', 10, 'v2', 1, 1);
             INSERT INTO installs VALUES ('ns/pkg', '1.0.0', 'latest', 'r', 'v2', '{sha}',
                 'rule', 'why', NULL, 1);
             INSERT INTO install_members VALUES ('ns/pkg', 'ns/pkg', '1.0.0', 'v2', '{sha}', 0);
             INSERT INTO packages VALUES ('r', 'ns/pkg', 1);
             INSERT INTO versions VALUES ('r', 'ns/pkg', '1.0.0', 0, 'alice');
             INSERT INTO distributions VALUES ('r', 'ns/pkg', '1.0.0', 'v2', 'offered',
                 'http://r/x', '{sha}', 10, 'v2', NULL, NULL);
             INSERT INTO artifacts VALUES ('e', '{sha}', 5, '{sha}', NULL, 1, 1);"
        ))
        .unwrap();
        (dir, index, raw)
    }

    fn corrupt<T: std::fmt::Debug>(read: Result<T, IndexError>) -> (&'static str, String) {
        match read {
            Err(IndexError::Corrupt { what, value, .. }) => (what, value),
            other => panic!("not corrupt: {other:?}"),
        }
    }

    #[test]
    fn a_corrupt_value_in_a_row_is_reported_as_corrupt() {
        let (_dir, index, raw) = spoilable();
        let name: PackageName = "ns/pkg".parse().unwrap();
        assert_eq!(index.installs().unwrap().len(), 1);
        raw.execute("UPDATE installs SET fell_back_from = 'v4'", [])
            .unwrap();
        assert_eq!(corrupt(index.installs()), ("format", "v4".to_string()));
        raw.execute("UPDATE install_members SET version = 'one'", [])
            .unwrap();
        assert_eq!(
            corrupt(index.members(&name)),
            ("version", "one".to_string())
        );
        raw.execute("UPDATE install_members SET package = 'ns/'", [])
            .unwrap();
        assert_eq!(
            corrupt(index.members(&name)),
            ("package name", "ns/".to_string())
        );
        raw.execute("UPDATE artifacts SET atom = 'xyz'", [])
            .unwrap();
        assert_eq!(corrupt(index.artifacts()), ("digest", "xyz".to_string()));
        raw.execute("UPDATE blobs SET sha256 = 'abc'", []).unwrap();
        assert_eq!(corrupt(index.blobs()), ("digest", "abc".to_string()));
    }

    #[test]
    fn some_corrupt_values_are_read_as_absent() {
        let (_dir, index, raw) = spoilable();
        let name: PackageName = "ns/pkg".parse().unwrap();
        let version = semver::Version::new(1, 0, 0);
        let sha: Sha256Digest = "ab".repeat(32).parse().unwrap();
        let offered = || index.distribution("r", &name, &version, WebcVersion::V2);
        assert_eq!(offered().unwrap().unwrap().claimed, Some(WebcVersion::V2));
        raw.execute("UPDATE distributions SET claimed = 'v9'", [])
            .unwrap();
        assert_eq!(offered().unwrap().unwrap().claimed, None);
        raw.execute("UPDATE artifacts SET sha256 = 'xyz'", [])
            .unwrap();
        assert_eq!(index.artifacts().unwrap()[0].sha256, None);
        assert!(index.distribution_of_blob(&sha).unwrap().is_some());
        raw.execute("UPDATE distributions SET version = 'one'", [])
            .unwrap();
        assert!(index.distribution_of_blob(&sha).unwrap().is_none());
        raw.execute(
            "UPDATE distributions SET version = '1.0.0', url = NULL, sha256 = 'xyz'",
            [],
        )
        .unwrap();
        assert_eq!(offered().unwrap(), None);
        raw.execute("UPDATE distributions SET url = 'http://r/x'", [])
            .unwrap();
        assert_eq!(corrupt(offered()), ("digest", "xyz".to_string()));
    }
}
