//! `wasix-floor ARTIFACT [ARGS...]`: maps a module that webcpm serialized (its
//! `compiled/<engine-hash>/<atom>.cwasm`) into Wasmer's headless engine and runs it as a WASIX
//! command with inherited stdio. Its exit code is the program's. `wasix-floor --start-up`
//! exits at once: the start-up of this binary alone, to set against `webcpm --version`.

use wasmer_wasix::WasiRuntimeError;
use wasmer_wasix::runners::wasi::{RuntimeOrEngine, WasiRunner};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: wasix-floor ARTIFACT [ARGS...]");
    if path == "--start-up" {
        return;
    }
    let engine: wasmer::Engine = wasmer::sys::EngineBuilder::headless().into();
    // SAFETY: the benchmark passes an artifact that webcpm wrote with this Wasmer version.
    let module = unsafe { wasmer::Module::deserialize_from_file(&engine, &path) }
        .expect("a module serialized by this Wasmer");
    let mut runner = WasiRunner::new();
    runner.with_args(args);
    let hash = wasmer_types::ModuleHash::sha256(path.as_bytes());
    let code = match runner.run_wasm(RuntimeOrEngine::Engine(engine), "program", module, hash) {
        Ok(()) => 0,
        Err(error) => error
            .chain()
            .find_map(|e| e.downcast_ref::<WasiRuntimeError>())
            .and_then(WasiRuntimeError::as_exit_code)
            .map(|code| code.raw())
            .unwrap_or_else(|| {
                eprintln!("{error:#}");
                1
            }),
    };
    std::process::exit(code);
}
