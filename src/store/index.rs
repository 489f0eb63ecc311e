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

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::package::{Distribution, Offer, PackageName, Release, Sha256Digest, WebcVersion};

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

/// A verified file in `blobs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub webc: WebcVersion,
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

/// An entry of the event log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub at_ms: i64,
    pub kind: String,
    pub package: Option<String>,
    pub detail: String,
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
        let sql = |source| IndexError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
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
                .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
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
        |source| IndexError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, what: &'static str, value: &str) -> IndexError {
        IndexError::Corrupt {
            path: self.path.clone(),
            what,
            value: value.to_string(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, IndexError> {
        self.conn()
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(self.sql())
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

    pub fn blob(&self, digest: &Sha256Digest) -> Result<Option<BlobRow>, IndexError> {
        let row: Option<(i64, String)> = self
            .conn()
            .prepare_cached("SELECT size, webc FROM blobs WHERE sha256 = ?1")
            .and_then(|mut s| {
                s.query_row([digest.hex()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(self.sql())?;
        row.map(|(size, webc)| {
            Ok(BlobRow {
                sha256: *digest,
                size: size as u64,
                webc: webc.parse().map_err(|_| self.corrupt("format", &webc))?,
            })
        })
        .transpose()
    }

    pub fn insert_blob(
        &self,
        digest: &Sha256Digest,
        size: u64,
        webc: WebcVersion,
    ) -> Result<(), IndexError> {
        let now = now_ms();
        self.conn()
            .execute(
                "INSERT INTO blobs (sha256, size, webc, created_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (sha256) DO UPDATE SET last_used_at = excluded.last_used_at",
                params![digest.hex(), size as i64, webc.as_str(), now],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// Writes an install, its tree, its decisions and what the registry offered, in one
    /// transaction, replacing any earlier install of the same name.
    pub fn record_install(&self, record: &InstallRecord) -> Result<(), IndexError> {
        let mut conn = self.conn();
        let sql = self.sql();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let now = now_ms();
        for release in &record.releases {
            write_release(&tx, &record.registry, release, now).map_err(&sql)?;
        }
        let root = record
            .members
            .first()
            .expect("an install has at least its root package");
        tx.execute(
            "DELETE FROM installs WHERE package = ?1",
            [record.package.as_str()],
        )
        .map_err(&sql)?;
        tx.execute(
            "INSERT INTO installs (package, version, request, registry, webc, sha256, rule, reason,
                                   fell_back_from, installed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                record.package.as_str(),
                root.version.to_string(),
                record.request,
                record.registry,
                record.webc.as_str(),
                root.sha256.hex(),
                record.rule,
                record.reason,
                record.fell_back_from.map(|w| w.as_str()),
                now,
            ],
        )
        .map_err(&sql)?;
        for m in &record.members {
            tx.execute(
                "INSERT INTO install_members (install, package, version, webc, sha256, depth)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.package.as_str(),
                    m.package.as_str(),
                    m.version.to_string(),
                    m.webc.as_str(),
                    m.sha256.hex(),
                    m.depth,
                ],
            )
            .map_err(&sql)?;
            tx.execute(
                "UPDATE blobs SET last_used_at = ?2 WHERE sha256 = ?1",
                params![m.sha256.hex(), now],
            )
            .map_err(&sql)?;
        }
        for (seq, d) in record.decisions.iter().enumerate() {
            tx.execute(
                "INSERT INTO decisions (install, seq, webc, outcome, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![record.package.as_str(), seq as i64, d.webc.as_str(), d.outcome, d.reason],
            )
            .map_err(&sql)?;
        }
        insert_event(
            &tx,
            now,
            "install",
            Some(record.package.as_str()),
            &format!(
                "{}@{} as {} ({}: {})",
                record.package, root.version, record.webc, record.rule, record.reason
            ),
        )
        .map_err(&sql)?;
        tx.commit().map_err(&sql)
    }

    /// What a registry offered for one format of a version, as recorded at install.
    pub fn distribution(
        &self,
        registry: &str,
        package: &PackageName,
        version: &semver::Version,
        webc: WebcVersion,
    ) -> Result<Option<Distribution>, IndexError> {
        /// url, sha256, size, claimed format, manifest
        type Row = (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn()
            .prepare_cached(
                "SELECT url, sha256, size, claimed, manifest FROM distributions
                 WHERE registry = ?1 AND package = ?2 AND version = ?3 AND webc = ?4
                   AND offer = 'offered'",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        registry,
                        package.as_str(),
                        version.to_string(),
                        webc.as_str()
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
            })
            .map_err(self.sql())?;
        let Some((Some(url), Some(sha), size, claimed, manifest)) = row else {
            return Ok(None);
        };
        Ok(Some(Distribution {
            webc,
            url,
            sha256: sha.parse().map_err(|_| self.corrupt("digest", &sha))?,
            size: size.and_then(|n| u64::try_from(n).ok()),
            claimed: claimed.and_then(|c| c.parse().ok()),
            dependencies: Vec::new(),
            manifest,
            expires_in: None,
        }))
    }

    /// Points an install at another format of the same versions, in one transaction: its row,
    /// its tree, and an event naming the cause.
    /// Returns `false`, and changes nothing, when the install is gone or no longer points at
    /// `to.from`.
    pub fn repoint(&self, package: &PackageName, to: &Repoint<'_>) -> Result<bool, IndexError> {
        let Repoint {
            from,
            webc,
            members,
            rule,
            reason,
            fell_back_from,
            cause,
        } = *to;
        let mut conn = self.conn();
        let sql = self.sql();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let root = members.first().expect("an install has its root");
        let before: Option<(String, String)> = tx
            .query_row(
                "SELECT webc, sha256 FROM installs WHERE package = ?1",
                [package.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&sql)?;
        let Some((before, sha)) = before else {
            return Ok(false); // uninstalled meanwhile
        };
        if sha != from.hex() {
            return Ok(false); // installed anew meanwhile
        }
        tx.execute(
            "UPDATE installs SET webc = ?2, sha256 = ?3, rule = ?4, reason = ?5, fell_back_from = ?6
             WHERE package = ?1",
            params![
                package.as_str(),
                webc.as_str(),
                root.sha256.hex(),
                rule,
                reason,
                fell_back_from.map(|w| w.as_str())
            ],
        )
        .map_err(&sql)?;
        let now = now_ms();
        for m in members {
            tx.execute(
                "UPDATE install_members SET webc = ?3, sha256 = ?4 WHERE install = ?1 AND package = ?2",
                params![package.as_str(), m.package.as_str(), m.webc.as_str(), m.sha256.hex()],
            )
            .map_err(&sql)?;
            tx.execute(
                "UPDATE blobs SET last_used_at = ?2 WHERE sha256 = ?1",
                params![m.sha256.hex(), now],
            )
            .map_err(&sql)?;
        }
        insert_event(
            &tx,
            now,
            "repoint",
            Some(package.as_str()),
            &format!("{before} -> {webc} ({cause}; {rule})"),
        )
        .map_err(&sql)?;
        tx.commit().map_err(&sql)?;
        Ok(true)
    }

    /// Removes an install (its blobs stay until gc). Returns whether there was one.
    pub fn remove_install(&self, package: &PackageName) -> Result<bool, IndexError> {
        let mut conn = self.conn();
        let sql = self.sql();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let n = tx
            .execute(
                "DELETE FROM installs WHERE package = ?1",
                [package.as_str()],
            )
            .map_err(&sql)?;
        if n > 0 {
            insert_event(
                &tx,
                now_ms(),
                "uninstall",
                Some(package.as_str()),
                "removed",
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)?;
        Ok(n > 0)
    }

    const INSTALLED: &'static str = "SELECT i.package, i.version, i.request, i.registry, i.webc,
        i.sha256, b.size, i.rule, i.reason, i.fell_back_from
        FROM installs i JOIN blobs b ON b.sha256 = i.sha256";

    pub fn installed(&self, package: &PackageName) -> Result<Option<Installed>, IndexError> {
        let raw = self
            .conn()
            .prepare_cached(&format!("{} WHERE i.package = ?1", Self::INSTALLED))
            .and_then(|mut s| {
                s.query_row([package.as_str()], RawInstalled::read)
                    .optional()
            })
            .map_err(self.sql())?;
        raw.map(|r| r.parse(self)).transpose()
    }

    pub fn installs(&self) -> Result<Vec<Installed>, IndexError> {
        let raws = self
            .conn()
            .prepare_cached(&format!("{} ORDER BY i.package", Self::INSTALLED))
            .and_then(|mut s| {
                s.query_map([], RawInstalled::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.sql())?;
        raws.into_iter().map(|r| r.parse(self)).collect()
    }

    /// The resolved tree of an install, root first.
    pub fn members(&self, install: &PackageName) -> Result<Vec<InstallMember>, IndexError> {
        let raws: Vec<(String, String, String, String, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT package, version, webc, sha256, depth FROM install_members
                 WHERE install = ?1 ORDER BY depth, package",
            )
            .and_then(|mut s| {
                s.query_map([install.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.sql())?;
        raws.into_iter()
            .map(|(p, v, w, s, d)| {
                Ok(InstallMember {
                    package: p.parse().map_err(|_| self.corrupt("package name", &p))?,
                    version: v.parse().map_err(|_| self.corrupt("version", &v))?,
                    webc: w.parse().map_err(|_| self.corrupt("format", &w))?,
                    sha256: s.parse().map_err(|_| self.corrupt("digest", &s))?,
                    depth: d as u32,
                })
            })
            .collect()
    }

    pub fn decisions(&self, install: &PackageName) -> Result<Vec<Decision>, IndexError> {
        let raws: Vec<(String, String, String)> = self
            .conn()
            .prepare_cached(
                "SELECT webc, outcome, reason FROM decisions WHERE install = ?1 ORDER BY seq",
            )
            .and_then(|mut s| {
                s.query_map([install.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(self.sql())?;
        raws.into_iter()
            .map(|(w, outcome, reason)| {
                Ok(Decision {
                    webc: w.parse().map_err(|_| self.corrupt("format", &w))?,
                    outcome,
                    reason,
                })
            })
            .collect()
    }

    /// Every blob the index knows, for `cache list` and `cache verify`.
    pub fn blobs(&self) -> Result<Vec<BlobRow>, IndexError> {
        let raws: Vec<(String, i64, String)> = self
            .conn()
            .prepare_cached("SELECT sha256, size, webc FROM blobs ORDER BY sha256")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(self.sql())?;
        raws.into_iter()
            .map(|(s, size, w)| {
                Ok(BlobRow {
                    sha256: s.parse().map_err(|_| self.corrupt("digest", &s))?,
                    size: size as u64,
                    webc: w.parse().map_err(|_| self.corrupt("format", &w))?,
                })
            })
            .collect()
    }

    /// Whether any install's tree points at this blob.
    pub fn blob_is_used(&self, digest: &Sha256Digest) -> Result<bool, IndexError> {
        self.conn()
            .prepare_cached("SELECT 1 FROM install_members WHERE sha256 = ?1 LIMIT 1")
            .and_then(|mut s| s.exists([digest.hex()]))
            .map_err(self.sql())
    }

    /// Forgets a blob that no install uses (its atoms go with it).
    pub fn forget_blob(&self, digest: &Sha256Digest) -> Result<(), IndexError> {
        self.conn()
            .execute("DELETE FROM blobs WHERE sha256 = ?1", [digest.hex()])
            .map(drop)
            .map_err(self.sql())
    }

    pub fn log_event(
        &self,
        kind: &str,
        package: Option<&PackageName>,
        detail: &str,
    ) -> Result<(), IndexError> {
        insert_event(
            &self.conn(),
            now_ms(),
            kind,
            package.map(|p| p.as_str()),
            detail,
        )
        .map_err(self.sql())
    }

    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, IndexError> {
        let mut events: Vec<Event> = self
            .conn()
            .prepare_cached(
                "SELECT at, kind, package, detail FROM events ORDER BY id DESC LIMIT ?1",
            )
            .and_then(|mut s| {
                s.query_map([limit as i64], |r| {
                    Ok(Event {
                        at_ms: r.get(0)?,
                        kind: r.get(1)?,
                        package: r.get(2)?,
                        detail: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(self.sql())?;
        events.reverse();
        Ok(events)
    }
}

/// A compiled atom, or the reason it could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    pub size: Option<u64>,
    pub error: Option<String>,
}

/// An atom of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomRow {
    pub name: String,
    pub sha256: Sha256Digest,
    pub size: u64,
}

impl Index {
    /// Records what a blob holds: its manifest (as JSON) and its atoms.
    pub fn record_contents(
        &self,
        blob: &Sha256Digest,
        manifest: &str,
        atoms: &[AtomRow],
    ) -> Result<(), IndexError> {
        let mut conn = self.conn();
        let sql = self.sql();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&sql)?;
        tx.execute(
            "UPDATE blobs SET manifest = ?2 WHERE sha256 = ?1",
            params![blob.hex(), manifest],
        )
        .map_err(&sql)?;
        for atom in atoms {
            tx.execute(
                "INSERT OR IGNORE INTO atoms (blob, name, sha256, size) VALUES (?1, ?2, ?3, ?4)",
                params![blob.hex(), atom.name, atom.sha256.hex(), atom.size as i64],
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)
    }

    /// The manifest of a blob, as JSON, once its contents were recorded.
    pub fn manifest(&self, blob: &Sha256Digest) -> Result<Option<String>, IndexError> {
        self.conn()
            .prepare_cached("SELECT manifest FROM blobs WHERE sha256 = ?1")
            .and_then(|mut s| s.query_row([blob.hex()], |r| r.get(0)).optional())
            .map(Option::flatten)
            .map_err(self.sql())
    }

    /// The atoms of a blob, by name; empty when they were never recorded.
    pub fn atoms(&self, blob: &Sha256Digest) -> Result<Vec<AtomRow>, IndexError> {
        let raws: Vec<(String, String, i64)> = self
            .conn()
            .prepare_cached("SELECT name, sha256, size FROM atoms WHERE blob = ?1 ORDER BY name")
            .and_then(|mut s| {
                s.query_map([blob.hex()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(self.sql())?;
        raws.into_iter()
            .map(|(name, sha, size)| {
                Ok(AtomRow {
                    name,
                    sha256: sha.parse().map_err(|_| self.corrupt("digest", &sha))?,
                    size: size as u64,
                })
            })
            .collect()
    }

    pub fn artifact(
        &self,
        engine: &str,
        atom: &Sha256Digest,
    ) -> Result<Option<ArtifactRow>, IndexError> {
        self.conn()
            .prepare_cached("SELECT size, error FROM artifacts WHERE engine = ?1 AND atom = ?2")
            .and_then(|mut s| {
                s.query_row(params![engine, atom.hex()], |r| {
                    Ok(ArtifactRow {
                        size: r.get::<_, Option<i64>>(0)?.map(|n| n as u64),
                        error: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(self.sql())
    }

    /// Records a compiled artifact (`Ok(size)`) or why compiling failed (`Err(reason)`).
    pub fn record_artifact(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        outcome: Result<(u64, Sha256Digest), &str>,
    ) -> Result<(), IndexError> {
        let now = now_ms();
        let (size, sha, error) = match outcome {
            Ok((size, sha)) => (Some(size as i64), Some(sha.hex()), None),
            Err(e) => (None, None, Some(e)),
        };
        self.conn()
            .execute(
                "INSERT INTO artifacts (engine, atom, size, sha256, error, created_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (engine, atom) DO UPDATE SET size = excluded.size,
                     sha256 = excluded.sha256, error = excluded.error,
                     last_used_at = excluded.last_used_at",
                params![engine, atom.hex(), size, sha, error, now],
            )
            .map(drop)
            .map_err(self.sql())
    }
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

/// A blob as `cache gc` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub last_used_ms: i64,
    /// An install's tree points at it.
    pub used: bool,
}

impl Index {
    /// Every compiled artifact (not the recorded compile failures).
    pub fn artifacts(&self) -> Result<Vec<ArtifactEntry>, IndexError> {
        let raws: Vec<(String, String, i64, Option<String>, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT engine, atom, size, sha256, last_used_at FROM artifacts
                 WHERE size IS NOT NULL ORDER BY engine, atom",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.sql())?;
        raws.into_iter()
            .map(|(engine, atom, size, sha, used)| {
                Ok(ArtifactEntry {
                    atom: atom.parse().map_err(|_| self.corrupt("digest", &atom))?,
                    sha256: sha.and_then(|s| s.parse().ok()),
                    engine,
                    size: size as u64,
                    last_used_ms: used,
                })
            })
            .collect()
    }

    /// Every blob, with whether an install uses it.
    pub fn blob_entries(&self) -> Result<Vec<BlobEntry>, IndexError> {
        let raws: Vec<(String, i64, i64, bool)> = self
            .conn()
            .prepare_cached(
                "SELECT b.sha256, b.size, b.last_used_at,
                        EXISTS (SELECT 1 FROM install_members m WHERE m.sha256 = b.sha256)
                        OR EXISTS (SELECT 1 FROM installs i WHERE i.sha256 = b.sha256)
                 FROM blobs b",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(self.sql())?;
        raws.into_iter()
            .map(|(sha, size, used_at, used)| {
                Ok(BlobEntry {
                    sha256: sha.parse().map_err(|_| self.corrupt("digest", &sha))?,
                    size: size as u64,
                    last_used_ms: used_at,
                    used,
                })
            })
            .collect()
    }

    /// The atoms (by digest) of every blob an install uses: their artifacts are in use.
    pub fn used_atoms(&self) -> Result<std::collections::BTreeSet<String>, IndexError> {
        self.conn()
            .prepare_cached(
                "SELECT DISTINCT a.sha256 FROM atoms a
                 JOIN install_members m ON m.sha256 = a.blob",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(self.sql())
    }

    pub fn forget_artifact(&self, engine: &str, atom: &Sha256Digest) -> Result<(), IndexError> {
        self.conn()
            .execute(
                "DELETE FROM artifacts WHERE engine = ?1 AND atom = ?2",
                params![engine, atom.hex()],
            )
            .map(drop)
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

    /// Marks an artifact used now, for least-recently-used eviction.
    pub fn touch_artifact(&self, engine: &str, atom: &Sha256Digest) -> Result<(), IndexError> {
        self.conn()
            .execute(
                "UPDATE artifacts SET last_used_at = ?3 WHERE engine = ?1 AND atom = ?2",
                params![engine, atom.hex(), now_ms()],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// The distribution an install's blob came from, to download it again.
    pub fn distribution_of_blob(
        &self,
        digest: &Sha256Digest,
    ) -> Result<Option<Distribution>, IndexError> {
        let row: Option<(String, String, String, String)> = self
            .conn()
            .prepare_cached(
                "SELECT registry, package, version, webc FROM distributions
                 WHERE sha256 = ?1 AND offer = 'offered' LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([digest.hex()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(self.sql())?;
        let Some((registry, package, version, webc)) = row else {
            return Ok(None);
        };
        let (Ok(package), Ok(version), Ok(webc)) = (
            package.parse::<PackageName>(),
            version.parse::<semver::Version>(),
            webc.parse::<WebcVersion>(),
        ) else {
            return Ok(None);
        };
        self.distribution(&registry, &package, &version, webc)
    }
}

struct RawInstalled {
    package: String,
    version: String,
    request: String,
    registry: String,
    webc: String,
    sha256: String,
    size: i64,
    rule: String,
    reason: String,
    fell_back_from: Option<String>,
}

impl RawInstalled {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawInstalled> {
        Ok(RawInstalled {
            package: r.get(0)?,
            version: r.get(1)?,
            request: r.get(2)?,
            registry: r.get(3)?,
            webc: r.get(4)?,
            sha256: r.get(5)?,
            size: r.get(6)?,
            rule: r.get(7)?,
            reason: r.get(8)?,
            fell_back_from: r.get(9)?,
        })
    }

    fn parse(self, index: &Index) -> Result<Installed, IndexError> {
        Ok(Installed {
            package: self
                .package
                .parse()
                .map_err(|_| index.corrupt("package name", &self.package))?,
            version: self
                .version
                .parse()
                .map_err(|_| index.corrupt("version", &self.version))?,
            webc: self
                .webc
                .parse()
                .map_err(|_| index.corrupt("format", &self.webc))?,
            sha256: self
                .sha256
                .parse()
                .map_err(|_| index.corrupt("digest", &self.sha256))?,
            fell_back_from: match self.fell_back_from {
                Some(w) => Some(w.parse().map_err(|_| index.corrupt("format", &w))?),
                None => None,
            },
            request: self.request,
            registry: self.registry,
            size: self.size as u64,
            rule: self.rule,
            reason: self.reason,
        })
    }
}

fn write_release(
    tx: &Connection,
    registry: &str,
    release: &Release,
    now: i64,
) -> rusqlite::Result<()> {
    let name = release.name.as_str();
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
                Some(d.sha256.hex()),
                d.size.map(|n| n as i64),
                d.claimed.map(|c| c.as_str()),
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
                registry,
                name,
                version,
                webc.as_str(),
                offer,
                url,
                sha,
                size,
                claimed,
                manifest,
                problem
            ],
        )?;
    }
    Ok(())
}

fn insert_event(
    conn: &Connection,
    at: i64,
    kind: &str,
    package: Option<&str>,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO events (at, kind, package, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![at, kind, package, detail])
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
