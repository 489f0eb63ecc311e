//! The `artifacts` table: each atom compiled for an engine, or why compiling it failed.
//!
//! A row is keyed by engine and atom digest, not by blob: two blobs holding the same module share
//! one artifact. A row has a size (and the artifact file's digest, for `cache verify`) when the
//! atom compiled, and an error when it did not; only the compiled ones are listed for gc and
//! verify. `last_used_at` orders least-recently-used eviction.

use std::collections::BTreeSet;

use rusqlite::params;

use super::sql::lenient;
use super::{Index, IndexError, now_ms};
use webcpm_formats::package::Sha256Digest;

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

    /// The atoms compiled by the `baseline` engine and not tried by `optimized` (an optimized
    /// compile that failed is not tried again but by `install --refresh`): what the optimizer
    /// has to do. Each with one blob that holds it and its name there.
    pub fn baseline_only(
        &self,
        baseline: &str,
        optimized: &str,
    ) -> Result<Vec<BaselineOnly>, IndexError> {
        self.rows(
            "SELECT b.atom, MIN(a.blob), MIN(a.name) FROM artifacts b
             JOIN atoms a ON a.sha256 = b.atom
             WHERE b.engine = ?1 AND b.size IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM artifacts o
                 WHERE o.engine = ?2 AND o.atom = b.atom)
             GROUP BY b.atom ORDER BY b.atom",
            params![baseline, optimized],
            |r| {
                Ok(BaselineOnly {
                    atom: r.get(0)?,
                    blob: r.get(1)?,
                    name: r.get(2)?,
                })
            },
        )
    }
}

/// An atom that runs on baseline code only, and where to find its WebAssembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineOnly {
    pub atom: Sha256Digest,
    pub blob: Sha256Digest,
    pub name: String,
}
