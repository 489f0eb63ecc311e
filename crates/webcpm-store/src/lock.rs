//! Advisory file locks: one on the whole store (shared for everyday commands, exclusive for
//! `cache gc`, `cache clean` and the first creation or migration of the index), and one per
//! download or compile in `locks/`, so that many processes installing the same package fetch and
//! compile it once.
//!
//! Locks are `flock`-style locks on files that are never deleted while the store exists, so two
//! processes always lock the same inode. A wait of more than a second says so on stderr, naming
//! the lock; a wait longer than the timeout is an error.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "timed out after {seconds} s waiting for the lock on {path}; another webcpm is using the store"
    )]
    Timeout { path: PathBuf, seconds: u64 },
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// How long a process waits for a lock before giving up.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Takes a lock on `path` (created if missing), waiting up to `timeout`.
pub(crate) fn acquire(
    path: &Path,
    mode: Mode,
    what: &str,
    timeout: Duration,
) -> Result<FileLock, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let started = Instant::now();
    let mut said = false;
    loop {
        let attempt = match mode {
            Mode::Shared => file.try_lock_shared(),
            Mode::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => return Ok(FileLock { file }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let waited = started.elapsed();
        if waited > timeout {
            return Err(LockError::Timeout {
                path: path.to_path_buf(),
                seconds: timeout.as_secs(),
            });
        }
        if !said && waited > Duration::from_secs(1) {
            tracing::warn!("waiting for lock on {what} ({})", path.display());
            said = true;
        }
        std::thread::sleep(Duration::from_millis(if waited < Duration::from_secs(1) {
            10
        } else {
            100
        }));
    }
}
