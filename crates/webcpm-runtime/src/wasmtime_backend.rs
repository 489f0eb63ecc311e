//! The embedded default backend: wasmtime, for WASI preview 0 and preview 1 (and modules with no
//! WASI imports), with one of two compilers: Cranelift (optimizing, the final tier) or Winch
//! (baseline: several times faster to compile, slower code), for a large module's first runs.
//!
//! Its engine hash is the SHA-256 of [`wasmtime::Engine::precompile_compatibility_hash`]
//! (wasmtime's version, the target, the compiler settings), with the compiler's name for Winch:
//! the two compilers' artifacts never mix. Loading checks the artifact's size
//! (recorded when it was written) and its header, then maps it with
//! [`wasmtime::Module::deserialize_file`].

use std::path::Path;

use super::backend::{self, Backend, EngineError, Miss, Module, Program};
use super::options::{Limits, RunError, RunOptions};
use super::wasi;

/// Which of wasmtime's compilers an engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compiler {
    /// Optimizing: the code every atom ends up with.
    Cranelift,
    /// Baseline: compiles in a fraction of Cranelift's time; what a large new module runs on
    /// until its Cranelift code is there.
    Winch,
}

/// The wasmtime engine, configured once per process.
#[derive(Clone)]
pub(crate) struct Wasmtime {
    engine: wasmtime::Engine,
    engine_hash: String,
    compiler: Compiler,
    limits: Limits,
}

impl Wasmtime {
    pub(crate) fn new(limits: Limits, compiler: Compiler) -> Result<Wasmtime, EngineError> {
        let mut config = wasmtime::Config::new();
        config.strategy(match compiler {
            Compiler::Cranelift => wasmtime::Strategy::Cranelift,
            Compiler::Winch => wasmtime::Strategy::Winch,
        });
        config.parallel_compilation(true);
        // Ctrl-C and timeouts stop a program through epochs.
        config.epoch_interruption(true);
        // Real toolchains emit these; without them real modules fail to load.
        config.wasm_threads(true);
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        let engine_hash = match compiler {
            Compiler::Cranelift => backend::engine_hash(engine.precompile_compatibility_hash()),
            Compiler::Winch => {
                backend::engine_hash(("winch", engine.precompile_compatibility_hash()))
            }
        };
        Ok(Wasmtime {
            engine,
            engine_hash,
            compiler,
            limits,
        })
    }

    /// Stops every running program at its next epoch check (Ctrl-C).
    pub(crate) fn interrupt(&self) {
        self.engine.increment_epoch();
    }
}

impl Backend for Wasmtime {
    fn name(&self) -> &'static str {
        "wasmtime"
    }

    fn compiler(&self) -> &'static str {
        match self.compiler {
            Compiler::Cranelift => "cranelift",
            Compiler::Winch => "winch",
        }
    }

    fn version(&self) -> &'static str {
        wasmtime_environ::VERSION
    }

    fn engine_hash(&self) -> &str {
        &self.engine_hash
    }

    fn precompile(&self, atom: &str, wasm: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.engine
            .precompile_module(wasm)
            .map_err(|e| EngineError::Compile {
                atom: atom.to_string(),
                reason: format!("{e:#}"),
            })
    }

    fn compile(&self, atom: &str, wasm: &[u8]) -> Result<Module, EngineError> {
        wasmtime::Module::new(&self.engine, wasm)
            .map(|module| self.loaded(module))
            .map_err(|e| EngineError::Compile {
                atom: atom.to_string(),
                reason: format!("{e:#}"),
            })
    }

    fn load(&self, path: &Path, expected_size: u64) -> Result<Module, Miss> {
        backend::check_size(path, expected_size)?;
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
            .map(|module| self.loaded(module))
            .map_err(|e| header(format!("{e:#}")))
    }
}

/// A module wasmtime loaded, with the limits it runs under.
struct Loaded {
    module: wasmtime::Module,
    limits: Limits,
}

impl Program for Loaded {
    fn run(&self, options: RunOptions) -> Result<i32, RunError> {
        // The module's own engine: Cranelift's or Winch's.
        wasi::run(self.module.engine(), &self.module, &self.limits, options)
    }
}

impl Wasmtime {
    fn loaded(&self, module: wasmtime::Module) -> Module {
        Module::new(Loaded {
            module,
            limits: self.limits.clone(),
        })
    }
}
