//! The `blobs` and `atoms` tables: every verified file in `blobs/`, and the modules inside it.
//!
//! A blob's row is written by the store once the file is in place ([`Index::insert_blob`]); its
//! manifest and atoms follow once the container has been read ([`Index::record_contents`]), and
//! go with the blob (`ON DELETE CASCADE`). A blob is forgotten only when no install uses it.

use rusqlite::{Connection, Row, params};

use super::sql::lenient;
use super::{Index, IndexError, now_ms};
use webcpm_formats::package::{Abi, Sha256Digest, WebcVersion};

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
    /// Read from its imports; `None` for an atom recorded before ABIs were.
    pub abi: Option<Abi>,
}

/// Marks a blob used at `now`, for least-recently-used eviction.
pub(super) fn mark_used(conn: &Connection, blob: &Sha256Digest, now: i64) -> rusqlite::Result<()> {
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
                    "INSERT OR IGNORE INTO atoms (blob, name, sha256, size, abi)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![blob, atom.name, atom.sha256, atom.size as i64, atom.abi],
                )?;
            }
            Ok(())
        })
    }

    /// Records the ABI of an atom recorded before ABIs were.
    pub fn record_abi(&self, atom: &Sha256Digest, abi: Abi) -> Result<(), IndexError> {
        self.execute(
            "UPDATE atoms SET abi = ?2 WHERE sha256 = ?1",
            params![atom, abi],
        )
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
            "SELECT name, sha256, size, abi FROM atoms WHERE blob = ?1 ORDER BY name",
            [blob],
            |r| {
                let size: i64 = r.get(2)?;
                Ok(AtomRow {
                    name: r.get(0)?,
                    sha256: r.get(1)?,
                    size: size as u64,
                    abi: lenient(r, 3)?,
                })
            },
        )
    }
}
