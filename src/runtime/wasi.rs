//! Running a WASI preview 1 command: linking, the WASI context (arguments, environment, inherited
//! stdio, preopened directories), limits, and turning how the program ended into an exit code or
//! a [`RunError`] that names the module and the function.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::{ExternType, Linker, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// Limits on a running program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory one instance may grow to, in bytes.
    pub max_memory: Option<u64>,
    /// Stop the program after this long.
    pub timeout: Option<std::time::Duration>,
}

/// A host directory made visible to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// What to run and with what.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The module's name, for messages.
    pub module_name: String,
    /// `argv[0]`.
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
}

/// Why a program did not run to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up WASI for `{module}`: {reason}")]
    Setup { module: String, reason: String },
    #[error("cannot mount {host} at {guest}: {reason}")]
    Mount {
        host: PathBuf,
        guest: String,
        reason: String,
    },
    #[error("cannot start `{module}`: {reason}")]
    Link { module: String, reason: String },
    #[error("module `{module}` has no `_start` function: it is not a WASI command")]
    NotACommand { module: String },
    #[error("trap in module `{module}`, function `{function}`: {message}")]
    Trap {
        module: String,
        function: String,
        message: String,
    },
    #[error("`{module}` was interrupted")]
    Interrupted { module: String },
    #[error("`{module}` ran longer than the limit of {seconds} s (run.timeout)")]
    Timeout { module: String, seconds: u64 },
}

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Runs the command; see [`super::Runtime::run`].
pub fn run(
    engine: &wasmtime::Engine,
    module: &wasmtime::Module,
    limits: &Limits,
    options: RunOptions,
) -> Result<i32, RunError> {
    let name = options.module_name.clone();
    let setup = |e: wasmtime::Error| RunError::Setup {
        module: name.clone(),
        reason: format!("{e:#}"),
    };
    let mut builder = WasiCtxBuilder::new();
    builder.inherit_stdio();
    builder.arg(&options.program);
    for arg in &options.args {
        builder.arg(arg);
    }
    for (k, v) in &options.env {
        builder.env(k, v);
    }
    for mount in &options.mounts {
        let perms = if mount.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&mount.host, &mount.guest, perms)
            .map_err(|e| RunError::Mount {
                host: mount.host.clone(),
                guest: mount.guest.clone(),
                reason: format!("{e:#}"),
            })?;
    }
    let mut store_limits = StoreLimitsBuilder::new();
    if let Some(max) = limits.max_memory {
        store_limits = store_limits.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
    }
    let mut store = Store::new(
        engine,
        State {
            wasi: builder.build_p1(),
            limits: store_limits.build(),
        },
    );
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();

    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
        .map_err(setup)?;
    // Modules built for threads import their (shared) memory rather than define it.
    for import in module.imports() {
        if let ExternType::Memory(ty) = import.ty() {
            let defined = if ty.is_shared() {
                wasmtime::SharedMemory::new(engine, ty)
                    .and_then(|m| linker.define(&store, import.module(), import.name(), m))
            } else {
                wasmtime::Memory::new(&mut store, ty)
                    .and_then(|m| linker.define(&store, import.module(), import.name(), m))
            };
            defined.map_err(setup)?;
        }
    }

    let timed_out = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    if let Some(timeout) = limits.timeout {
        let (engine, timed_out, finished) = (engine.clone(), timed_out.clone(), finished.clone());
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            if !finished.load(Ordering::SeqCst) {
                timed_out.store(true, Ordering::SeqCst);
                engine.increment_epoch();
            }
        });
    }

    let outcome = (|| -> Result<Result<(), wasmtime::Error>, RunError> {
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(|e| RunError::Link {
                module: name.clone(),
                reason: format!("{e:#}"),
            })?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|_| RunError::NotACommand {
                module: name.clone(),
            })?;
        Ok(start.call(&mut store, ()))
    })();
    finished.store(true, Ordering::SeqCst);
    let error = match outcome? {
        Ok(()) => return Ok(0),
        Err(e) => e,
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return Err(if timed_out.load(Ordering::SeqCst) {
            RunError::Timeout {
                module: name,
                seconds: limits.timeout.map_or(0, |t| t.as_secs()),
            }
        } else {
            RunError::Interrupted { module: name }
        });
    }
    let function = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(|bt| {
            bt.frames().first().map(|f| {
                f.func_name()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("#{}", f.func_index()))
            })
        })
        .unwrap_or_else(|| "?".to_string());
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    Err(RunError::Trap {
        module: name,
        function,
        message,
    })
}
