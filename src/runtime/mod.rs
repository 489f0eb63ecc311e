//! The runtime: wasmtime, compiling each atom once ahead of time and loading the compiled
//! artifact by memory-mapping it at every run.
//!
//! Artifacts live in the store as `compiled/<engine-hash>/<atom-sha256>.cwasm`, where the engine
//! hash is the SHA-256 of [`wasmtime::Engine::precompile_compatibility_hash`] (wasmtime's
//! version, the target, the compiler settings): an engine never sees an artifact another engine
//! wrote. Loading checks the artifact's size (recorded when it was written) and its header, then
//! maps it with [`wasmtime::Module::deserialize_file`]; any failure there is a cache miss that the
//! caller answers by compiling again. Re-hashing artifacts is `cache verify`'s job, not every
//! run's.
//!
//! WASI preview 1 commands run with their arguments, their environment, the inherited stdio and
//! the package's volumes mounted read-only. The program's `proc_exit` code is returned as is.

mod wasi;

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::Digest;

pub use wasi::{Limits, Mount, RunError, RunOptions};

/// Where and how much compiled code is kept. A library user builds it in code:
/// `CacheConfig::default().with_directory(dir).with_capacity(bytes)` or
/// `CacheConfig::disabled()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    enabled: bool,
    directory: Option<PathBuf>,
    capacity: Option<u64>,
}

impl Default for CacheConfig {
    /// Enabled, in the store's `compiled/` directory, with no capacity limit.
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            directory: None,
            capacity: None,
        }
    }
}

impl CacheConfig {
    /// No compiled code is kept: every run compiles.
    pub fn disabled() -> Self {
        CacheConfig {
            enabled: false,
            directory: None,
            capacity: None,
        }
    }

    /// Keep compiled code in `directory` instead of the store's `compiled/`.
    pub fn with_directory(mut self, directory: impl Into<PathBuf>) -> Self {
        self.directory = Some(directory.into());
        self
    }

    /// At most this many bytes of compiled code; least recently used artifacts go first.
    pub fn with_capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn directory(&self) -> Option<&Path> {
        self.directory.as_deref()
    }

    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }
}

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Setup(String),
    #[error("cannot compile atom `{atom}`: {reason}")]
    Compile { atom: String, reason: String },
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

/// The engine, configured once per process.
#[derive(Clone)]
pub struct Runtime {
    engine: wasmtime::Engine,
    engine_hash: String,
    limits: Limits,
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

impl Runtime {
    pub fn new(limits: Limits) -> Result<Runtime, EngineError> {
        let mut config = wasmtime::Config::new();
        config.parallel_compilation(true);
        // Ctrl-C and timeouts stop a program through epochs.
        config.epoch_interruption(true);
        // Real toolchains emit these; without them real modules fail to load.
        config.wasm_threads(true);
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        let mut hasher = ShaHasher(sha2::Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..16]);
        Ok(Runtime {
            engine,
            engine_hash,
            limits,
        })
    }

    /// The engine's compatibility hash, as the directory name of its artifacts.
    pub fn engine_hash(&self) -> &str {
        &self.engine_hash
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Compiles an atom to an artifact's bytes. CPU-heavy: call it on a blocking thread.
    pub fn precompile(&self, atom: &str, wasm: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.engine
            .precompile_module(wasm)
            .map_err(|e| EngineError::Compile {
                atom: atom.to_string(),
                reason: format!("{e:#}"),
            })
    }

    /// Compiles an atom in memory, for a run without a cached artifact.
    pub fn compile(&self, atom: &str, wasm: &[u8]) -> Result<wasmtime::Module, EngineError> {
        wasmtime::Module::new(&self.engine, wasm).map_err(|e| EngineError::Compile {
            atom: atom.to_string(),
            reason: format!("{e:#}"),
        })
    }

    /// Loads an artifact by memory-mapping it, after cheap checks of its size and header.
    pub fn load(&self, path: &Path, expected_size: u64) -> Result<wasmtime::Module, Miss> {
        let actual = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(_) => return Err(Miss::Absent),
        };
        if actual != expected_size {
            return Err(Miss::Size {
                path: path.to_path_buf(),
                expected: expected_size,
                actual,
            });
        }
        let header = |reason: String| Miss::Header {
            path: path.to_path_buf(),
            reason,
        };
        match wasmtime::Engine::detect_precompiled_file(path) {
            Ok(Some(wasmtime::Precompiled::Module)) => {}
            Ok(_) => return Err(header("not a precompiled core module".into())),
            Err(e) => return Err(header(format!("{e:#}"))),
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact that wasmtime produced
        // and that nobody changes while it is mapped. Both hold for what is loaded here: only
        // files that webcpm itself wrote into its own store, under `compiled/<engine-hash>/`,
        // reach this call (the path comes from the store's index, never from a package or a
        // registry), they are written once to a temporary file and renamed into place, made
        // read-only, and never modified afterwards; their size was just checked against the
        // index and their header against this engine. This assumes that only webcpm (and the
        // user who owns the store) can write the store's directory: whoever can write there
        // can run native code as that user anyway.
        unsafe { wasmtime::Module::deserialize_file(&self.engine, path) }
            .map_err(|e| header(format!("{e:#}")))
    }

    /// Runs a WASI preview 1 command to completion on the calling thread; returns its exit code.
    pub fn run(&self, module: &wasmtime::Module, options: RunOptions) -> Result<i32, RunError> {
        wasi::run(&self.engine, module, &self.limits, options)
    }

    /// Stops every running program at its next epoch check (Ctrl-C).
    pub fn interrupt(&self) {
        self.engine.increment_epoch();
    }
}
