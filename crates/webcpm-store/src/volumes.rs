//! A blob's unpacked volumes in `volumes/<blob-sha256>/`: made in `tmp/`, moved into place,
//! read-only from then on.

use std::fs;
use std::path::PathBuf;

use super::verify::remove;
use super::{Store, StoreError, io, sync_dir};
use webcpm_formats::package::Sha256Digest;

impl Store {
    /// Where the volumes of a blob are unpacked.
    pub fn volume_dir(&self, blob: &Sha256Digest) -> PathBuf {
        self.root.join("volumes").join(blob.hex())
    }

    /// A new temporary directory in `tmp/`, removed on drop unless committed.
    pub fn temp_dir(&self) -> Result<tempfile::TempDir, StoreError> {
        let dir = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(&format!("vol-{}-", std::process::id()))
            .tempdir_in(&dir)
            .map_err(io(&dir))
    }

    /// Moves an unpacked volume directory into place and makes it read-only. When another
    /// process got there first, its copy (identical: both come from the same verified blob) is
    /// kept.
    pub fn commit_volume_dir(
        &self,
        temp: tempfile::TempDir,
        blob: &Sha256Digest,
    ) -> Result<PathBuf, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let target = self.volume_dir(blob);
        let staged = temp.keep();
        match fs::rename(&staged, &target) {
            Ok(()) => {
                fs::set_permissions(&target, fs::Permissions::from_mode(0o555))
                    .map_err(io(&target))?;
                sync_dir(target.parent().expect("volume dirs have a parent"));
                Ok(target)
            }
            Err(_) if target.is_dir() => {
                remove(&staged)?;
                Ok(target)
            }
            Err(source) => {
                remove(&staged)?;
                Err(StoreError::Io {
                    path: target,
                    source,
                })
            }
        }
    }
}
