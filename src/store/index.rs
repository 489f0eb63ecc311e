//! `index.sqlite`: what the store holds and why.
//!
//! Tables (migration 1): `meta` (key/value, e.g. the installation id), `blobs` (every verified
//! file in `blobs/`), `packages`, `versions` and `distributions` (what each registry offered, both
//! formats of each version), `installs` (one row per installed package name: the version, the
//! format, the blob, and why that format), `install_members` (the whole resolved tree of each
//! install), `decisions` (each candidate format's outcome for an install), `atoms` (the modules
//! inside each blob, by SHA-256), `artifacts` (compiled atoms per engine, or why compiling
//! failed) and `events` (a log).
//!
//! Migrations are an append-only list applied under `PRAGMA user_version`; an index whose version
//! is newer than this binary knows is refused, never altered. WAL mode, foreign keys on, a busy
//! timeout so that concurrent processes wait for each other instead of failing.
//!
//! Package names, digests, formats and versions go in and out of columns through the conversions
//! in [`sql`]: a stored value that does not parse is [`IndexError::Corrupt`], except where a
//! reader says it reads it as absent.

mod sql;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    CachedStatement, Connection, OptionalExtension, Params, Row, Transaction, TransactionBehavior,
    params,
};

use crate::package::{Distribution, Offer, PackageName, Release, Sha256Digest, WebcVersion};
use sql::{Semver, lenient};

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Append-only: never edit a released entry, add a new one.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the store's index {path} has schema version {found}, newer than this webcpm knows ({known}); upgrade webcpm or use another --home"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "index {path}: a row holds `{value}`, which is not a valid {what}; run `webcpm cache verify`"
    )]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
}

/// The open index. One connection, shared behind a mutex: SQLite work is short.
#[derive(Debug)]
pub struct Index {
    path: PathBuf,
    conn: Mutex<Connection>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

/// A verified file in `blobs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub webc: WebcVersion,
}

impl BlobRow {
    const SELECT: &'static str = "SELECT sha256, size, webc FROM blobs";

    fn read(r: &Row<'_>) -> rusqlite::Result<BlobRow> {
        Ok(BlobRow {
            sha256: r.get(0)?,
            size: r.get::<_, i64>(1)? as u64,
            webc: r.get(2)?,
        })
    }
}

/// A blob as `cache gc` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub last_used_ms: i64,
    /// An install's tree points at it.
    pub used: bool,
}

/// An atom of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomRow {
    pub name: String,
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// Marks a blob used at `now`, for least-recently-used eviction.
fn mark_used(conn: &Connection, blob: &Sha256Digest, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE blobs SET last_used_at = ?2 WHERE sha256 = ?1",
        params![blob, now],
    )
    .map(drop)
}

impl Index {
    pub fn blob(&self, digest: &Sha256Digest) -> Result<Option<BlobRow>, IndexError> {
        let sql = format!("{} WHERE sha256 = ?1", BlobRow::SELECT);
        self.row(&sql, [digest], BlobRow::read)
    }

    pub fn insert_blob(
        &self,
        digest: &Sha256Digest,
        size: u64,
        webc: WebcVersion,
    ) -> Result<(), IndexError> {
        self.execute(
            "INSERT INTO blobs (sha256, size, webc, created_at, last_used_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (sha256) DO UPDATE SET last_used_at = excluded.last_used_at",
            params![digest, size as i64, webc, now_ms()],
        )
    }

    /// Every blob the index knows, for `cache list` and `cache verify`.
    pub fn blobs(&self) -> Result<Vec<BlobRow>, IndexError> {
        let sql = format!("{} ORDER BY sha256", BlobRow::SELECT);
        self.rows(&sql, [], BlobRow::read)
    }

    /// Every blob, with whether an install uses it.
    pub fn blob_entries(&self) -> Result<Vec<BlobEntry>, IndexError> {
        self.rows(
            "SELECT b.sha256, b.size, b.last_used_at,
                    EXISTS (SELECT 1 FROM install_members m WHERE m.sha256 = b.sha256)
                    OR EXISTS (SELECT 1 FROM installs i WHERE i.sha256 = b.sha256)
             FROM blobs b",
            [],
            |r| {
                Ok(BlobEntry {
                    sha256: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    last_used_ms: r.get(2)?,
                    used: r.get(3)?,
                })
            },
        )
    }

    /// Whether any install's tree points at this blob.
    pub fn blob_is_used(&self, digest: &Sha256Digest) -> Result<bool, IndexError> {
        self.query(
            "SELECT 1 FROM install_members WHERE sha256 = ?1 LIMIT 1",
            |s| s.exists([digest]),
        )
    }

    /// Forgets a blob that no install uses (its atoms go with it).
    pub fn forget_blob(&self, digest: &Sha256Digest) -> Result<(), IndexError> {
        self.execute("DELETE FROM blobs WHERE sha256 = ?1", [digest])
    }

    /// Records what a blob holds: its manifest (as JSON) and its atoms.
    pub fn record_contents(
        &self,
        blob: &Sha256Digest,
        manifest: &str,
        atoms: &[AtomRow],
    ) -> Result<(), IndexError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE blobs SET manifest = ?2 WHERE sha256 = ?1",
                params![blob, manifest],
            )?;
            for atom in atoms {
                tx.execute(
                    "INSERT OR IGNORE INTO atoms (blob, name, sha256, size) VALUES (?1, ?2, ?3, ?4)",
                    params![blob, atom.name, atom.sha256, atom.size as i64],
                )?;
            }
            Ok(())
        })
    }

    /// The manifest of a blob, as JSON, once its contents were recorded.
    pub fn manifest(&self, blob: &Sha256Digest) -> Result<Option<String>, IndexError> {
        self.row(
            "SELECT manifest FROM blobs WHERE sha256 = ?1",
            [blob],
            |r| r.get(0),
        )
        .map(Option::flatten)
    }

    /// The atoms of a blob, by name; empty when they were never recorded.
    pub fn atoms(&self, blob: &Sha256Digest) -> Result<Vec<AtomRow>, IndexError> {
        self.rows(
            "SELECT name, sha256, size FROM atoms WHERE blob = ?1 ORDER BY name",
            [blob],
            |r| {
                let size: i64 = r.get(2)?;
                Ok(AtomRow {
                    name: r.get(0)?,
                    sha256: r.get(1)?,
                    size: size as u64,
                })
            },
        )
    }
}

/// One package of an install's resolved tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallMember {
    pub package: PackageName,
    pub version: semver::Version,
    pub webc: WebcVersion,
    pub sha256: Sha256Digest,
    pub depth: u32,
}

/// One candidate format's outcome, as `resolve --explain` and `install` report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub webc: WebcVersion,
    pub outcome: String,
    pub reason: String,
}

/// Everything written for one install, in one transaction.
#[derive(Debug, Clone)]
pub struct InstallRecord {
    pub package: PackageName,
    pub request: String,
    pub registry: String,
    pub webc: WebcVersion,
    pub rule: String,
    pub reason: String,
    pub fell_back_from: Option<WebcVersion>,
    /// The root first.
    pub members: Vec<InstallMember>,
    pub decisions: Vec<Decision>,
    /// What the registry offered for every member, both formats.
    pub releases: Vec<Release>,
}

/// Where [`Index::repoint`] moves an install.
#[derive(Debug, Clone, Copy)]
pub struct Repoint<'a> {
    /// The blob the install points at now: if another process changed the install meanwhile,
    /// it is left as that process made it.
    pub from: Sha256Digest,
    pub webc: WebcVersion,
    /// The whole tree in the new format, root first.
    pub members: &'a [InstallMember],
    pub rule: &'a str,
    pub reason: &'a str,
    pub fell_back_from: Option<WebcVersion>,
    /// Why it moved (`rollout rollback`, ...), for the event log.
    pub cause: &'a str,
}

/// An install as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub package: PackageName,
    pub version: semver::Version,
    pub request: String,
    pub registry: String,
    pub webc: WebcVersion,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub rule: String,
    pub reason: String,
    pub fell_back_from: Option<WebcVersion>,
}

impl Installed {
    const SELECT: &'static str = "SELECT i.package, i.version, i.request, i.registry, i.webc,
        i.sha256, b.size, i.rule, i.reason, i.fell_back_from
        FROM installs i JOIN blobs b ON b.sha256 = i.sha256";

    fn read(r: &Row<'_>) -> rusqlite::Result<Installed> {
        Ok(Installed {
            package: r.get(0)?,
            version: r.get::<_, Semver>(1)?.0,
            request: r.get(2)?,
            registry: r.get(3)?,
            webc: r.get(4)?,
            sha256: r.get(5)?,
            size: r.get::<_, i64>(6)? as u64,
            rule: r.get(7)?,
            reason: r.get(8)?,
            fell_back_from: r.get(9)?,
        })
    }
}

/// Writes the install row and its tree (`root` is its first member), which must not exist yet.
fn insert_install(
    tx: &Connection,
    record: &InstallRecord,
    root: &InstallMember,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO installs (package, version, request, registry, webc, sha256, rule, reason,
                               fell_back_from, installed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.package,
            root.version.to_string(),
            record.request,
            record.registry,
            record.webc,
            root.sha256,
            record.rule,
            record.reason,
            record.fell_back_from,
            now,
        ],
    )?;
    for m in &record.members {
        tx.execute(
            "INSERT INTO install_members (install, package, version, webc, sha256, depth)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                record.package,
                m.package,
                m.version.to_string(),
                m.webc,
                m.sha256,
                m.depth
            ],
        )?;
        mark_used(tx, &m.sha256, now)?;
    }
    Ok(())
}

impl Index {
    /// Writes an install, its tree, its decisions and what the registry offered, in one
    /// transaction, replacing any earlier install of the same name.
    pub fn record_install(&self, record: &InstallRecord) -> Result<(), IndexError> {
        let root = record
            .members
            .first()
            .expect("an install has at least its root package");
        self.write(|tx| {
            let now = now_ms();
            for release in &record.releases {
                write_release(tx, &record.registry, release, now)?;
            }
            tx.execute("DELETE FROM installs WHERE package = ?1", [&record.package])?;
            insert_install(tx, record, root, now)?;
            for (seq, d) in record.decisions.iter().enumerate() {
                tx.execute(
                    "INSERT INTO decisions (install, seq, webc, outcome, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![record.package, seq as i64, d.webc, d.outcome, d.reason],
                )?;
            }
            let detail = format!(
                "{}@{} as {} ({}: {})",
                record.package, root.version, record.webc, record.rule, record.reason
            );
            insert_event(tx, now, "install", Some(&record.package), &detail)
        })
    }

    /// Points an install at another format of the same versions, in one transaction: its row,
    /// its tree, and an event naming the cause.
    /// Returns `false`, and changes nothing, when the install is gone or no longer points at
    /// `to.from`.
    pub fn repoint(&self, package: &PackageName, to: &Repoint<'_>) -> Result<bool, IndexError> {
        let root = to.members.first().expect("an install has its root");
        self.write(|tx| {
            let before: Option<(String, String)> = tx
                .query_row(
                    "SELECT webc, sha256 FROM installs WHERE package = ?1",
                    [package],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((before, sha)) = before else {
                return Ok(false); // uninstalled meanwhile
            };
            if sha != to.from.hex() {
                return Ok(false); // installed anew meanwhile
            }
            tx.execute(
                "UPDATE installs SET webc = ?2, sha256 = ?3, rule = ?4, reason = ?5,
                                     fell_back_from = ?6
                 WHERE package = ?1",
                params![
                    package,
                    to.webc,
                    root.sha256,
                    to.rule,
                    to.reason,
                    to.fell_back_from
                ],
            )?;
            let now = now_ms();
            for m in to.members {
                tx.execute(
                    "UPDATE install_members SET webc = ?3, sha256 = ?4
                     WHERE install = ?1 AND package = ?2",
                    params![package, m.package, m.webc, m.sha256],
                )?;
                mark_used(tx, &m.sha256, now)?;
            }
            let detail = format!("{before} -> {} ({}; {})", to.webc, to.cause, to.rule);
            insert_event(tx, now, "repoint", Some(package), &detail)?;
            Ok(true)
        })
    }

    /// Removes an install (its blobs stay until gc). Returns whether there was one.
    pub fn remove_install(&self, package: &PackageName) -> Result<bool, IndexError> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM installs WHERE package = ?1", [package])?;
            if n > 0 {
                insert_event(tx, now_ms(), "uninstall", Some(package), "removed")?;
            }
            Ok(n > 0)
        })
    }

    pub fn installed(&self, package: &PackageName) -> Result<Option<Installed>, IndexError> {
        let sql = format!("{} WHERE i.package = ?1", Installed::SELECT);
        self.row(&sql, [package], Installed::read)
    }

    pub fn installs(&self) -> Result<Vec<Installed>, IndexError> {
        let sql = format!("{} ORDER BY i.package", Installed::SELECT);
        self.rows(&sql, [], Installed::read)
    }

    /// The resolved tree of an install, root first.
    pub fn members(&self, install: &PackageName) -> Result<Vec<InstallMember>, IndexError> {
        self.rows(
            "SELECT package, version, webc, sha256, depth FROM install_members
             WHERE install = ?1 ORDER BY depth, package",
            [install],
            |r| {
                Ok(InstallMember {
                    package: r.get(0)?,
                    version: r.get::<_, Semver>(1)?.0,
                    webc: r.get(2)?,
                    sha256: r.get(3)?,
                    depth: r.get::<_, i64>(4)? as u32,
                })
            },
        )
    }

    pub fn decisions(&self, install: &PackageName) -> Result<Vec<Decision>, IndexError> {
        self.rows(
            "SELECT webc, outcome, reason FROM decisions WHERE install = ?1 ORDER BY seq",
            [install],
            |r| {
                Ok(Decision {
                    webc: r.get(0)?,
                    outcome: r.get(1)?,
                    reason: r.get(2)?,
                })
            },
        )
    }
}

impl Index {
    /// What a registry offered for one format of a version, as recorded at install.
    pub fn distribution(
        &self,
        registry: &str,
        package: &PackageName,
        version: &semver::Version,
        webc: WebcVersion,
    ) -> Result<Option<Distribution>, IndexError> {
        self.row(
            "SELECT url, sha256, size, claimed, manifest FROM distributions
             WHERE registry = ?1 AND package = ?2 AND version = ?3 AND webc = ?4
               AND offer = 'offered'
               AND url IS NOT NULL AND sha256 IS NOT NULL AND size IS NOT NULL",
            params![registry, package, version.to_string(), webc],
            |r| {
                Ok(Distribution {
                    webc,
                    url: r.get(0)?,
                    sha256: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    claimed: lenient(r, 3)?,
                    dependencies: Vec::new(),
                    manifest: r.get(4)?,
                })
            },
        )
    }

    /// The distribution an install's blob came from, to download it again; `None` when no
    /// offered distribution has that digest or its row does not parse.
    pub fn distribution_of_blob(
        &self,
        digest: &Sha256Digest,
    ) -> Result<Option<Distribution>, IndexError> {
        let key = self.row(
            "SELECT registry, package, version, webc FROM distributions
             WHERE sha256 = ?1 AND offer = 'offered' LIMIT 1",
            [digest],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    lenient::<PackageName>(r, 1)?,
                    lenient::<Semver>(r, 2)?,
                    lenient::<WebcVersion>(r, 3)?,
                ))
            },
        )?;
        let Some((registry, Some(package), Some(Semver(version)), Some(webc))) = key else {
            return Ok(None);
        };
        self.distribution(&registry, &package, &version, webc)
    }
}

/// Records one version of a package and both of its formats, replacing what an earlier install
/// recorded for it.
fn write_release(
    tx: &Connection,
    registry: &str,
    release: &Release,
    now: i64,
) -> rusqlite::Result<()> {
    let name = &release.name;
    let version = release.version.to_string();
    tx.execute(
        "INSERT INTO packages (registry, name, checked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (registry, name) DO UPDATE SET checked_at = excluded.checked_at",
        params![registry, name, now],
    )?;
    tx.execute(
        "INSERT INTO versions (registry, package, version, archived) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (registry, package, version) DO UPDATE SET archived = excluded.archived",
        params![registry, name, version, release.archived],
    )?;
    for webc in WebcVersion::ALL {
        let (offer, url, sha, size, claimed, manifest, problem) = match release.offer(webc) {
            Offer::Offered(d) => (
                "offered",
                Some(d.url.as_str()),
                Some(d.sha256),
                Some(d.size as i64),
                d.claimed,
                d.manifest.as_deref(),
                None,
            ),
            Offer::NotOffered => ("not_offered", None, None, None, None, None, None),
            Offer::Invalid(why) => ("invalid", None, None, None, None, None, Some(why.as_str())),
        };
        tx.execute(
            "INSERT OR REPLACE INTO distributions
             (registry, package, version, webc, offer, url, sha256, size, claimed, manifest, problem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                registry, name, version, webc, offer, url, sha, size, claimed, manifest, problem
            ],
        )?;
    }
    Ok(())
}

/// A compiled atom, or the reason it could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    pub size: Option<u64>,
    pub error: Option<String>,
}

/// A compiled artifact as `cache verify` and `cache gc` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    pub engine: String,
    pub atom: Sha256Digest,
    pub size: u64,
    pub sha256: Option<Sha256Digest>,
    pub last_used_ms: i64,
}

impl Index {
    pub fn artifact(
        &self,
        engine: &str,
        atom: &Sha256Digest,
    ) -> Result<Option<ArtifactRow>, IndexError> {
        self.row(
            "SELECT size, error FROM artifacts WHERE engine = ?1 AND atom = ?2",
            params![engine, atom],
            |r| {
                Ok(ArtifactRow {
                    size: r.get::<_, Option<i64>>(0)?.map(|n| n as u64),
                    error: r.get(1)?,
                })
            },
        )
    }

    /// Records a compiled artifact (`Ok(size)`) or why compiling failed (`Err(reason)`).
    pub fn record_artifact(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        outcome: Result<(u64, Sha256Digest), &str>,
    ) -> Result<(), IndexError> {
        let (size, sha, error) = match outcome {
            Ok((size, sha)) => (Some(size as i64), Some(sha), None),
            Err(e) => (None, None, Some(e)),
        };
        self.execute(
            "INSERT INTO artifacts (engine, atom, size, sha256, error, created_at, last_used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (engine, atom) DO UPDATE SET size = excluded.size,
                 sha256 = excluded.sha256, error = excluded.error,
                 last_used_at = excluded.last_used_at",
            params![engine, atom, size, sha, error, now_ms()],
        )
    }

    /// Every compiled artifact (not the recorded compile failures). An artifact whose file
    /// digest does not parse is listed without one.
    pub fn artifacts(&self) -> Result<Vec<ArtifactEntry>, IndexError> {
        self.rows(
            "SELECT engine, atom, size, sha256, last_used_at FROM artifacts
             WHERE size IS NOT NULL ORDER BY engine, atom",
            [],
            |r| {
                Ok(ArtifactEntry {
                    engine: r.get(0)?,
                    atom: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    sha256: lenient(r, 3)?,
                    last_used_ms: r.get(4)?,
                })
            },
        )
    }

    /// The atoms (by digest) of every blob an install uses: their artifacts are in use.
    pub fn used_atoms(&self) -> Result<BTreeSet<String>, IndexError> {
        let atoms = self.rows(
            "SELECT DISTINCT a.sha256 FROM atoms a
             JOIN install_members m ON m.sha256 = a.blob",
            [],
            |r| r.get(0),
        )?;
        Ok(atoms.into_iter().collect())
    }

    pub fn forget_artifact(&self, engine: &str, atom: &Sha256Digest) -> Result<(), IndexError> {
        self.execute(
            "DELETE FROM artifacts WHERE engine = ?1 AND atom = ?2",
            params![engine, atom],
        )
    }

    /// Marks an artifact used now, for least-recently-used eviction.
    pub fn touch_artifact(&self, engine: &str, atom: &Sha256Digest) -> Result<(), IndexError> {
        self.execute(
            "UPDATE artifacts SET last_used_at = ?3 WHERE engine = ?1 AND atom = ?2",
            params![engine, atom, now_ms()],
        )
    }
}

/// An entry of the event log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub at_ms: i64,
    pub kind: String,
    pub package: Option<String>,
    pub detail: String,
}

/// Appends an event, on `conn` or in the transaction it derefs from.
fn insert_event(
    conn: &Connection,
    at: i64,
    kind: &str,
    package: Option<&PackageName>,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO events (at, kind, package, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![at, kind, package, detail])
        .map(drop)
}

impl Index {
    pub fn log_event(
        &self,
        kind: &str,
        package: Option<&PackageName>,
        detail: &str,
    ) -> Result<(), IndexError> {
        insert_event(&self.conn(), now_ms(), kind, package, detail).map_err(self.sql())
    }

    /// The last `limit` events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, IndexError> {
        let mut events = self.rows(
            "SELECT at, kind, package, detail FROM events ORDER BY id DESC LIMIT ?1",
            [limit as i64],
            |r| {
                Ok(Event {
                    at_ms: r.get(0)?,
                    kind: r.get(1)?,
                    package: r.get(2)?,
                    detail: r.get(3)?,
                })
            },
        )?;
        events.reverse();
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{PackageName, Sha256Digest, WebcVersion};

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
             INSERT INTO versions VALUES ('r', 'ns/pkg', '1.0.0', 0);
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
        raw.execute("UPDATE install_members SET package = 'nope'", [])
            .unwrap();
        assert_eq!(
            corrupt(index.members(&name)),
            ("package name", "nope".to_string())
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
