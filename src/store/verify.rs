//! `cache verify`: re-hashes every blob against the index and looks for what does not belong.
//!
//! - corrupt: a blob whose file has another size or SHA-256 than its row says;
//! - missing: a row whose file is gone;
//! - orphans: files in `blobs/` that no row names, and temporary files in `tmp/` left by
//!   processes that are no longer running. Orphans are removed: they are debris, not damage.

use std::fs;
use std::io::Read;
use std::path::Path;

use sha2::Digest;

use super::{Store, StoreError, io};
use crate::package::Sha256Digest;

/// What `cache verify` found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub checked: u64,
    pub corrupt: u64,
    pub missing: u64,
    pub orphans: u64,
    pub repaired: u64,
    /// One line per problem found.
    #[serde(skip)]
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt == 0 && self.missing == 0
    }
}

/// The SHA-256 and length of a file, read in blocks.
pub fn hash_file(path: &Path) -> std::io::Result<(Sha256Digest, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((Sha256Digest(hasher.finalize().into()), total))
}

/// Whether the process that wrote a temporary file (named `<kind>-<pid>-…`) still runs.
fn writer_alive(name: &str) -> bool {
    let pid = name
        .split('-')
        .nth(1)
        .and_then(|pid| pid.parse::<u32>().ok());
    match pid {
        Some(pid) if pid == std::process::id() => true,
        Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

impl Store {
    /// Checks every blob and removes orphans.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let rows = self.index.blobs()?;
        let mut known = std::collections::BTreeSet::new();
        for row in &rows {
            report.checked += 1;
            let path = self.blob_path(&row.sha256);
            known.insert(path.clone());
            match hash_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report.missing += 1;
                    report
                        .problems
                        .push(format!("missing: {} ({})", row.sha256, path.display()));
                }
                Err(source) => return Err(StoreError::Io { path, source }),
                Ok((digest, size)) if digest != row.sha256 || size != row.size => {
                    report.corrupt += 1;
                    report.problems.push(format!(
                        "corrupt: {} has {size} bytes with SHA-256 {digest}, expected {} bytes",
                        path.display(),
                        row.size
                    ));
                }
                Ok(_) => {}
            }
        }
        let blobs = self.root.join("blobs/sha256");
        for shard in read_dir(&blobs)? {
            for file in read_dir(&shard)? {
                if !known.contains(&file) {
                    report.orphans += 1;
                    remove(&file)?;
                }
            }
        }
        for file in read_dir(&self.root.join("tmp"))? {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !writer_alive(name) {
                report.orphans += 1;
                remove(&file)?;
            }
        }
        Ok(report)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, StoreError> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.path()).map_err(io(dir)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StoreError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn remove(path: &Path) -> Result<(), StoreError> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
