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
    let mut store = Store::new(
        engine,
        State {
            wasi: wasi_context(&options)?,
            limits: store_limits(limits),
        },
    );
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();
    let linker = linker(engine, module, &mut store).map_err(|e| RunError::Setup {
        module: name.clone(),
        reason: format!("{e:#}"),
    })?;
    let watchdog = Watchdog::start(engine, limits.timeout);
    let called = call_start(&linker, &mut store, module, &name);
    watchdog.finished.store(true, Ordering::SeqCst);
    match called? {
        Ok(()) => Ok(0),
        Err(error) => ended(error, &name, limits, &watchdog),
    }
}

/// The program's WASI view: its arguments, environment, inherited stdio and mounts.
fn wasi_context(options: &RunOptions) -> Result<WasiP1Ctx, RunError> {
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
    Ok(builder.build_p1())
}

fn store_limits(limits: &Limits) -> StoreLimits {
    let mut builder = StoreLimitsBuilder::new();
    if let Some(max) = limits.max_memory {
        builder = builder.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
    }
    builder.build()
}

/// WASI preview 1, and the memory a module imports rather than defines (modules built for
/// threads import a shared one).
fn linker(
    engine: &wasmtime::Engine,
    module: &wasmtime::Module,
    store: &mut Store<State>,
) -> Result<Linker<State>, wasmtime::Error> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)?;
    for import in module.imports() {
        if let ExternType::Memory(ty) = import.ty() {
            if ty.is_shared() {
                let memory = wasmtime::SharedMemory::new(engine, ty)?;
                linker.define(&*store, import.module(), import.name(), memory)?;
            } else {
                let memory = wasmtime::Memory::new(&mut *store, ty)?;
                linker.define(&*store, import.module(), import.name(), memory)?;
            }
        }
    }
    Ok(linker)
}

/// Stops the program after the timeout by bumping the engine's epoch, unless it finished.
struct Watchdog {
    timed_out: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(engine: &wasmtime::Engine, timeout: Option<std::time::Duration>) -> Watchdog {
        let watchdog = Watchdog {
            timed_out: Arc::new(AtomicBool::new(false)),
            finished: Arc::new(AtomicBool::new(false)),
        };
        if let Some(timeout) = timeout {
            let engine = engine.clone();
            let (timed_out, finished) = (watchdog.timed_out.clone(), watchdog.finished.clone());
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                if !finished.load(Ordering::SeqCst) {
                    timed_out.store(true, Ordering::SeqCst);
                    engine.increment_epoch();
                }
            });
        }
        watchdog
    }
}

/// Instantiates the module and calls `_start`; the outer error is webcpm's, the inner one is
/// how the program ended.
fn call_start(
    linker: &Linker<State>,
    store: &mut Store<State>,
    module: &wasmtime::Module,
    name: &str,
) -> Result<Result<(), wasmtime::Error>, RunError> {
    let instance = linker
        .instantiate(&mut *store, module)
        .map_err(|e| RunError::Link {
            module: name.to_string(),
            reason: format!("{e:#}"),
        })?;
    let start = instance
        .get_typed_func::<(), ()>(&mut *store, "_start")
        .map_err(|_| RunError::NotACommand {
            module: name.to_string(),
        })?;
    Ok(start.call(&mut *store, ()))
}

/// How a program that did not return from `_start` ended: `proc_exit`, Ctrl-C, the timeout,
/// or a trap in a named function.
fn ended(
    error: wasmtime::Error,
    name: &str,
    limits: &Limits,
    watchdog: &Watchdog,
) -> Result<i32, RunError> {
    let module = name.to_string();
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return Err(if watchdog.timed_out.load(Ordering::SeqCst) {
            RunError::Timeout {
                module,
                seconds: limits.timeout.map_or(0, |t| t.as_secs()),
            }
        } else {
            RunError::Interrupted { module }
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
        module,
        function,
        message,
    })
}
