//! The content-addressed store: verified WebC files named by their SHA-256, and the SQLite index
//! that says what they are and which installs point at them.
//!
//! ```text
//! $WEBCPM_HOME
//!   index.sqlite                  SQLite, WAL, migrations by PRAGMA user_version
//!   blobs/sha256/ab/abcdef…       verified .webc files, read-only, named by their SHA-256
//!   compiled/<engine-hash>/<atom-sha256>.cwasm
//!   volumes/<blob-sha256>/…       a package's files, unpacked once, read-only
//!   tmp/                          partial downloads, same filesystem as blobs/
//!   locks/                        one lock file per download or compile under way
//!   rollout/                      the registry's policy (last good copy) and the report outbox,
//!                                 written by the fleet module (`fleet/source.rs` of webcpm-client)
//!   lock                          advisory lock: shared while in use, exclusive for gc/clean
//! ```
//!
//! Invariants:
//! - a file enters `blobs/` only through [`Store::commit_blob`]: written in `tmp/`, its digest and
//!   size already checked by the caller, fsynced, renamed into place, and only then given its
//!   index row, in one transaction. A reader never sees a half-written blob.
//! - nothing in `blobs/` is written in place; a blob is removed only by gc/clean.
//! - the store never talks to the network: downloads arrive as a [`TempFile`] it handed out.

mod gc;
mod index;
mod lock;
mod verify;
mod volumes;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use gc::GcReport;
pub use index::{
    ArtifactEntry, ArtifactRow, AtomRow, BaselineOnly, BlobEntry, BlobRow, Capability, Decision,
    Event, Index, IndexError, InstallMember, InstallRecord, Installed, Repoint,
};
pub use lock::{FileLock, LockError, Mode as LockMode};
pub use verify::{Orphans, VerifyMode, VerifyReport};

use webcpm_formats::package::{Sha256Digest, WebcVersion};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("blob {digest} is missing from the store ({path}); run `webcpm cache verify --repair`")]
    MissingBlob { digest: Sha256Digest, path: PathBuf },
    #[error(transparent)]
    Lock(#[from] LockError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    compiled_dir: PathBuf,
    /// How many times its file's size a package may unpack to (`store.unpack_ratio`).
    unpack_ratio: u64,
    index: Index,
    /// The store lock, held as long as the store is open.
    _lock: FileLock,
}

impl StoreError {
    /// The disk is full, or a file-size limit was reached.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge)
                || source.raw_os_error() == Some(libc::ENOSPC)
                || source.raw_os_error() == Some(libc::EFBIG))
    }
}

impl Store {
    /// Opens the store at `root`, creating its layout and index when they do not exist, and
    /// migrating the index under the store's exclusive lock.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Store::open_with(root, LockMode::Shared, lock::DEFAULT_TIMEOUT)
    }

    /// Opens an existing store to read only (its index connection is read-only), for the warm
    /// path of `run`; `None` when there is no store yet or its index needs migrating.
    pub fn open_read_only(root: &Path) -> Result<Option<Store>, StoreError> {
        let lock_path = root.join("lock");
        if !lock_path.exists() {
            return Ok(None);
        }
        let held = lock::acquire(
            &lock_path,
            LockMode::Shared,
            "the store",
            lock::DEFAULT_TIMEOUT,
        )?;
        let Some(index) = Index::open_read_only(&root.join("index.sqlite"))? else {
            return Ok(None);
        };
        Ok(Some(Store {
            root: root.to_path_buf(),
            compiled_dir: root.join("compiled"),
            unpack_ratio: webcpm_formats::container::UnpackLimits::DEFAULT_RATIO,
            index,
            _lock: held,
        }))
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.index.is_read_only()
    }

    /// Opens the store for `cache gc` and `cache clean`: no other process uses it meanwhile.
    pub fn open_exclusive(root: &Path) -> Result<Store, StoreError> {
        Store::open_with(root, LockMode::Exclusive, lock::DEFAULT_TIMEOUT)
    }

    /// Opens the store exclusively if no other process is using it right now; `None` if one is.
    pub fn try_open_exclusive(root: &Path) -> Result<Option<Store>, StoreError> {
        match Store::open_with(root, LockMode::Exclusive, std::time::Duration::ZERO) {
            Ok(store) => Ok(Some(store)),
            Err(StoreError::Lock(LockError::Timeout { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_with(
        root: &Path,
        mode: LockMode,
        timeout: std::time::Duration,
    ) -> Result<Store, StoreError> {
        for dir in ["blobs/sha256", "compiled", "volumes", "tmp", "locks"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io(&path))?;
        }
        let lock_path = root.join("lock");
        let index_path = root.join("index.sqlite");
        let what = "the store";
        let mut held = lock::acquire(&lock_path, mode, what, timeout)?;
        let index = match Index::open_current(&index_path)? {
            Some(index) => index,
            None => {
                // Creation and migration happen once, under the exclusive lock: processes that
                // start together on an empty home wait here for the first one.
                drop(held);
                let exclusive =
                    lock::acquire(&lock_path, LockMode::Exclusive, what, lock::DEFAULT_TIMEOUT)?;
                Index::open(&index_path)?;
                drop(exclusive);
                held = lock::acquire(&lock_path, mode, what, timeout)?;
                Index::open(&index_path)?
            }
        };
        Ok(Store {
            root: root.to_path_buf(),
            compiled_dir: root.join("compiled"),
            unpack_ratio: webcpm_formats::container::UnpackLimits::DEFAULT_RATIO,
            index,
            _lock: held,
        })
    }

    /// Takes the lock that one download of `digest` holds, so that processes installing the
    /// same package download it once. Blocks: call it on a blocking thread.
    pub fn lock_blob(&self, digest: &Sha256Digest) -> Result<FileLock, StoreError> {
        let path = self
            .root
            .join("locks")
            .join(format!("blob-{}", digest.hex()));
        Ok(lock::acquire(
            &path,
            LockMode::Exclusive,
            &format!("the download of {digest}"),
            lock::DEFAULT_TIMEOUT,
        )?)
    }

    /// Takes the lock of one compile of `atom` by engine `engine`.
    pub fn lock_artifact(&self, engine: &str, atom: &Sha256Digest) -> Result<FileLock, StoreError> {
        let path = self
            .root
            .join("locks")
            .join(format!("cwasm-{engine}-{}", atom.hex()));
        Ok(lock::acquire(
            &path,
            LockMode::Exclusive,
            &format!("the compile of atom {atom}"),
            lock::DEFAULT_TIMEOUT,
        )?)
    }

    /// Opens the store only if it exists: read-only commands on a new home find nothing rather
    /// than creating a store.
    pub fn open_existing(root: &Path) -> Result<Option<Store>, StoreError> {
        if root.join("index.sqlite").exists() {
            Store::open(root).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This machine's installation id: random, created once, kept in the index. The rollout
    /// cohort of every package is derived from it.
    pub fn installation_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.index.meta("installation_id")? {
            return Ok(id);
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
            path: self.root.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(self
            .index
            .meta_init("installation_id", &hex::encode(bytes))?)
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Where a blob with this digest lives.
    pub fn blob_path(&self, digest: &Sha256Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("blobs/sha256").join(&hex[..2]).join(&hex)
    }

    /// The blob, if the index knows it and its file is there with the indexed size.
    pub fn blob(&self, digest: &Sha256Digest) -> Result<Option<BlobRow>, StoreError> {
        let Some(row) = self.index.blob(digest)? else {
            return Ok(None);
        };
        match fs::metadata(self.blob_path(digest)) {
            Ok(meta) if meta.len() == row.size => Ok(Some(row)),
            _ => Ok(None),
        }
    }

    /// A new temporary file in `tmp/`, removed on drop unless committed.
    pub fn temp_file(&self) -> Result<TempFile, StoreError> {
        self.temp_file_for("dl")
    }

    /// A temporary file whose name says what it is for and which process writes it
    /// (`<kind>-<pid>-…`), so that `cache verify` can tell debris from work in progress.
    fn temp_file_for(&self, kind: &str) -> Result<TempFile, StoreError> {
        let dir = self.root.join("tmp");
        let file = tempfile::Builder::new()
            .prefix(&format!("{kind}-{}-", std::process::id()))
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(io(&dir))?;
        Ok(TempFile { file })
    }

    /// Moves a verified temporary file into `blobs/` and records it. The caller has checked
    /// that its content has `digest` and `size` bytes and is WebC `webc`.
    pub fn commit_blob(
        &self,
        temp: TempFile,
        digest: &Sha256Digest,
        size: u64,
        webc: WebcVersion,
    ) -> Result<PathBuf, StoreError> {
        let target = self.blob_path(digest);
        let parent = target.parent().expect("blob paths have a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        persist_read_only(temp, &target)?;
        self.index.insert_blob(digest, size, webc)?;
        Ok(target)
    }
}

impl Store {
    /// Where the artifact of `atom` compiled by engine `engine` lives.
    pub fn artifact_path(&self, engine: &str, atom: &Sha256Digest) -> PathBuf {
        self.compiled_dir
            .join(engine)
            .join(format!("{}.cwasm", atom.hex()))
    }

    /// Takes the lock that the one optimizer of the store holds (see
    /// the optimizer of compiled code). With `wait: false`, `None` at once when another holds it.
    pub fn lock_optimizer(&self, wait: bool) -> Result<Option<FileLock>, StoreError> {
        let path = self.root.join("locks").join("optimizer");
        let timeout = match wait {
            true => lock::DEFAULT_TIMEOUT,
            false => std::time::Duration::ZERO,
        };
        match lock::acquire(&path, LockMode::Exclusive, "the optimizer", timeout) {
            Ok(lock) => Ok(Some(lock)),
            Err(LockError::Timeout { .. }) if !wait => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes an artifact that another replaces: its row first, then its file (a process that
    /// has it mapped keeps running; one that finds it gone takes the miss path).
    pub fn remove_artifact(&self, engine: &str, atom: &Sha256Digest) -> Result<(), StoreError> {
        self.index.forget_artifact(engine, atom)?;
        let path = self.artifact_path(engine, atom);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Keeps compiled artifacts in `dir` instead of the store's `compiled/`.
    pub fn set_compiled_dir(&mut self, dir: PathBuf) {
        self.compiled_dir = dir;
    }

    /// Lets packages unpack to `ratio` times their file's size (see
    /// [`webcpm_formats::container::UnpackLimits`]).
    pub fn set_unpack_ratio(&mut self, ratio: u64) {
        self.unpack_ratio = ratio;
    }

    /// What a package of `size` bytes may unpack to.
    pub fn unpack_limits(&self, size: u64) -> webcpm_formats::container::UnpackLimits {
        webcpm_formats::container::UnpackLimits::for_size(size, self.unpack_ratio)
    }

    /// Writes an artifact atomically (temporary file, fsync, rename) and records it.
    pub fn commit_artifact(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        bytes: &[u8],
    ) -> Result<PathBuf, StoreError> {
        let mut temp = self.artifact_temp(engine, atom)?;
        temp.write_all(bytes)?;
        let (size, sha256) = (bytes.len() as u64, Sha256Digest::of(bytes));
        self.commit_artifact_temp(engine, atom, temp, size, sha256)
    }

    /// A temporary file beside the artifact of `atom` for `engine`, for a writer that streams
    /// it (a pull from the shared cache); [`Store::commit_artifact_temp`] makes it the artifact.
    pub fn artifact_temp(&self, engine: &str, atom: &Sha256Digest) -> Result<TempFile, StoreError> {
        let target = self.artifact_path(engine, atom);
        let parent = target.parent().expect("artifact paths have a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        // Written beside its target, so that the rename stays on one filesystem even when
        // compiled code lives elsewhere (`compile.directory`).
        let file = tempfile::Builder::new()
            .prefix(&format!(".cw-{}-", std::process::id()))
            .tempfile_in(parent)
            .map_err(io(parent))?;
        Ok(TempFile { file })
    }

    /// Makes a finished temporary file (of `size` bytes with this SHA-256) the artifact of
    /// `atom` for `engine`, and records it.
    pub fn commit_artifact_temp(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        temp: TempFile,
        size: u64,
        sha256: Sha256Digest,
    ) -> Result<PathBuf, StoreError> {
        let target = self.artifact_path(engine, atom);
        // An old row (a recompile after a bad artifact) goes before the file is replaced: a
        // crash in between leaves a file without a row, which is debris, not damage.
        self.index.forget_artifact(engine, atom)?;
        persist_read_only(temp, &target)?;
        self.index
            .record_artifact(engine, atom, Ok((size, sha256)))?;
        Ok(target)
    }
}

/// Makes a finished temporary file a read-only store file at `target`: fsync, read-only, rename,
/// and fsync of the directory, so that the rename survives a crash.
fn persist_read_only(temp: TempFile, target: &Path) -> Result<(), StoreError> {
    let TempFile { file } = temp;
    file.as_file().sync_all().map_err(io(file.path()))?;
    let mut perms = file
        .as_file()
        .metadata()
        .map_err(io(file.path()))?
        .permissions();
    perms.set_readonly(true);
    fs::set_permissions(file.path(), perms).map_err(io(file.path()))?;
    file.persist(target).map_err(|e| StoreError::Io {
        path: target.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(target.parent().expect("store files have a parent"));
    Ok(())
}

/// Makes a rename durable. Best effort: not every filesystem lets a directory be fsynced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A file being downloaded into the store's `tmp/`.
#[derive(Debug)]
pub struct TempFile {
    file: tempfile::NamedTempFile,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// A second handle on the file, for async writers.
    pub fn handle(&self) -> Result<File, StoreError> {
        self.file
            .as_file()
            .try_clone()
            .map_err(io(self.file.path()))
    }

    /// Empties the file, for a download that must start again.
    pub fn truncate(&mut self) -> Result<(), StoreError> {
        let path = self.file.path().to_path_buf();
        self.file.as_file().set_len(0).map_err(io(&path))?;
        use std::io::Seek;
        self.file
            .as_file_mut()
            .seek(std::io::SeekFrom::Start(0))
            .map_err(io(&path))?;
        Ok(())
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.file.path().to_path_buf();
        self.file.write_all(bytes).map_err(io(&path))
    }
}
