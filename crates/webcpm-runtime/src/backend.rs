//! The boundary between webcpm and an engine: a [`Backend`] compiles an atom ahead of time,
//! loads what it compiled, and runs a loaded module. Each backend names its artifacts by an
//! engine hash that includes the backend itself, so two engines never read each other's files.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;

use super::options::{RunError, RunOptions};

/// A module loaded by one backend, ready to run: it holds what its engine needs to run it, so
/// that nothing above the backends tells engines apart.
#[derive(Clone)]
pub struct Module(Arc<dyn Program>);

/// What a backend's loaded module does.
pub(crate) trait Program: Send + Sync {
    /// Runs the program to completion on the calling thread; returns its exit code.
    fn run(&self, options: RunOptions) -> Result<i32, RunError>;
}

impl Module {
    pub(crate) fn new(program: impl Program + 'static) -> Module {
        Module(Arc::new(program))
    }

    /// Runs a command to completion on the calling thread; returns its exit code.
    pub fn run(&self, options: RunOptions) -> Result<i32, RunError> {
        self.0.run(options)
    }
}

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Setup(String),
    #[error("cannot compile atom `{atom}`: {reason}")]
    Compile { atom: String, reason: String },
    #[error(
        "{abi} modules run on Wasmer's runtime, which this webcpm was built without; build it with the cargo feature `wasix`"
    )]
    Unsupported { abi: webcpm_formats::package::Abi },
}

/// Why an artifact was not loaded: each is a cache miss.
#[derive(Debug, thiserror::Error)]
pub enum Miss {
    #[error("no compiled artifact")]
    Absent,
    #[error("compiled artifact {path} has {actual} bytes, {expected} were written")]
    Size {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("compiled artifact {path} is not a precompiled module for this engine: {reason}")]
    Header { path: PathBuf, reason: String },
}

/// One engine: what install and run need from it, and nothing more.
pub trait Backend: Send + Sync {
    /// The engine's name, for `run -v`.
    fn name(&self) -> &'static str;

    /// The compiler it uses, for `run -v` and `list --json`: `cranelift`, `winch` (wasmtime's
    /// baseline), `singlepass` (Wasmer's).
    fn compiler(&self) -> &'static str;

    /// The engine crate's version, for the annotations of shared artifacts.
    fn version(&self) -> &'static str;

    /// The engine's compatibility hash, as the directory name of its artifacts.
    fn engine_hash(&self) -> &str;

    /// Compiles an atom to an artifact's bytes. CPU-heavy: call it on a blocking thread.
    fn precompile(&self, atom: &str, wasm: &[u8]) -> Result<Vec<u8>, EngineError>;

    /// Compiles an atom in memory, for a run without a cached artifact.
    fn compile(&self, atom: &str, wasm: &[u8]) -> Result<Module, EngineError>;

    /// Loads an artifact by memory-mapping it, after cheap checks of its size and header.
    fn load(&self, path: &Path, expected_size: u64) -> Result<Module, Miss>;
}

/// The artifact's size against the one recorded when it was written.
pub(crate) fn check_size(path: &Path, expected: u64) -> Result<(), Miss> {
    let actual = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(_) => return Err(Miss::Absent),
    };
    if actual != expected {
        return Err(Miss::Size {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// Feeds [`std::hash::Hash`] into SHA-256, which, unlike std's `DefaultHasher`, is stable across
/// Rust versions and processes.
struct ShaHasher(sha2::Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the full digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A stable engine hash: the first 16 bytes of the SHA-256 of what `parts` hash to, in hex.
pub(crate) fn engine_hash(parts: impl std::hash::Hash) -> String {
    let mut hasher = ShaHasher(sha2::Sha256::new());
    parts.hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}
