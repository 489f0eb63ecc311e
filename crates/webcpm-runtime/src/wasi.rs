//! Running a WASI preview 0 or preview 1 command on wasmtime: linking (both preview 0's
//! `wasi_unstable` and preview 1's `wasi_snapshot_preview1` over one WASI context), the context
//! (arguments, environment, inherited stdio, preopened directories), limits, and turning how the
//! program ended into an exit code or a [`RunError`] that names the module and the function.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::{ExternType, Linker, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::options::{Limits, RunError, RunOptions};

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Runs the command to completion on the calling thread; returns its exit code.
pub(crate) fn run(
    engine: &wasmtime::Engine,
    module: &wasmtime::Module,
    limits: &Limits,
    options: RunOptions,
) -> Result<i32, RunError> {
    let name = options.module_name.clone();
    let mut store = Store::new(
        engine,
        State {
            wasi: wasi_context(&options, limits.timeout.is_none())?,
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
fn wasi_context(options: &RunOptions, blocking: bool) -> Result<WasiP1Ctx, RunError> {
    let mut builder = WasiCtxBuilder::new();
    builder.inherit_stdio();
    builder.stdin(super::stdin::Stdin);
    // Blocking host calls (opening and reading files) run on the program's thread instead of
    // a hop to a blocking pool and back, as `wasmtime run` does when it has no timeout to
    // enforce.
    builder.allow_blocking_current_thread(blocking);
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

/// WASI preview 0 and 1, and the memory a module imports rather than defines (modules built
/// for threads import a shared one).
fn linker(
    engine: &wasmtime::Engine,
    module: &wasmtime::Module,
    store: &mut Store<State>,
) -> Result<Linker<State>, wasmtime::Error> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)?;
    wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)?;
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
