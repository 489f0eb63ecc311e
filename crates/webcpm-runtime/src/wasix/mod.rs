//! The WASIX backend: Wasmer's engine with its singlepass compiler (Wasmer's Cranelift pins a
//! version that conflicts with wasmtime's), and Wasmer's own WASIX implementation running the
//! program as `wasmer run` does.
//!
//! Its engine hash covers the backend, Wasmer's version, the compiler and the host target, so
//! its artifacts sit beside wasmtime's in `compiled/` without ever being mistaken for them. They
//! are written with `Module::serialize` and loaded with `Module::deserialize_from_file`.
//!
//! The Wasmer runtime is given no package source and a loader that loads nothing: it never
//! reaches Wasmer's registry on its own. The commands of the package and its dependencies come
//! from webcpm's store and are injected as one package, which Wasmer writes to `/bin/<name>` and
//! `/usr/bin/<name>` for `exec` and `spawn` to find. `run.max_memory` caps every memory through
//! the engine's tunables ([`memory`]).

mod exec_cache;
mod host;
mod memory;
mod read_only;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use wasmer_types::ModuleHash;
use wasmer_wasix::bin_factory::{BinaryPackage, BinaryPackageCommand};
use wasmer_wasix::runners::wasi::{RuntimeOrEngine, WasiRunner};
use wasmer_wasix::runtime::task_manager::tokio::TokioTaskManager;
use wasmer_wasix::virtual_fs::FileSystem;
use wasmer_wasix::{SpawnError, WasiRuntimeError, WasiThreadError};

use super::backend::{self, Backend, EngineError, Miss, Module, Program};
use super::options::{Command, Limits, RunError, RunOptions};

/// What the artifacts depend on besides the target: Cargo.toml pins this Wasmer.
const COMPILER: &str = "wasmer 7.4.2 singlepass";

/// The runner URI that Wasmer gives WASI commands.
const WASI_RUNNER: &str = "https://webc.org/runner/wasi";

/// Wasmer's engine, configured once per process.
#[derive(Clone)]
pub(crate) struct Wasix {
    engine: wasmer::Engine,
    engine_hash: String,
    limits: Limits,
}

impl Wasix {
    pub(crate) fn new(limits: Limits) -> Wasix {
        let mut engine: wasmer::Engine =
            wasmer::sys::EngineBuilder::new(wasmer::sys::Singlepass::default()).into();
        if let Some(max) = limits.max_memory {
            use wasmer::sys::NativeEngineExt;
            engine.set_tunables(memory::Limited::new(max));
        }
        let target = format!("{:?}", wasmer::sys::Target::default());
        let engine_hash =
            backend::engine_hash(("wasix", COMPILER, engine.deterministic_id(), target));
        Wasix {
            engine,
            engine_hash,
            limits,
        }
    }

    fn compile_error(atom: &str, error: impl std::fmt::Display) -> EngineError {
        let message = error.to_string();
        let reason = match missing_proposal(&message) {
            Some(proposal) => format!(
                "it uses the {proposal} proposal, which Wasmer's singlepass compiler does not support ({message})"
            ),
            None => message,
        };
        EngineError::Compile {
            atom: atom.to_string(),
            reason,
        }
    }
}

/// The WebAssembly proposal a singlepass compile error is about, when it names one.
fn missing_proposal(message: &str) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    [
        ("relaxed simd", "relaxed SIMD"),
        ("relaxed_simd", "relaxed SIMD"),
        ("simd", "SIMD"),
        ("v128", "SIMD"),
        ("exception", "exception handling"),
        ("tail call", "tail calls"),
        ("memory64", "64-bit memory"),
        ("gc proposal", "garbage collection"),
    ]
    .into_iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, proposal)| proposal)
}

impl Backend for Wasix {
    fn name(&self) -> &'static str {
        "wasmer (WASIX)"
    }

    fn compiler(&self) -> &'static str {
        "singlepass"
    }

    fn version(&self) -> &'static str {
        wasmer_types::VERSION
    }

    fn engine_hash(&self) -> &str {
        &self.engine_hash
    }

    fn precompile(&self, atom: &str, wasm: &[u8]) -> Result<Vec<u8>, EngineError> {
        let module =
            wasmer::Module::new(&self.engine, wasm).map_err(|e| Self::compile_error(atom, e))?;
        module
            .serialize()
            .map(|bytes| bytes.to_vec())
            .map_err(|e| Self::compile_error(atom, e))
    }

    fn compile(&self, atom: &str, wasm: &[u8]) -> Result<Module, EngineError> {
        wasmer::Module::new(&self.engine, wasm)
            .map(|module| self.loaded(module))
            .map_err(|e| Self::compile_error(atom, e))
    }

    fn load(&self, path: &Path, expected_size: u64) -> Result<Module, Miss> {
        backend::check_size(path, expected_size)?;
        // SAFETY: `deserialize_from_file` trusts the file to be an artifact that this Wasmer
        // wrote with `Module::serialize`. Only files that webcpm itself wrote into its own store
        // under `compiled/<engine-hash>/`, where the hash names this engine, reach this call;
        // they are written once to a temporary file and renamed into place, made read-only,
        // never modified afterwards, and their size was just checked against the index. Wasmer
        // checks the artifact's header and version itself. As for wasmtime's artifacts, whoever
        // can write the store's directory can run native code as its user anyway.
        unsafe { wasmer::Module::deserialize_from_file(&self.engine, path) }
            .map(|module| self.loaded(module))
            .map_err(|e| Miss::Header {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }
}

/// A module Wasmer loaded, with its engine and the limits it runs under.
struct Loaded {
    engine: wasmer::Engine,
    module: wasmer::Module,
    limits: Limits,
}

impl Program for Loaded {
    fn run(&self, options: RunOptions) -> Result<i32, RunError> {
        let name = options.module_name.clone();
        let (engine, module) = (self.engine.clone(), self.module.clone());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(run_program(engine, module, options));
        });
        // After the timeout the program's threads are left behind: the process is about to
        // exit with the error (Wasmer has no epochs to stop a program at).
        match self.limits.timeout {
            Some(timeout) => rx.recv_timeout(timeout).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => RunError::Timeout {
                    module: name.clone(),
                    seconds: timeout.as_secs(),
                },
                mpsc::RecvTimeoutError::Disconnected => died(&name),
            })?,
            None => rx.recv().map_err(|_| died(&name))?,
        }
    }
}

impl Wasix {
    fn loaded(&self, module: wasmer::Module) -> Module {
        Module::new(Loaded {
            engine: self.engine.clone(),
            module,
            limits: self.limits.clone(),
        })
    }
}

fn died(module: &str) -> RunError {
    RunError::Setup {
        module: module.to_string(),
        reason: "the program's thread died".into(),
    }
}

/// Runs the program on its own tokio runtime, which Wasmer's threads and timers need.
fn run_program(
    engine: wasmer::Engine,
    module: wasmer::Module,
    options: RunOptions,
) -> Result<i32, RunError> {
    let name = options.module_name.clone();
    let setup = |reason: String| RunError::Setup {
        module: name.clone(),
        reason,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(host::cpus())
        .enable_all()
        .build()
        .map_err(|e| setup(format!("cannot start the WASIX task runtime: {e}")))?;
    let ran = {
        let _entered = tokio.enter();
        let runtime = host::Host::new(
            engine,
            Arc::new(TokioTaskManager::new(tokio.handle().clone())),
            // A command the program starts maps its artifact from the store, as the program did.
            Arc::new(exec_cache::ExecCache::new(&options.commands)),
            options.network,
        );
        let runner = runner(&options)?;
        let hash = ModuleHash::sha256(options.module_name.as_bytes());
        runner.run_wasm(
            RuntimeOrEngine::Runtime(Arc::new(runtime)),
            &options.program,
            module,
            hash,
        )
    };
    tokio.shutdown_background();
    match ran {
        Ok(()) => Ok(0),
        Err(error) => ended(error, name),
    }
}

/// How a program that did not end with 0 ended: its exit code, a failure to link (an import
/// Wasmer does not provide or with another type), or a trap.
fn ended(error: anyhow::Error, module: String) -> Result<i32, RunError> {
    let exit = error
        .chain()
        .find_map(|e| e.downcast_ref::<WasiRuntimeError>())
        .and_then(WasiRuntimeError::as_exit_code);
    if let Some(code) = exit {
        return Ok(code.raw());
    }
    let linking = error.chain().any(|e| {
        // Spawning wraps the thread's error in `SpawnError::Other`.
        let thread = match e.downcast_ref::<SpawnError>() {
            Some(SpawnError::Other(inner)) => inner.downcast_ref::<WasiThreadError>(),
            _ => e.downcast_ref::<WasiThreadError>(),
        };
        matches!(
            thread,
            Some(
                WasiThreadError::InstanceCreateFailed(_)
                    | WasiThreadError::LinkError(_)
                    | WasiThreadError::ImportPreparationFailed(_)
            )
        ) || matches!(
            e.downcast_ref::<WasiRuntimeError>(),
            Some(WasiRuntimeError::Instantiation(_))
        )
    });
    let message = format!("{error:#}");
    Err(match linking {
        true => RunError::Link {
            module,
            reason: message,
        },
        false => RunError::Trap {
            module,
            function: "?".into(),
            message,
        },
    })
}

/// The runner with the program's arguments, environment, directories and commands. Call it
/// inside the program's tokio runtime: the host directories' file systems live on it.
fn runner(options: &RunOptions) -> Result<WasiRunner, RunError> {
    let mut runner = WasiRunner::new();
    runner
        .with_args(options.args.iter().cloned())
        .with_envs(options.env.iter().cloned());
    for mount in &options.mounts {
        let host = wasmer_wasix::virtual_fs::host_fs::FileSystem::new(
            tokio::runtime::Handle::current(),
            &mount.host,
        )
        .map_err(|e| RunError::Mount {
            host: mount.host.clone(),
            guest: mount.guest.clone(),
            reason: e.to_string(),
        })?;
        let fs: Arc<dyn FileSystem + Send + Sync> = match mount.writable {
            true => Arc::new(host),
            false => Arc::new(read_only::ReadOnly::new(Arc::new(host))),
        };
        runner.with_mount(mount.guest.clone(), fs);
    }
    if let Some(cwd) = &options.cwd {
        runner.with_current_dir(cwd);
    }
    if options.network {
        let capabilities = wasmer_wasix::capabilities::Capabilities {
            http_client: wasmer_wasix::http::HttpClientCapabilityV1::new_allow_all(),
            ..Default::default()
        };
        runner.with_capabilities(capabilities);
    }
    if !options.commands.is_empty() {
        runner.with_injected_package(commands_package(&options.commands));
    }
    Ok(runner)
}

/// One package holding every command a program may start, as Wasmer's `BinaryPackage`.
fn commands_package(commands: &[Command]) -> BinaryPackage {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for command in commands {
        digest.update(command.name.as_bytes());
        digest.update(command.sha256);
    }
    let id = wasmer_config::package::PackageId::Hash(
        wasmer_config::package::PackageHash::from_sha256_bytes(digest.finalize().into()),
    );
    let commands = commands
        .iter()
        .map(|command| {
            BinaryPackageCommand::new(
                command.name.clone(),
                webc::metadata::Command {
                    runner: WASI_RUNNER.to_string(),
                    annotations: Default::default(),
                },
                webc::compat::SharedBytes::from(command.wasm.clone()),
                ModuleHash::from_bytes(command.sha256),
                None,
                id.clone(),
                id.clone(),
            )
        })
        .collect();
    BinaryPackage {
        id: id.clone(),
        package_ids: vec![id],
        when_cached: None,
        entrypoint_cmd: None,
        hash: Default::default(),
        package_mounts: None,
        commands,
        uses: Vec::new(),
        file_system_memory_footprint: 0,
        additional_host_mapped_directories: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::missing_proposal;

    #[test]
    fn compile_errors_name_the_proposal() {
        let simd = "Validation error: SIMD support is not enabled (at offset 0x20)";
        assert_eq!(missing_proposal(simd), Some("SIMD"));
        let eh = "Validation error: exceptions proposal not enabled (at offset 0x1f)";
        assert_eq!(missing_proposal(eh), Some("exception handling"));
        assert_eq!(missing_proposal("unknown import"), None);
    }
}
