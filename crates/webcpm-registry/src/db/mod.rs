//! The local registry's database: which packages and versions it offers and, for each version,
//! the WebC v2 and v3 blobs with their SHA-256, size and manifest; the publish tokens; the
//! rollout policy's history and the clients' reports.
//!
//! Where it lives ([`Database`]): by default SQLite, `DIR/registry.sqlite` (WAL mode, foreign
//! keys on); with `--database postgres://...`, PostgreSQL, which any number of `registry serve`
//! replicas share. The statements are written once for both ([`sql`]); the schema is built by
//! the append-only migrations of `migrations.rs`, and a database written by a newer webcpm is
//! refused rather than misread. Races between replicas are settled by the database: a version is
//! inserted with `ON CONFLICT DO NOTHING`, so of two concurrent publishes of it exactly one wins.
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
//! - `versions.description`, `versions.readme`: the package's description and readme as
//!   published (untrusted text, shown by the web page), or NULL; `versions.requests`: what its
//!   commands ask of the host (the JSON of `container::Requests`), NULL for versions added before
//!   the registry kept it; `versions.archived_reason`: why it was archived (yanked), if said;
//!   `versions.published_by`: the user who published it (the token's user, or the operator's
//!   `--publisher`), NULL for versions added before the registry kept it;
//! - `tokens(sha256 TEXT PRIMARY KEY, namespace, created_at, user_name)`: publish tokens, by the
//!   SHA-256 of the token's text (the token itself is never stored), with the user who publishes
//!   with each (NULL: the namespace); see `tokens.rs`;
//! - `report_tokens(sha256 TEXT PRIMARY KEY, name, created_at)`: the tokens clients send their
//!   outcome reports with, likewise by hash;
//! - `policy_changes(version, v3_percent, packages, rolled_back, halted, action, actor, reason,
//!   at)`: the rollout policy's history, one row per `policy_version`; the last row is in force
//!   (`packages` is the JSON of the per-package rules);
//! - `automation(id = 1, action, min_samples, threshold, window_secs)`: what the registry does on
//!   its own when v3 fails more than v2;
//! - `reports(id, received_at, client, package, version, format, phase, ok, error_class,
//!   bucket, token)`: the clients' outcome reports (`client` is a salted hash, `token` the
//!   SHA-256 of the report token they came with, empty on a registry with open reports).
//!
//! The rollout tables are read and written by the registry's fleet module ([`crate::fleet`]).
//!
//! Invariant: a `versions` row is written only after both of its blobs are in the blob store
//! (`DIR/blobs/` or the OCI registry), in one transaction, so a reader never sees a version whose
//! files are missing.

mod migrations;
mod pool;
pub(crate) mod sql;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::container::Requests;
use crate::package::{PackageName, Sha256Digest, WebcVersion};
use sql::{Conn, Row, SqlError, args};

pub(crate) use pool::Pool;

/// The database's file name inside the registry root.
pub(crate) const DB_FILE: &str = "registry.sqlite";

/// Why the registry database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "registry database {place}: {source}; check that it is reachable, writable and not damaged"
    )]
    Sql { place: String, source: SqlError },
    #[error(
        "cannot open the registry database {place}: {source}; check the path or URL, and that the database is running and accepts this user"
    )]
    Open { place: String, source: SqlError },
    #[error(
        "`{url}` is not a database this registry can use ({reason}); pass postgres://USER@HOST:PORT/NAME, or leave --database out to keep registry.sqlite in the registry root"
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "registry database {place} has schema version {found}, newer than this webcpm knows ({known}); use a newer webcpm"
    )]
    TooNew {
        place: String,
        found: i64,
        known: usize,
    },
    #[error(
        "registry database {place} holds a bad row ({what}); publish that version again with `webcpm registry add --force`"
    )]
    Corrupt { place: String, what: String },
}

/// Where a registry's database lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// `DIR/registry.sqlite`, the embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://...`).
    Postgres(String),
}

impl Database {
    /// The database of the registry in `root`: `url` when given (`--database`), else the
    /// SQLite file in `root`.
    pub fn new(root: &Path, url: Option<&str>) -> Result<Database, DbError> {
        let Some(url) = url else {
            return Ok(Database::Sqlite(root.join(DB_FILE)));
        };
        let bad = |reason: &str| DbError::BadUrl {
            url: redact(url),
            reason: reason.to_string(),
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad("only PostgreSQL URLs are supported"));
        }
        url.parse::<postgres::Config>()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Database::Postgres(url.to_string()))
    }

    /// The path, or the URL without its password: for messages.
    pub fn place(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => redact(url),
        }
    }

    /// Whether the database is known to exist already (PostgreSQL's always is).
    fn exists(&self) -> bool {
        match self {
            Database::Sqlite(path) => path.is_file(),
            Database::Postgres(_) => true,
        }
    }
}

/// Shows the place, never a password.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.place())
    }
}

use webcpm_net::http::redact;

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
    /// The description it was published with (untrusted text).
    pub description: Option<String>,
    /// Why it was archived (yanked), when the operator said.
    pub archived_reason: Option<String>,
    /// Who published it (`publishedBy`); `None` for versions added before the registry kept it.
    pub publisher: Option<String>,
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
    /// The package's description: the latest version's, else that of the highest version that
    /// has one and is not yanked.
    pub fn description(&self) -> Option<&str> {
        let latest = self.latest().map(|i| &self.versions[i]);
        // A yanked version's text does not speak for the package.
        latest.and_then(|v| v.description.as_deref()).or_else(|| {
            self.versions
                .iter()
                .rev()
                .filter(|v| !v.archived)
                .find_map(|v| v.description.as_deref())
        })
    }

    /// Whether every word of `query` is in the name or the description, case aside (an empty
    /// query matches every package): the search of the web page and of the GraphQL `search`.
    pub fn matches(&self, query: &str) -> bool {
        let text = format!(
            "{} {}",
            self.name.as_str(),
            self.description().unwrap_or_default()
        )
        .to_lowercase();
        query
            .to_lowercase()
            .split_whitespace()
            .all(|word| text.contains(word))
    }

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

/// What a version says about itself, for people ([`Db::set_about`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct About<'a> {
    pub description: Option<&'a str>,
    pub readme: Option<&'a str>,
    pub requests: Option<&'a Requests>,
    /// Who published it.
    pub publisher: Option<&'a str>,
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
#[derive(Debug)]
pub struct Db {
    conn: Conn,
    place: String,
}

/// The columns of `Db::package`'s query, in its order.
const VERSION_COLUMNS: &str = "version, archived, published_at, v2_sha256, v2_size, v2_manifest,
     v3_sha256, v3_size, v3_manifest, only_format, description, archived_reason, published_by";

/// Packages joined with their versions: [`VERSION_COLUMNS`] of `v`, then the package's name,
/// ordered by name; `filter` is a `WHERE` clause or nothing.
fn packages_query(filter: &str) -> String {
    let columns: Vec<String> = VERSION_COLUMNS
        .split(',')
        .map(|c| format!("v.{}", c.trim()))
        .collect();
    format!(
        "SELECT {}, p.name FROM packages p LEFT JOIN versions v ON v.package = p.name {filter}
         ORDER BY p.name, v.major, v.minor, v.patch, v.pre",
        columns.join(", ")
    )
}

/// Reads one `versions` row of [`VERSION_COLUMNS`] and checks every value; a bad one is a
/// corrupt database that names the package and version.
fn version_record(row: &Row, name: &PackageName, place: &str) -> Result<VersionRecord, DbError> {
    let text = row.text(0).unwrap_or_default();
    let corrupt = |what: String| DbError::Corrupt {
        place: place.to_string(),
        what: format!("{name}@{text}: {what}"),
    };
    let blob = |at: usize| {
        let hash = row.text(at).map_err(|e| corrupt(e.to_string()))?;
        let size = row.int(at + 1).map_err(|e| corrupt(e.to_string()))?;
        Ok::<_, DbError>(BlobRecord {
            sha256: hash.parse().map_err(|e| corrupt(format!("{e}")))?,
            size: u64::try_from(size).map_err(|_| corrupt(format!("negative size {size}")))?,
            manifest: row.text(at + 2).map_err(|e| corrupt(e.to_string()))?,
        })
    };
    let only = match row.opt_text(9).map_err(|e| corrupt(e.to_string()))? {
        None => None,
        Some(w) => Some(w.parse().map_err(|_| corrupt(format!("format `{w}`")))?),
    };
    Ok(VersionRecord {
        version: semver::Version::parse(&text).map_err(|e| corrupt(format!("version: {e}")))?,
        archived: row.flag(1).map_err(|e| corrupt(e.to_string()))?,
        broken: false,
        published_at: row.int(2).map_err(|e| corrupt(e.to_string()))?,
        v2: blob(3)?,
        v3: blob(6)?,
        only,
        description: row.opt_text(10).map_err(|e| corrupt(e.to_string()))?,
        archived_reason: row.opt_text(11).map_err(|e| corrupt(e.to_string()))?,
        publisher: row.opt_text(12).map_err(|e| corrupt(e.to_string()))?,
    })
}

impl Db {
    /// Opens the database, creating it when missing (a SQLite file's directory must exist),
    /// and brings its schema up to date.
    pub fn open(database: &Database) -> Result<Db, DbError> {
        let mut db = Self::connect(database)?;
        match migrations::migrate(&mut db.conn).map_err(db.sql())? {
            migrations::Migrated::UpToDate => Ok(db),
            migrations::Migrated::TooNew { found, known } => Err(DbError::TooNew {
                place: db.place,
                found,
                known,
            }),
        }
    }

    /// Connects to a database whose schema is known to be up to date (a pool's second
    /// connection): no migration.
    pub fn connect(database: &Database) -> Result<Db, DbError> {
        let place = database.place();
        let open = |source| DbError::Open {
            place: place.clone(),
            source,
        };
        let conn = match database {
            Database::Sqlite(path) => Conn::Sqlite(open_sqlite(path).map_err(|e| open(e.into()))?),
            Database::Postgres(url) => Conn::postgres(
                postgres::Client::connect(url, postgres::NoTls).map_err(|e| open(e.into()))?,
            ),
        };
        Ok(Db { conn, place })
    }

    /// Opens the database if it exists; `None` for a registry root without one.
    pub fn open_existing(database: &Database) -> Result<Option<Db>, DbError> {
        if !database.exists() {
            return Ok(None);
        }
        Self::open(database).map(Some)
    }

    /// The connection, for the table groups kept in their own files (`tokens.rs`, `web.rs`,
    /// the rollout tables).
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// The file or the URL (without its password), for messages.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Turns a failed statement into this database's error, naming it.
    pub fn sql(&self) -> impl Fn(SqlError) -> DbError + use<> {
        let place = self.place.clone();
        move |source| DbError::Sql {
            place: place.clone(),
            source,
        }
    }

    /// Whether `name@version` is in the registry.
    pub fn version_exists(
        &mut self,
        name: &PackageName,
        version: &semver::Version,
    ) -> Result<bool, DbError> {
        let sql = self.sql();
        self.conn
            .query_opt(
                "SELECT 1 FROM versions WHERE package = $1 AND version = $2",
                args![name.as_str(), version.to_string()],
            )
            .map(|row| row.is_some())
            .map_err(sql)
    }

    /// Records a version, in one transaction. Both blobs must already be in place. Without
    /// `force`, a version that exists (even one a concurrent writer inserted a moment ago) is
    /// left as it is.
    pub fn publish(
        &mut self,
        name: &PackageName,
        version: &semver::Version,
        v2: &BlobRecord,
        v3: &BlobRecord,
        only: Option<WebcVersion>,
        force: bool,
    ) -> Result<Published, DbError> {
        let sql = self.sql();
        let now = unix_now();
        let text = version.to_string();
        let values = args![
            name.as_str(),
            text.as_str(),
            clamp_i64(version.major),
            clamp_i64(version.minor),
            clamp_i64(version.patch),
            version.pre.as_str(),
            now,
            v2.sha256.hex(),
            clamp_i64(v2.size),
            v2.manifest.as_str(),
            v3.sha256.hex(),
            clamp_i64(v3.size),
            v3.manifest.as_str(),
            only.map(WebcVersion::as_str),
        ];
        let on_conflict = if force {
            "DO UPDATE SET
                 archived = 0, published_at = excluded.published_at,
                 v2_sha256 = excluded.v2_sha256, v2_size = excluded.v2_size,
                 v2_manifest = excluded.v2_manifest, v3_sha256 = excluded.v3_sha256,
                 v3_size = excluded.v3_size, v3_manifest = excluded.v3_manifest,
                 only_format = excluded.only_format"
        } else {
            "DO NOTHING"
        };
        let insert = format!(
            "INSERT INTO versions (package, version, major, minor, patch, pre, archived,
                 published_at, v2_sha256, v2_size, v2_manifest, v3_sha256, v3_size, v3_manifest,
                 only_format)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (package, version) {on_conflict}"
        );
        self.conn
            .transaction(|tx| {
                let existed = tx
                    .query_opt(
                        "SELECT 1 FROM versions WHERE package = $1 AND version = $2",
                        args![name.as_str(), text.as_str()],
                    )?
                    .is_some();
                tx.execute(
                    "INSERT INTO packages (name, created_at) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    args![name.as_str(), now],
                )?;
                let written = tx.execute(&insert, values)?;
                Ok(match (written, existed) {
                    (0, _) => Published::AlreadyExists,
                    (_, true) => Published::Replaced,
                    (_, false) => Published::Inserted,
                })
            })
            .map_err(sql)
    }

    /// Records what a version says about itself, for people: its description, readme and what
    /// its commands ask for (as JSON).
    pub fn set_about(
        &mut self,
        name: &PackageName,
        version: &semver::Version,
        about: &About<'_>,
    ) -> Result<(), DbError> {
        let requests = about
            .requests
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        let sql = self.sql();
        self.conn
            .execute(
                "UPDATE versions SET description = $3, readme = $4, requests = $5, published_by = $6
                 WHERE package = $1 AND version = $2",
                args![
                    name.as_str(),
                    version.to_string(),
                    about.description,
                    about.readme,
                    requests,
                    about.publisher
                ],
            )
            .map(drop)
            .map_err(sql)
    }

    /// Records when a version was published (a copy keeps its first registry's time).
    pub fn set_published_at(
        &mut self,
        name: &PackageName,
        version: &semver::Version,
        at: i64,
    ) -> Result<(), DbError> {
        let sql = self.sql();
        self.conn
            .execute(
                "UPDATE versions SET published_at = $3 WHERE package = $1 AND version = $2",
                args![name.as_str(), version.to_string(), at],
            )
            .map(drop)
            .map_err(sql)
    }

    /// Sets a version's archived flag, with the reason (kept while archived: archiving again
    /// without one keeps it); `false` when there is no such version.
    pub fn set_archived(
        &mut self,
        name: &PackageName,
        version: &semver::Version,
        archived: bool,
        reason: Option<&str>,
    ) -> Result<bool, DbError> {
        let sql = self.sql();
        // Un-archiving clears the reason; archiving without one keeps the one said before.
        let (clear, reason) = (!archived, reason.filter(|_| archived));
        let n = self
            .conn
            .execute(
                "UPDATE versions SET archived = $3,
                   archived_reason = CASE WHEN $5 = 1 THEN NULL ELSE COALESCE($4, archived_reason) END
                 WHERE package = $1 AND version = $2",
                args![name.as_str(), version.to_string(), archived, reason, clear],
            )
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// A package with all its versions (archived ones too), or `None` when it is unknown: one
    /// statement, the resolve path's only one.
    pub fn package(&mut self, name: &PackageName) -> Result<Option<PackageRecord>, DbError> {
        let sql = self.sql();
        let rows = self
            .conn
            .query(&packages_query("WHERE p.name = $1"), args![name.as_str()])
            .map_err(&sql)?;
        Ok(self.records(&rows)?.into_iter().next())
    }

    /// The packages that match `query` ([`PackageRecord::matches`]), by name, from one
    /// statement.
    pub fn search(&mut self, query: &str) -> Result<Vec<PackageRecord>, DbError> {
        let sql = self.sql();
        let rows = self.conn.query(&packages_query(""), &[]).map_err(&sql)?;
        let mut found = self.records(&rows)?;
        found.retain(|p| p.matches(query));
        Ok(found)
    }

    /// The rows of [`packages_query`] as packages, in their order: a package without versions
    /// has one row whose version columns are empty. A name that does not parse is left out.
    fn records(&self, rows: &[Row]) -> Result<Vec<PackageRecord>, DbError> {
        let name_at = VERSION_COLUMNS.split(',').count();
        let mut out: Vec<PackageRecord> = Vec::new();
        for row in rows {
            let Some(name) = row.text(name_at).ok().and_then(|t| t.parse().ok()) else {
                continue;
            };
            if out.last().is_none_or(|p| p.name != name) {
                out.push(PackageRecord {
                    name,
                    versions: Vec::new(),
                });
            }
            if matches!(row.0.first(), Some(sql::Val::Null)) {
                continue;
            }
            let record = out.last_mut().expect("pushed above");
            let version = version_record(row, &record.name, &self.place)?;
            record.versions.push(version);
        }
        for p in &mut out {
            p.versions.sort_by(|a, b| a.version.cmp(&b.version));
        }
        Ok(out)
    }

    /// Every (package, format) that offers the blob `digest` (for the fault rules).
    pub fn blob_owners(
        &mut self,
        digest: &Sha256Digest,
    ) -> Result<Vec<(PackageName, WebcVersion)>, DbError> {
        let sql = self.sql();
        let rows = self
            .conn
            .query(
                "SELECT package, 'v2' FROM versions WHERE v2_sha256 = $1
                 UNION SELECT package, 'v3' FROM versions WHERE v3_sha256 = $1",
                args![digest.hex()],
            )
            .map_err(sql)?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.text(0).ok()?.parse().ok()?, r.text(1).ok()?.parse().ok()?)))
            .collect())
    }
}

/// Opens a SQLite file with the registry's settings: a busy timeout, foreign keys, WAL.
fn open_sqlite(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    Ok(conn)
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

    /// The statements SQLite runs for `work`, as its trace sees them.
    fn statements(db: &mut Db, work: impl FnOnce(&mut Db)) -> Vec<String> {
        use rusqlite::trace::{TraceEvent, TraceEventCodes};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let sql::Conn::Sqlite(conn) = db.conn() else {
            unreachable!("a SQLite database")
        };
        let trace = move |e: TraceEvent<'_>| {
            if let TraceEvent::Stmt(_, text) = e {
                sink.lock().unwrap().push(text.to_string());
            }
        };
        conn.trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(trace))
            .unwrap();
        work(db);
        let sql::Conn::Sqlite(conn) = db.conn() else {
            unreachable!()
        };
        conn.trace_v2(TraceEventCodes::empty(), None::<fn(TraceEvent<'_>)>)
            .unwrap();
        seen.lock().unwrap().clone()
    }

    #[test]
    fn a_resolve_and_a_search_are_one_statement_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&Database::new(dir.path(), None).unwrap()).unwrap();
        for (name, v) in [("ns/a", "1.0.0"), ("ns/a", "1.1.0"), ("ns/b", "2.0.0")] {
            let (name, v) = (name.parse().unwrap(), semver::Version::parse(v).unwrap());
            db.publish(&name, &v, &blob(1), &blob(2), None, false)
                .unwrap();
        }
        let a: PackageName = "ns/a".parse().unwrap();
        let mut found = None;
        let ran = statements(&mut db, |db| found = db.package(&a).unwrap());
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert_eq!(found.unwrap().versions.len(), 2);
        let missing: PackageName = "ns/none".parse().unwrap();
        let ran = statements(&mut db, |db| {
            assert!(db.package(&missing).unwrap().is_none())
        });
        assert_eq!(ran.len(), 1, "{ran:?}");
        let mut all = Vec::new();
        let ran = statements(&mut db, |db| all = db.search("").unwrap());
        assert_eq!(ran.len(), 1, "{ran:?}");
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ns/a", "ns/b"]);
    }

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
        let database = Database::new(dir.path(), None).unwrap();
        let mut db = Db::open(&database).unwrap();
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
        assert!(db.set_archived(&name, &v110, true, None).unwrap());
        assert_eq!(db.package(&name).unwrap().unwrap().latest(), Some(1));
        assert!(
            !db.set_archived(&name, &semver::Version::new(9, 0, 0), true, None)
                .unwrap()
        );
        assert!(db.package(&"ns/other".parse().unwrap()).unwrap().is_none());
        drop(db);
        // Reopening runs no migration twice.
        let mut db = Db::open_existing(&database).unwrap().unwrap();
        assert!(db.version_exists(&name, &v110).unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(dir.path(), None).unwrap();
        drop(Db::open(&database).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Db::open(&database),
            Err(DbError::TooNew { found: 99, .. })
        ));
        assert!(
            Db::open_existing(&Database::new(&dir.path().join("nowhere"), None).unwrap())
                .unwrap()
                .is_none()
        );
    }
}
