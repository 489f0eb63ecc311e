//! The `packages`, `versions` and `distributions` tables: what each registry offered for every
//! version an install resolved, both formats of each, as recorded at install.
//!
//! A version always has one `distributions` row per format: `offered` (with its URL, digest and
//! size), `not_offered`, or `invalid` (with the problem). Rows are replaced, never merged, when a
//! later install sees the registry again. They let rollout and `cache verify --repair` find a
//! format's download without asking the registry what it offered.

use rusqlite::{Connection, params};

use super::sql::{Semver, lenient};
use super::{Index, IndexError};
use webcpm_formats::package::{
    Distribution, Offer, PackageName, Release, Sha256Digest, WebcVersion,
};

impl Index {
    /// Every installed package version (a root or a dependency) whose publisher its install's
    /// registry named: (package, version, publisher). The store's side of the publisher check.
    pub fn installed_publishers(&self) -> Result<Vec<(String, String, String)>, IndexError> {
        self.rows(
            "SELECT DISTINCT v.package, v.version, v.publisher FROM install_members m
             JOIN installs i ON i.package = m.install
             JOIN versions v ON v.registry = i.registry AND v.package = m.package
                 AND v.version = m.version
             WHERE v.publisher IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

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
               AND url IS NOT NULL AND sha256 IS NOT NULL",
            params![registry, package, version.to_string(), webc],
            |r| {
                Ok(Distribution {
                    webc,
                    url: r.get(0)?,
                    sha256: r.get(1)?,
                    // A registry may leave the size out: the SHA-256 is the proof.
                    size: r
                        .get::<_, Option<i64>>(2)?
                        .and_then(|n| u64::try_from(n).ok()),
                    claimed: lenient(r, 3)?,
                    dependencies: Vec::new(),
                    manifest: r.get(4)?,
                    expires_in: None,
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
pub(super) fn write_release(
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
        "INSERT INTO versions (registry, package, version, archived, publisher)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (registry, package, version) DO UPDATE SET archived = excluded.archived,
             publisher = COALESCE(excluded.publisher, publisher)",
        params![registry, name, version, release.archived, release.publisher],
    )?;
    for webc in WebcVersion::ALL {
        let (offer, url, sha, size, claimed, manifest, problem) = match release.offer(webc) {
            Offer::Offered(d) => (
                "offered",
                Some(d.url.as_str()),
                Some(d.sha256),
                d.size.map(|n| n as i64),
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
