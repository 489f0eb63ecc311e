//! `cache verify`: re-hashes every blob and compiled artifact against the index, compares every
//! unpacked volume with its package, and looks for what does not belong.
//!
//! - corrupt: a file whose size or SHA-256 is not what its row says; unpacked volumes that
//!   differ from their package (a file changed, added or removed, a link re-pointed). Entries
//!   that are only writable (as an older webcpm unpacked them) are reported, not counted, and
//!   made read-only with repair;
//! - missing: a row whose file is gone;
//! - orphans: files in `blobs/` or `compiled/` that no row names, unpacked volumes of blobs the
//!   index does not know, and temporary files in `tmp/` left by processes that no longer run.
//!   Orphans are removed: they are debris, not damage. Only names that the store itself gives
//!   are ever removed ([`naming`]): whatever else sits in its directories, or in a
//!   `compile.directory` shared with other files, is left alone.
//!
//! With repair, what is wrong is removed: a bad artifact and its row (it is compiled again when
//! needed), a bad blob that no install uses and its row, tampered volumes (listed in
//! [`VerifyReport::unpack`], for the caller to unpack again). A bad blob that an install uses
//! keeps its row and is listed in [`VerifyReport::refetch`], for the caller to download again:
//! the store never talks to the network.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::{Store, StoreError, io};
use webcpm_formats::package::Sha256Digest;

/// What `cache verify` found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub checked: u64,
    pub corrupt: u64,
    pub missing: u64,
    pub orphans: u64,
    pub repaired: u64,
    /// One line per problem found.
    pub problems: Vec<String>,
    /// Blobs that installs need and that must be downloaded again.
    #[serde(skip)]
    pub refetch: Vec<Sha256Digest>,
    /// Blobs whose tampered volumes were removed and must be unpacked again.
    #[serde(skip)]
    pub unpack: Vec<Sha256Digest>,
}

impl VerifyReport {
    /// Nothing corrupt or missing is left.
    pub fn is_clean(&self) -> bool {
        self.corrupt + self.missing <= self.repaired
    }
}

/// The SHA-256 and length of a file, read in blocks.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(Sha256Digest, u64)> {
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

/// What checking one file found.
enum Check {
    Good,
    Missing,
    Corrupt(String),
}

fn check(path: &Path, size: u64, sha: Option<&Sha256Digest>) -> Result<Check, StoreError> {
    match hash_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Check::Missing),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Ok((digest, actual)) if actual != size || sha.is_some_and(|s| *s != digest) => {
            Ok(Check::Corrupt(format!(
                "{} has {actual} bytes with SHA-256 {digest}, expected {size} bytes{}",
                path.display(),
                sha.map(|s| format!(" with SHA-256 {s}"))
                    .unwrap_or_default()
            )))
        }
        Ok(_) => Ok(Check::Good),
    }
}

/// What `verify` does about what it finds wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// Report it.
    Check,
    /// Remove it, so that it is downloaded or compiled again.
    Repair,
}

/// Whether files that no row names are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// Remove them: only for a caller that holds the store exclusively.
    Sweep,
    /// Leave them: another process may be between writing a file and writing its row.
    Leave,
}

impl Store {
    /// Checks every blob and artifact and, with [`VerifyMode::Repair`], removes what is wrong
    /// (see the module docs); orphan files go only with [`Orphans::Sweep`].
    pub fn verify(&self, mode: VerifyMode, orphans: Orphans) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut known: BTreeSet<PathBuf> = BTreeSet::new();
        self.verify_blobs(mode, &mut report, &mut known)?;
        self.verify_volumes(mode, &mut report)?;
        self.verify_artifacts(mode, &mut report, &mut known)?;
        self.remove_dead_temporaries(&mut report)?;
        if orphans == Orphans::Sweep {
            self.sweep_orphans(&known, &mut report)?;
        }
        Ok(report)
    }

    fn verify_blobs(
        &self,
        mode: VerifyMode,
        report: &mut VerifyReport,
        known: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        for blob in self.index.blob_entries()? {
            report.checked += 1;
            let path = self.blob_path(&blob.sha256);
            known.insert(path.clone());
            let problem = match check(&path, blob.size, Some(&blob.sha256))? {
                Check::Good => continue,
                Check::Missing => {
                    report.missing += 1;
                    format!("missing: blob {} ({})", blob.sha256, path.display())
                }
                Check::Corrupt(why) => {
                    report.corrupt += 1;
                    format!("corrupt: blob {why}")
                }
            };
            report.problems.push(problem);
            if mode == VerifyMode::Check {
                continue;
            }
            if blob.used {
                // The row stays, for the download that repairs it.
                report.refetch.push(blob.sha256);
            } else {
                self.index.forget_blob(&blob.sha256)?;
                report.repaired += 1;
            }
            remove(&path)?;
            remove(&self.volume_dir(&blob.sha256))?;
        }
        Ok(())
    }

    /// Compares the unpacked volumes of every sound blob with the blob's own files.
    fn verify_volumes(
        &self,
        mode: VerifyMode,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        for blob in self.index.blob_entries()? {
            let dir = self.volume_dir(&blob.sha256);
            if report.refetch.contains(&blob.sha256) || !dir.is_dir() {
                continue;
            }
            let path = self.blob_path(&blob.sha256);
            let Ok(bytes) = webcpm_formats::container::map_file(&path) else {
                continue;
            };
            let limits = self.unpack_limits(blob.size);
            let found = webcpm_formats::container::open_stored(bytes)
                .and_then(|checked| webcpm_formats::container::differences(&checked, &dir, limits));
            report.checked += 1;
            let changed = match found {
                Ok(found) if found.changed.is_empty() => {
                    // The package's own contents, only writable (as an older webcpm unpacked
                    // them): no damage; --repair makes them read-only.
                    if !found.writable.is_empty() {
                        let n = found.writable.len();
                        let blob = blob.sha256;
                        if mode == VerifyMode::Repair {
                            webcpm_formats::container::make_read_only(&found.writable)
                                .map_err(io(&dir))?;
                            report.problems.push(format!(
                                "read-only again: {n} unpacked entries of blob {blob} could be written to"
                            ));
                        } else {
                            report.problems.push(format!(
                                "writable: {n} unpacked entries of blob {blob}; run `webcpm cache verify --repair` to make them read-only"
                            ));
                        }
                    }
                    continue;
                }
                Ok(found) => found.changed,
                Err(e) => vec![format!("cannot compare them: {e}")],
            };
            report.corrupt += 1;
            let more = match changed.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            report.problems.push(format!(
                "tampered: the unpacked files of blob {}: {}{more}",
                blob.sha256, changed[0]
            ));
            if mode == VerifyMode::Repair {
                remove(&dir)?;
                report.unpack.push(blob.sha256);
            }
        }
        Ok(())
    }

    fn verify_artifacts(
        &self,
        mode: VerifyMode,
        report: &mut VerifyReport,
        known: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        for artifact in self.index.artifacts()? {
            report.checked += 1;
            let path = self.artifact_path(&artifact.engine, &artifact.atom);
            known.insert(path.clone());
            let problem = match check(&path, artifact.size, artifact.sha256.as_ref())? {
                Check::Good => continue,
                Check::Missing => {
                    report.missing += 1;
                    format!("missing: compiled artifact {}", path.display())
                }
                Check::Corrupt(why) => {
                    report.corrupt += 1;
                    format!("corrupt: compiled artifact {why}")
                }
            };
            report.problems.push(problem);
            if mode == VerifyMode::Repair {
                self.index
                    .forget_artifact(&artifact.engine, &artifact.atom)?;
                remove(&path)?;
                report.repaired += 1;
            }
        }
        Ok(())
    }

    /// Temporary files of processes that are gone.
    fn remove_dead_temporaries(&self, report: &mut VerifyReport) -> Result<(), StoreError> {
        for file in read_dir(&self.root.join("tmp"))? {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if naming::is_temporary(name) && !writer_alive(name) {
                report.orphans += 1;
                remove(&file)?;
            }
        }
        Ok(())
    }

    /// Files no row names and volumes of unknown blobs: only when no other process can be
    /// writing.
    fn sweep_orphans(
        &self,
        known: &BTreeSet<PathBuf>,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let shards = naming::own(&self.root.join("blobs/sha256"), naming::is_shard)?;
        let engines = naming::own(&self.compiled_dir, naming::is_engine_dir)?;
        let blob_files = shards
            .iter()
            .map(|dir| naming::own(dir, naming::is_digest))
            .collect::<Result<Vec<_>, _>>()?;
        let artifact_files = engines
            .iter()
            .map(|dir| naming::own(dir, naming::is_artifact))
            .collect::<Result<Vec<_>, _>>()?;
        for file in blob_files.iter().chain(&artifact_files).flatten() {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let debris = match name.starts_with('.') {
                // A temporary file beside its artifact, while its writer may still be at work.
                true => !writer_alive(name.trim_start_matches('.')),
                false => !known.contains(file),
            };
            if debris {
                report.orphans += 1;
                remove(file)?;
            }
        }
        for dir in naming::own(&self.root.join("volumes"), naming::is_digest)? {
            let known_blob = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Sha256Digest>().ok())
                .map(|d| self.index.blob(&d))
                .transpose()?
                .flatten()
                .is_some();
            if !known_blob {
                report.orphans += 1;
                remove(&dir)?;
            }
        }
        Ok(())
    }
}

/// The names the store gives what it writes, so that it removes nothing else.
pub(super) mod naming {
    use std::path::{Path, PathBuf};

    use super::{StoreError, read_dir};

    fn hex(name: &str, len: usize) -> bool {
        name.len() == len && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// `blobs/sha256/<2 hex>`.
    pub(crate) fn is_shard(name: &str) -> bool {
        hex(name, 2)
    }

    /// A blob's file or a volume directory: a SHA-256 in hex.
    pub(crate) fn is_digest(name: &str) -> bool {
        hex(name, 64)
    }

    /// `compiled/<engine hash>`: 32 hex digits.
    pub(crate) fn is_engine_dir(name: &str) -> bool {
        hex(name, 32)
    }

    /// `<atom sha256>.cwasm`, or the temporary file it is written to (`.cw-<pid>-…`).
    pub(crate) fn is_artifact(name: &str) -> bool {
        match name.strip_prefix('.') {
            Some(temporary) => temporary.starts_with("cw-") && is_temporary(temporary),
            None => name.strip_suffix(".cwasm").is_some_and(is_digest),
        }
    }

    /// `<kind>-<pid>-…` in `tmp/` (downloads, unpacking, artifacts).
    pub(crate) fn is_temporary(name: &str) -> bool {
        let mut parts = name.splitn(3, '-');
        let kind = parts.next().unwrap_or_default();
        let pid = parts.next().unwrap_or_default();
        matches!(kind, "dl" | "vol" | "cw")
            && !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && parts.next().is_some()
    }

    /// The entries of `dir` whose names pass `own`.
    pub(crate) fn own(dir: &Path, own: fn(&str) -> bool) -> Result<Vec<PathBuf>, StoreError> {
        Ok(read_dir(dir)?
            .into_iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(own))
            .collect())
    }
}

pub(super) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
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

/// Removes a file or a directory tree; what is already gone is fine.
pub(super) fn remove(path: &Path) -> Result<(), StoreError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => make_writable(path).and_then(|_| fs::remove_dir_all(path)),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
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

/// Unpacked volumes are read-only directories; they must be writable to be emptied.
fn make_writable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.file_type()?;
        if meta.is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}
