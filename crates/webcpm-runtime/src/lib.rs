//! The runtime: the engines that run atoms, each compiling an atom once ahead of time and
//! loading the compiled artifact by memory-mapping it at every run.
//!
//! Two backends sit behind one [`Backend`] trait, and each atom goes to one by its ABI, read from
//! its imports ([`abi_of`]):
//!
//! | ABI | backend |
//! |---|---|
//! | WASI preview 0 (`wasi_unstable`), preview 1 (`wasi_snapshot_preview1`), other | wasmtime (the embedded default) |
//! | WASIX (`wasix_32v1`, `wasix_64v1`, `wasix_http_client_v1`) | Wasmer with singlepass and `wasmer-wasix` (cargo feature `wasix`, on by default) |
//! | wasi-threads (`wasi`.`thread-spawn`, preview 1 with a shared memory) | Wasmer, which implements wasi-threads (wasmtime's CLI dropped it) |
//!
//! Artifacts live in the store as `compiled/<engine-hash>/<atom-sha256>.cwasm`, where the engine
//! hash covers the backend, its version, the target and the compiler settings: an engine never
//! sees an artifact another engine wrote. Loading checks the artifact's size (recorded when it
//! was written) and its header, then maps it; any failure there is a cache miss that the caller
//! answers by compiling again. Re-hashing artifacts is `cache verify`'s job, not every run's.
//!
//! Tiers: an atom of a wasmtime ABI can be compiled first by Winch, wasmtime's baseline
//! compiler ([`Runtime::baseline`]), whose artifacts have their own engine hash, and later by
//! Cranelift; a run prefers the Cranelift artifact and takes the baseline one while that is all
//! there is. WASIX atoms have one tier (Wasmer's singlepass).
//!
//! Commands run with their arguments, their environment, the inherited stdio and the package's
//! volumes mounted read-only. The program's exit code is returned as is.

mod backend;
mod code_size;
mod options;
mod stdin;
mod wasi;
#[cfg(feature = "wasix")]
mod wasix;
mod wasmtime_backend;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use webcpm_formats::package::Abi;

pub use backend::{Backend, EngineError, Miss, Module};
pub use code_size::code_size;
pub use options::{Command, Limits, Mount, RunError, RunOptions};
pub use webcpm_formats::abi::{abi_of, network_imports};

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

/// A wasmtime engine, made on first use; `Err` (what went wrong) when it cannot be made.
type Lazy = Arc<OnceLock<Result<wasmtime_backend::Wasmtime, String>>>;

/// The engines, configured once per process.
#[derive(Clone)]
pub struct Runtime {
    /// Cranelift: made on first use, so that a WASIX run never makes it.
    wasmtime: Lazy,
    /// The baseline engine (Winch), made on first use (most runs never need it); `Err` when
    /// this machine cannot have one (Winch needs AVX on x86-64).
    baseline: Lazy,
    limits: Limits,
    /// Made on first use: a run of a WASI module never needs it.
    #[cfg(feature = "wasix")]
    wasix: Arc<OnceLock<wasix::Wasix>>,
}

impl Runtime {
    /// The engines of this build, each made when it is first needed.
    pub fn new(limits: Limits) -> Runtime {
        Runtime {
            wasmtime: Lazy::default(),
            baseline: Lazy::default(),
            limits,
            #[cfg(feature = "wasix")]
            wasix: Arc::default(),
        }
    }

    fn wasmtime(&self) -> Result<&wasmtime_backend::Wasmtime, EngineError> {
        let engine = self.wasmtime.get_or_init(|| {
            let compiler = wasmtime_backend::Compiler::Cranelift;
            wasmtime_backend::Wasmtime::new(self.limits.clone(), compiler).map_err(|e| match e {
                EngineError::Setup(reason) => reason,
                other => other.to_string(),
            })
        });
        engine
            .as_ref()
            .map_err(|reason| EngineError::Setup(reason.clone()))
    }

    #[cfg(feature = "wasix")]
    fn wasix(&self) -> &wasix::Wasix {
        self.wasix
            .get_or_init(|| wasix::Wasix::new(self.limits.clone()))
    }

    /// The baseline backend for atoms of this ABI: Winch for the ABIs that run on wasmtime;
    /// `None` for WASIX (one tier) and on a machine where Winch cannot run.
    pub fn baseline(&self, abi: Abi) -> Option<&dyn Backend> {
        if abi.on_wasmer() {
            return None;
        }
        let engine = self.baseline.get_or_init(|| {
            let compiler = wasmtime_backend::Compiler::Winch;
            wasmtime_backend::Wasmtime::new(self.limits.clone(), compiler)
                .map_err(|e| e.to_string())
        });
        match engine {
            Ok(engine) => Some(engine),
            Err(e) => {
                tracing::debug!("no baseline compiler: {e}");
                None
            }
        }
    }

    /// The backend that runs atoms of this ABI; an error when this build has none.
    pub fn backend(&self, abi: Abi) -> Result<&dyn Backend, EngineError> {
        if abi.on_wasmer() {
            #[cfg(feature = "wasix")]
            return Ok(self.wasix());
            #[cfg(not(feature = "wasix"))]
            return Err(EngineError::Unsupported { abi });
        }
        Ok(self.wasmtime()?)
    }

    /// The engine hash of every backend in this build: the artifacts that are this build's.
    /// An error when the main engine cannot be made (its artifacts must not look foreign).
    pub fn engine_hashes(&self) -> Result<Vec<String>, EngineError> {
        Ok([
            Some(self.wasmtime()?.engine_hash()),
            self.baseline(Abi::Preview1).map(|b| b.engine_hash()),
            #[cfg(feature = "wasix")]
            Some(self.wasix().engine_hash()),
        ]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect())
    }

    /// Runs a loaded module on the engine that loaded it; returns its exit code.
    pub fn run(&self, module: &Module, options: RunOptions) -> Result<i32, RunError> {
        module.run(options)
    }

    /// Stops every program running on wasmtime at its next epoch check (Ctrl-C). A WASIX
    /// program ends with the process.
    pub fn interrupt(&self) {
        for engine in [&self.wasmtime, &self.baseline] {
            if let Some(Ok(engine)) = engine.get() {
                engine.interrupt();
            }
        }
    }
}
