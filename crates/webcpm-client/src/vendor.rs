//! A lockfile's packages as plain files, for machines without the network (air gaps, CI
//! caches): `webcpm vendor DIR` downloads and verifies every locked package in both formats
//! and writes each as `DIR/<sha256>.webc`, beside a copy of the lockfile; `install --locked F
//! --from DIR` puts those files in the store, each checked against the lockfile's SHA-256 and
//! as a download is checked, and then installs with no network at all.

use std::path::{Path, PathBuf};

use crate::fetch::FetchError;
use crate::install::Installer;
use crate::local::{self, LocalError};
use crate::lockfile::{LockError, Lockfile};
use crate::package::{Distribution, Offer, Sha256Digest};
use crate::store::Store;

/// Why vendoring or an install from vendored files failed.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{label}: {source}")]
    Fetch {
        label: String,
        #[source]
        source: FetchError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not the file the lockfile names: its SHA-256 is {found}, not {expected}; vendor it again"
    )]
    Mismatch {
        path: PathBuf,
        expected: Sha256Digest,
        found: Sha256Digest,
    },
    #[error("{path} is missing: {label} is not vendored there; run `webcpm vendor` again")]
    Missing { path: PathBuf, label: String },
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// What `vendor` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Vendored {
    pub files: usize,
    pub bytes: u64,
    pub lockfile: PathBuf,
}

/// The file a distribution is vendored as.
pub fn file_of(dir: &Path, sha256: &Sha256Digest) -> PathBuf {
    dir.join(format!("{}.webc", sha256.hex()))
}

/// Every distribution the lockfile names (both formats of every package), with a label.
fn distributions(lock: &Lockfile) -> Result<Vec<(Distribution, String)>, LockError> {
    let mut out = Vec::new();
    for release in lock.releases()? {
        for offer in [&release.v2, &release.v3] {
            if let Offer::Offered(d) = offer {
                let label = format!("{}@{} {}", release.name, release.version, d.webc);
                out.push((d.clone(), label));
            }
        }
    }
    Ok(out)
}

/// Downloads (or takes from the store) every locked distribution, verified, and writes it to
/// `dir`, then the lockfile as `dir/webcpm.lock`. Each file is written whole or not at all.
pub async fn vendor(
    installer: &Installer,
    lock: &Lockfile,
    dir: &Path,
) -> Result<Vendored, VendorError> {
    let write = |path: &Path, source| VendorError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write(dir, e))?;
    let mut done = Vendored {
        files: 0,
        bytes: 0,
        lockfile: dir.join("webcpm.lock"),
    };
    for (dist, label) in distributions(lock)? {
        installer
            .fetch_locked(&dist, &label)
            .await
            .map_err(|source| VendorError::Fetch { label, source })?;
        let to = file_of(dir, &dist.sha256);
        let temp = dir.join(format!(".{}.partial", dist.sha256.hex()));
        std::fs::copy(installer.store.blob_path(&dist.sha256), &temp)
            .and_then(|_| std::fs::rename(&temp, &to))
            .map_err(|e| write(&to, e))?;
        done.files += 1;
        done.bytes += std::fs::metadata(&to).map_err(|e| write(&to, e))?.len();
    }
    let lock_temp = dir.join(".webcpm.lock.partial");
    std::fs::write(&lock_temp, lock.to_text())
        .and_then(|_| std::fs::rename(&lock_temp, &done.lockfile))
        .map_err(|e| write(&done.lockfile, e))?;
    Ok(done)
}

/// Puts the vendored files of every locked distribution into the store, each checked as a
/// download is and against the lockfile's SHA-256; how many were added. A distribution whose
/// file is missing is an error unless the store holds it already.
pub fn import(store: &Store, lock: &Lockfile, dir: &Path) -> Result<usize, VendorError> {
    let mut added = 0;
    for (dist, label) in distributions(lock)? {
        if store.blob(&dist.sha256).ok().flatten().is_some() {
            continue;
        }
        let path = file_of(dir, &dist.sha256);
        if !path.is_file() {
            return Err(VendorError::Missing { path, label });
        }
        let bytes = std::fs::read(&path).map_err(|source| LocalError::Read {
            path: path.clone(),
            source,
        })?;
        let bytes = bytes::Bytes::from(bytes);
        let found = Sha256Digest::of(&bytes);
        if found != dist.sha256 {
            return Err(VendorError::Mismatch {
                path,
                expected: dist.sha256,
                found,
            });
        }
        local::store_container(store, bytes, &label)?;
        added += 1;
    }
    Ok(added)
}
