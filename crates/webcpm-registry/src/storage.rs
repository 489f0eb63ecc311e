//! Where one registry keeps its state: the root directory (uploads in progress, the policy
//! signing key), the database ([`Database`]: SQLite in the root, or PostgreSQL) and the package
//! files ([`BlobStore`]: the root's `blobs/`, or an OCI registry). `registry serve`, `add`,
//! `archive`, `token` and `rollout` all take `--root`, `--database` (or `WEBCPM_DATABASE_URL`, or
//! `--database-file`), `--blobs` and `--policy-keys` and build one.

use std::path::{Path, PathBuf};

use super::blobs::BlobStore;
use super::db::{Database, DbError};
use crate::oci::OciError;

#[derive(Debug, Clone)]
pub struct Storage {
    pub root: PathBuf,
    pub database: Database,
    pub blobs: BlobStore,
    /// The rollout policy's keys (see `fleet/keys.rs`): the root unless `--policy-keys`.
    pub keys: PathBuf,
}

/// Why `--database` or `--blobs` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("cannot read the secret file {path}: {source}; check the path and its permissions")]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Storage {
    /// The registry in `root`, with its database and blobs elsewhere when the URLs say so.
    pub fn new(
        root: &Path,
        database: Option<&str>,
        blobs: Option<&str>,
    ) -> Result<Storage, StorageError> {
        Ok(Storage {
            root: root.to_path_buf(),
            database: Database::new(root, database)?,
            blobs: BlobStore::new(root, blobs)?,
            keys: root.to_path_buf(),
        })
    }

    /// Whether the database and the files are both in the root.
    pub fn is_local(&self) -> bool {
        matches!(self.database, Database::Sqlite(_)) && matches!(self.blobs, BlobStore::Dir { .. })
    }

    /// Everything in `root`, the embedded default.
    pub fn local(root: &Path) -> Storage {
        Storage::new(root, None, None).expect("the local storage needs no URL")
    }
}
