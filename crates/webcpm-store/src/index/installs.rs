//! The `installs`, `install_members` and `decisions` tables: one row per installed package
//! name, the whole resolved tree it runs with, and why each candidate format won or lost.
//!
//! An install is written whole, in one transaction with what the registry offered
//! ([`Index::record_install`]), and replaces any earlier install of the name; its members and
//! decisions go with it (`ON DELETE CASCADE`). [`Index::repoint`] moves an install to the other
//! format only if it still points where the caller saw it, so a concurrent install always wins.
//! Every change adds an event in the same transaction.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::blobs::mark_used;
use super::distributions::write_release;
use super::events::insert_event;
use super::sql::Semver;
use super::{Index, IndexError, now_ms};
use webcpm_formats::package::{CandidateOutcome, PackageName, Release, Sha256Digest, WebcVersion};

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
    pub outcome: CandidateOutcome,
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
