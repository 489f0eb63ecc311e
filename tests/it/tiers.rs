//! Tiered compilation: a module compiles first with wasmtime's baseline compiler (Winch), runs
//! on that code at once, and is optimized with Cranelift by a background process that swaps the
//! artifact; a module Winch cannot compile goes straight to Cranelift; `list --json` and `run -v`
//! say which tier runs; `compile.tiering = "off"` compiles once, and `"auto"` (the default)
//! tiers only modules with a lot of code. The modules here are small; `"always"` tiers them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

/// A large file of little code: custom sections do not count for `compile.tiering = "auto"`.
const LARGE: usize = 1_200_000;

/// `webcpm` with every module tiered.
fn tiered(home: &Path) -> std::process::Command {
    let mut command = webcpm(home);
    command.env("WEBCPM_COMPILE_TIERING", "always");
    command
}

fn publish_large(home: &Path, root: &Path, name: &str, wasm: Vec<u8>) {
    let dir = package_dir(
        home,
        &Pkg {
            name,
            version: "1.0.0",
            wasm: Some(pad_wasm(wasm, LARGE)),
            ..Pkg::default()
        },
    );
    publish(home, root, &dir, &[]);
}

/// The tier and compiler `list --json` gives the first atom of `package`.
fn tier(home: &Path, package: &str) -> (String, String) {
    let listed = json(&run(webcpm(home).args(["list", "--json"])));
    let pkg = listed["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == package)
        .unwrap_or_else(|| panic!("{package} is not listed: {listed}"));
    let atom = &pkg["atoms"][0];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("none").to_string();
    (text(&atom["tier"]), text(&atom["compiler"]))
}

/// The compiled artifacts of the store, per engine directory.
fn artifact_count(home: &Path) -> usize {
    let Ok(engines) = std::fs::read_dir(home.join("store/compiled")) else {
        return 0;
    };
    engines
        .flatten()
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

/// Waits until no `webcpm cache optimize --background` of this test's store is running.
fn wait_for_background_optimizers(home: &Path) {
    let started = Instant::now();
    while background_optimizers(home) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a background optimizer did not exit while the lock was held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes whose command line has `--background` and a path under `home` (the detached
/// optimizer gets `--home HOME/store`). An exited one that is not yet reaped has no command line.
fn background_optimizers(home: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let home = home.as_os_str().as_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|process| {
            let Ok(cmdline) = std::fs::read(process.path().join("cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&&b"--background"[..]) && args.iter().any(|a| a.starts_with(home))
        })
        .count()
}

#[test]
fn a_large_module_runs_on_baseline_code_until_the_optimizer_swaps_in_cranelift_code() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_large(home, &root, "test/held", hello_wasm("held\n", 0));
    publish_large(home, &root, "test/free", hello_wasm("free\n", 0));
    let registry = Registry::start(home, &root);
    let install =
        |name: &str| run(tiered(home).args(["install", name, "--registry", &registry.url]));

    // The store exists; holding its optimizer lock keeps the background optimizer out, so the
    // baseline tier can be seen.
    let out = run(webcpm(home).args(["list"]));
    assert_eq!(out.status.code(), Some(0));
    std::fs::create_dir_all(home.join("store/locks")).unwrap();
    let held = std::fs::File::create(home.join("store/locks/optimizer")).unwrap();
    held.lock().unwrap();

    let out = install("test/held");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("main runs on baseline code (Winch)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tier(home, "test/held"), ("baseline".into(), "winch".into()));
    let out = run(webcpm(home).args(["run", "test/held", "-v"]));
    assert_eq!(stdout(&out), "held\n");
    assert!(
        stderr(&out).contains("tier baseline (winch"),
        "{}",
        stderr(&out)
    );
    assert_eq!(artifact_count(home), 1);

    // The optimizer compiles it with Cranelift and removes the baseline code. (The background
    // optimizers that `install` and `run` started find the lock taken and exit; one still
    // starting when the lock is freed would do the work first, so the test waits for them.)
    wait_for_background_optimizers(home);
    drop(held);
    let out = run(tiered(home).args(["cache", "optimize"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 module optimized\n");
    assert_eq!(
        tier(home, "test/held"),
        ("optimized".into(), "cranelift".into())
    );
    assert_eq!(artifact_count(home), 1, "the baseline artifact is gone");
    let out = run(webcpm(home).args(["run", "test/held", "-v"]));
    assert_eq!(stdout(&out), "held\n");
    assert!(
        stderr(&out).contains("tier optimized (cranelift)"),
        "{}",
        stderr(&out)
    );

    // Left alone, the install starts the optimizer itself, detached: it swaps the code in.
    let out = install("test/free");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let started = Instant::now();
    while tier(home, "test/free").0 != "optimized" {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the background optimizer did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        stdout(&run(webcpm(home).args(["run", "test/free"]))),
        "free\n"
    );
}

#[test]
fn a_module_winch_cannot_compile_goes_to_cranelift_and_tiering_can_be_off() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    // A tail call: Winch in this wasmtime does not compile them; Cranelift does.
    let tail = wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $code (result i32) (i32.const 7))
  (func $tail (result i32) (return_call $code))
  (func (export "_start") (call $exit (call $tail))))"#,
    )
    .unwrap();
    publish_large(home, &root, "test/tail", tail);
    publish_large(home, &root, "test/once", hello_wasm("once\n", 0));
    publish_large(home, &root, "test/auto", hello_wasm("auto\n", 0));
    let registry = Registry::start(home, &root);

    let out = run(tiered(home).args(["install", "test/tail", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("baseline code"), "{}", stderr(&out));
    assert_eq!(
        tier(home, "test/tail"),
        ("optimized".into(), "cranelift".into())
    );
    let out = run(webcpm(home).args(["run", "test/tail", "-v"]));
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tier optimized (cranelift; no baseline tier:") && err.contains("tail call"),
        "{err}"
    );

    let out = run(webcpm(home).env("WEBCPM_COMPILE_TIERING", "off").args([
        "install",
        "test/once",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("baseline code"), "{}", stderr(&out));
    assert_eq!(
        tier(home, "test/once"),
        ("optimized".into(), "cranelift".into())
    );
    // "auto": 1.2 MB of file, a few bytes of code: Cranelift at once.
    let out = run(webcpm(home).args(["install", "test/auto", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("baseline code"), "{}", stderr(&out));
    assert_eq!(
        tier(home, "test/auto"),
        ("optimized".into(), "cranelift".into())
    );
    assert_eq!(
        artifact_count(home),
        3,
        "one Cranelift artifact each, no Winch one"
    );

    let out = run(webcpm(home)
        .env("WEBCPM_COMPILE_TIERING", "sometimes")
        .args(["list"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("compile.tiering"), "{}", stderr(&out));
}
