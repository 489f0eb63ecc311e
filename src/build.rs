//! The build script: links the `webcpm` binary as a position-dependent executable on Linux.
//!
//! A position-independent executable of this size (wasmtime, Cranelift, Wasmer, SQLite) carries
//! about 93,000 relative relocations, which the dynamic loader applies at every start by writing
//! into 1.4 MB of otherwise shared pages; that was a third of a warm `webcpm run` (0.9 ms of
//! 2.9 ms, BENCHMARKS.md). A position-dependent executable has none. The cost is that the
//! executable's own image is not placed at a random address (libraries, the stack, the heap
//! and compiled WebAssembly still are). Build with `WEBCPM_PIE=1` to keep a
//! position-independent executable.

fn main() {
    println!("cargo:rerun-if-env-changed=WEBCPM_PIE");
    println!("cargo:rerun-if-changed=src/build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let pie = std::env::var("WEBCPM_PIE").is_ok_and(|v| v == "1");
    if linux && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
