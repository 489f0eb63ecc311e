//! The local registry's own SQLite database, `DIR/registry.sqlite`: which packages and versions
//! it offers and, for each version, the WebC v2 and v3 blobs with their SHA-256, size and
//! manifest.
//!
//! On disk: SQLite in WAL mode with foreign keys on. The schema is built by [`MIGRATIONS`], an
//! append-only list; `PRAGMA user_version` holds how many of them have run, so a database written
//! by a newer webcpm (more migrations than this one knows) is refused rather than misread.
//!
//! Tables:
//! - `packages(name TEXT PRIMARY KEY, created_at INTEGER)`: `name` is the lower-case
//!   `namespace/name`;
//! - `versions(package, version, major, minor, patch, pre, archived, published_at,
//!   v2_sha256, v2_size, v2_manifest, v3_sha256, v3_size, v3_manifest)`, primary key
//!   `(package, version)`. `version` is the canonical semver text; `major`/`minor`/`patch`/`pre`
//!   let SQL sort roughly, and readers sort exactly with [`semver::Version`]'s order. Hashes are
//!   64 lower-case hex digits, sizes are bytes, manifests are the containers' manifests as JSON
//!   text;
//! - `versions.description`: the package's description as published (untrusted text, shown by
//!   the web page), or NULL;
//! - `tokens(sha256 TEXT PRIMARY KEY, namespace, created_at)`: publish tokens, by the SHA-256 of
//!   the token's text (the token itself is never stored); see `tokens.rs`.
//!
//! - `policy_changes(version, v3_percent, packages, rolled_back, halted, action, actor, reason,
//!   at)`: the rollout policy's history, one row per `policy_version`; the last row is in force
//!   (`packages` is the JSON of the per-package rules);
//! - `automation(id = 1, action, min_samples, threshold, window_secs)`: what the registry does on
//!   its own when v3 fails more than v2;
//! - `reports(id, received_at, client, package, version, format, phase, ok, error_class,
//!   bucket)`: the clients' outcome reports (`client` is a salted hash).
//!
//! The rollout tables are read and written by the registry's fleet module (`server/fleet/`).
//!
//! Invariant: a `versions` row is written only after both of its blobs are in `DIR/blobs/`, in one
//! transaction, so a reader never sees a version whose files are missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::package::{PackageName, Sha256Digest, WebcVersion};

/// The database's file name inside the registry root.
pub const DB_FILE: &str = "registry.sqlite";

/// The schema, one migration per entry. Append only: never edit or reorder an entry.
const MIGRATIONS: &[&str] = &[
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
];

/// Why the registry database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("registry database {path}: {source}; check the file and its permissions")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "registry database {path} has schema version {found}, newer than this webcpm knows ({known}); use a newer webcpm"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error(
        "registry database {path} holds a bad row ({what}); publish that version again with `webcpm registry add --force`"
    )]
    Corrupt { path: PathBuf, what: String },
}

/// One stored format of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub sha256: Sha256Digest,
    pub size: u64,
    /// The container's manifest as JSON text.
    pub manifest: String,
}

/// One version of a package, with both formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version: semver::Version,
    pub archived: bool,
    pub published_at: i64,
    pub v2: BlobRecord,
    pub v3: BlobRecord,
    /// When set, the other format is not offered (its node has no URL and no hash), as the
    /// real registry answers for packages that predate a format.
    pub only: Option<WebcVersion>,
    /// A version that `--real-shapes` made up with broken nodes ([`super::shapes`]); never
    /// stored.
    pub broken: bool,
}

impl VersionRecord {
    /// Whether this version is offered in `webc`.
    pub fn offers(&self, webc: WebcVersion) -> bool {
        self.only.is_none_or(|only| only == webc)
    }

    pub fn blob(&self, webc: WebcVersion) -> &BlobRecord {
        match webc {
            WebcVersion::V2 => &self.v2,
            WebcVersion::V3 => &self.v3,
        }
    }
}

/// A package with all of its versions, sorted by semver, lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    pub name: PackageName,
    pub versions: Vec<VersionRecord>,
}

impl PackageRecord {
    /// The index of the highest version that is neither archived nor a prerelease.
    pub fn latest(&self) -> Option<usize> {
        self.versions
            .iter()
            .enumerate()
            .rev()
            .find(|(_, v)| !v.archived && v.version.pre.is_empty())
            .map(|(i, _)| i)
    }
}

/// What [`Db::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Inserted,
    Replaced,
    /// The version exists and `force` was not given: nothing was written.
    AlreadyExists,
}

/// An open registry database.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// A `versions` row as SQLite holds it, before its values are checked.
struct VersionRow {
    version: String,
    archived: bool,
    published_at: i64,
    v2: (String, i64, String),
    v3: (String, i64, String),
    only: Option<String>,
}

impl VersionRow {
    /// Reads the columns of `Db::package`'s query, in its order.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
        Ok(VersionRow {
            version: r.get(0)?,
            archived: r.get(1)?,
            published_at: r.get(2)?,
            v2: (r.get(3)?, r.get(4)?, r.get(5)?),
            v3: (r.get(6)?, r.get(7)?, r.get(8)?),
            only: r.get(9)?,
        })
    }

    /// Checks every value; a bad one is a corrupt database that names the package and version.
    fn record(self, name: &PackageName, path: &Path) -> Result<VersionRecord, DbError> {
        let text = &self.version;
        let corrupt = |what: String| DbError::Corrupt {
            path: path.to_path_buf(),
            what: format!("{name}@{text}: {what}"),
        };
        let blob = |(hash, size, manifest): (String, i64, String)| {
            Ok::<_, DbError>(BlobRecord {
                sha256: hash.parse().map_err(|e| corrupt(format!("{e}")))?,
                size: u64::try_from(size).map_err(|_| corrupt(format!("negative size {size}")))?,
                manifest,
            })
        };
        let only = match &self.only {
            None => None,
            Some(w) => Some(w.parse().map_err(|_| corrupt(format!("format `{w}`")))?),
        };
        Ok(VersionRecord {
            version: semver::Version::parse(text).map_err(|e| corrupt(format!("version: {e}")))?,
            archived: self.archived,
            broken: false,
            published_at: self.published_at,
            v2: blob(self.v2)?,
            v3: blob(self.v3)?,
            only,
        })
    }
}

impl Db {
    /// Opens `root/registry.sqlite`, creating it when missing (the directory must exist), and
    /// brings its schema up to date.
    pub fn open(root: &Path) -> Result<Db, DbError> {
        Self::open_with(root, OpenFlags::default())
    }

    /// Opens `root/registry.sqlite` if it exists; `None` when there is no database there.
    pub fn open_existing(root: &Path) -> Result<Option<Db>, DbError> {
        if !root.join(DB_FILE).is_file() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::open_with(root, flags).map(Some)
    }

    fn open_with(root: &Path, flags: OpenFlags) -> Result<Db, DbError> {
        let path = root.join(DB_FILE);
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(&path, flags).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql)?;
        let mut db = Db { conn, path };
        db.migrate()?;
        Ok(db)
    }

    /// The connection, for the table groups kept in their own files (`tokens.rs`, `web.rs`,
    /// the rollout tables).
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection, to read.
    pub(super) fn conn_ref(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a SQLite error into this database's error, naming its file.
    pub fn sql(&self) -> impl Fn(rusqlite::Error) -> DbError + Copy + '_ {
        |source| DbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let path = self.path.clone();
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if found < 0 || found as usize > MIGRATIONS.len() {
            return Err(DbError::TooNew {
                path: path.clone(),
                found,
                known: MIGRATIONS.len(),
            });
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(migration).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Whether `name@version` is in the registry.
    pub fn version_exists(
        &self,
        name: &PackageName,
        version: &semver::Version,
    ) -> Result<bool, DbError> {
        self.conn
            .query_row(
                "SELECT 1 FROM versions WHERE package = ?1 AND version = ?2",
                params![name.as_str(), version.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|row| row.is_some())
            .map_err(self.sql())
    }

    /// Records a version, in one transaction. Both blobs must already be in place.
    pub fn publish(
        &mut self,
        name: &PackageName,
        version: &semver::Version,
        v2: &BlobRecord,
        v3: &BlobRecord,
        only: Option<WebcVersion>,
        force: bool,
    ) -> Result<Published, DbError> {
        let path = self.path.clone();
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let now = unix_now();
        let text = version.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM versions WHERE package = ?1 AND version = ?2",
                params![name.as_str(), text],
                |_| Ok(()),
            )
            .optional()
            .map_err(sql)?
            .is_some();
        if exists && !force {
            return Ok(Published::AlreadyExists);
        }
        tx.execute(
            "INSERT INTO packages (name, created_at) VALUES (?1, ?2)
             ON CONFLICT (name) DO NOTHING",
            params![name.as_str(), now],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO versions (package, version, major, minor, patch, pre, archived,
                 published_at, v2_sha256, v2_size, v2_manifest, v3_sha256, v3_size, v3_manifest,
                 only_format)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (package, version) DO UPDATE SET
                 archived = 0, published_at = excluded.published_at,
                 v2_sha256 = excluded.v2_sha256, v2_size = excluded.v2_size,
                 v2_manifest = excluded.v2_manifest, v3_sha256 = excluded.v3_sha256,
                 v3_size = excluded.v3_size, v3_manifest = excluded.v3_manifest,
                 only_format = excluded.only_format",
            params![
                name.as_str(),
                text,
                clamp_i64(version.major),
                clamp_i64(version.minor),
                clamp_i64(version.patch),
                version.pre.as_str(),
                now,
                v2.sha256.hex(),
                clamp_i64(v2.size),
                v2.manifest,
                v3.sha256.hex(),
                clamp_i64(v3.size),
                v3.manifest,
                only.map(WebcVersion::as_str),
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(if exists {
            Published::Replaced
        } else {
            Published::Inserted
        })
    }

    /// Sets a version's description (written after [`Db::publish`]; none is NULL).
    pub fn set_description(
        &self,
        name: &PackageName,
        version: &semver::Version,
        description: Option<&str>,
    ) -> Result<(), DbError> {
        self.conn
            .execute(
                "UPDATE versions SET description = ?3 WHERE package = ?1 AND version = ?2",
                params![name.as_str(), version.to_string(), description],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// Sets a version's archived flag; `false` when there is no such version.
    pub fn set_archived(
        &self,
        name: &PackageName,
        version: &semver::Version,
        archived: bool,
    ) -> Result<bool, DbError> {
        let n = self
            .conn
            .execute(
                "UPDATE versions SET archived = ?3 WHERE package = ?1 AND version = ?2",
                params![name.as_str(), version.to_string(), archived],
            )
            .map_err(self.sql())?;
        Ok(n > 0)
    }

    /// A package with all its versions (archived ones too), or `None` when it is unknown.
    pub fn package(&self, name: &PackageName) -> Result<Option<PackageRecord>, DbError> {
        let known = self
            .conn
            .query_row(
                "SELECT 1 FROM packages WHERE name = ?1",
                params![name.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.sql())?
            .is_some();
        if !known {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, archived, published_at, v2_sha256, v2_size, v2_manifest,
                        v3_sha256, v3_size, v3_manifest, only_format
                 FROM versions WHERE package = ?1
                 ORDER BY major, minor, patch, pre",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![name.as_str()], VersionRow::read)
            .map_err(self.sql())?
            .collect::<Result<Vec<VersionRow>, _>>()
            .map_err(self.sql())?;
        let mut versions = rows
            .into_iter()
            .map(|row| row.record(name, &self.path))
            .collect::<Result<Vec<_>, _>>()?;
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(Some(PackageRecord {
            name: name.clone(),
            versions,
        }))
    }

    /// Every (package, format) that offers the blob `digest` (for the fault rules).
    pub fn blob_owners(
        &self,
        digest: &Sha256Digest,
    ) -> Result<Vec<(PackageName, WebcVersion)>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT package, 'v2' FROM versions WHERE v2_sha256 = ?1
                 UNION SELECT package, 'v3' FROM versions WHERE v3_sha256 = ?1",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![digest.hex()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        Ok(rows
            .into_iter()
            .filter_map(|(p, w)| Some((p.parse().ok()?, w.parse().ok()?)))
            .collect())
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| clamp_i64(d.as_secs()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(byte: u8) -> BlobRecord {
        BlobRecord {
            sha256: Sha256Digest::of(&[byte]),
            size: byte as u64,
            manifest: "{}".into(),
        }
    }

    #[test]
    fn versions_sort_by_semver_and_latest_skips_archived_and_prereleases() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path()).unwrap();
        let name: PackageName = "ns/pkg".parse().unwrap();
        for v in ["1.10.0", "1.2.0", "2.0.0-rc.1", "1.9.0"] {
            let v = semver::Version::parse(v).unwrap();
            assert_eq!(
                db.publish(&name, &v, &blob(1), &blob(2), None, false)
                    .unwrap(),
                Published::Inserted
            );
        }
        let v110 = semver::Version::parse("1.10.0").unwrap();
        assert_eq!(
            db.publish(&name, &v110, &blob(1), &blob(2), None, false)
                .unwrap(),
            Published::AlreadyExists
        );
        assert_eq!(
            db.publish(&name, &v110, &blob(3), &blob(4), None, true)
                .unwrap(),
            Published::Replaced
        );
        let p = db.package(&name).unwrap().unwrap();
        let order: Vec<String> = p.versions.iter().map(|v| v.version.to_string()).collect();
        assert_eq!(order, ["1.2.0", "1.9.0", "1.10.0", "2.0.0-rc.1"]);
        assert_eq!(p.versions[2].v2, blob(3));
        assert_eq!(p.latest(), Some(2));
        assert!(db.set_archived(&name, &v110, true).unwrap());
        assert_eq!(db.package(&name).unwrap().unwrap().latest(), Some(1));
        assert!(
            !db.set_archived(&name, &semver::Version::new(9, 0, 0), true)
                .unwrap()
        );
        assert!(db.package(&"ns/other".parse().unwrap()).unwrap().is_none());
        drop(db);
        // Reopening runs no migration twice.
        let db = Db::open_existing(dir.path()).unwrap().unwrap();
        assert!(db.version_exists(&name, &v110).unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Db::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Db::open(dir.path()),
            Err(DbError::TooNew { found: 99, .. })
        ));
        assert!(
            Db::open_existing(&dir.path().join("nowhere"))
                .unwrap()
                .is_none()
        );
    }
}
