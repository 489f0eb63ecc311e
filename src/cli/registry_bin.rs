//! The registry is a binary of its own, `webcpm-registry`, so that this one links no server
//! crate. `webcpm registry …` runs it with the same arguments, and `webcpm demo` starts it.
//!
//! It is found next to this binary (where `cargo install` and `cargo build` put both), then on
//! `PATH`. Under `cargo run`, which builds only the binary it runs, it is built first with the
//! same profile.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::args::GlobalArgs;
use crate::cli::failure::Failure;

/// The registry binary's file name.
pub(super) const NAME: &str = "webcpm-registry";

/// Where `webcpm-registry` is, building it first when `cargo run` left it out.
pub(super) fn locate() -> Result<PathBuf, Failure> {
    let me = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("cannot find this program's path: {e}")))?;
    let sibling = me.with_file_name(NAME);
    if sibling.is_file() {
        return Ok(sibling);
    }
    if let Some(found) = on_path() {
        return Ok(found);
    }
    if let Some(cargo) = cargo_run() {
        build(&cargo, &me)?;
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    Err(Failure::usage(format!(
        "cannot find `{NAME}`, the registry's binary, next to {} or on PATH",
        me.display()
    ))
    .hint("install both binaries with `cargo install --locked --path .`"))
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(NAME))
        .find(|candidate| candidate.is_file())
}

/// The `cargo` and manifest of a `cargo run` of this workspace, if that is how this started.
fn cargo_run() -> Option<(OsString, PathBuf)> {
    let cargo = std::env::var_os("CARGO")?;
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    manifest.is_file().then_some((cargo, manifest))
}

/// `cargo build --bin webcpm-registry` in the profile this binary was built with (the name of
/// the directory it is in: `debug` is the `dev` profile).
fn build((cargo, manifest): &(OsString, PathBuf), me: &Path) -> Result<(), Failure> {
    let profile = match me
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    tracing::warn!("building {NAME} (`cargo run` builds only `webcpm`)");
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--bin",
            NAME,
            "--profile",
            profile,
            "--manifest-path",
        ])
        .arg(manifest)
        .status()
        .map_err(|e| Failure::internal(format!("cannot run cargo to build {NAME}: {e}")))?;
    if !status.success() {
        return Err(Failure::internal(format!(
            "building {NAME} failed ({status})"
        )));
    }
    Ok(())
}

/// `webcpm registry ARGS`: becomes `webcpm-registry ARGS` (with `--json`, `-q` and `-v` when they
/// were given before `registry`). Returns only if that cannot start.
pub(super) fn forward(global: &GlobalArgs, args: Vec<OsString>) -> Failure {
    let exe = match locate() {
        Ok(exe) => exe,
        Err(failure) => return failure,
    };
    let mut cmd = Command::new(&exe);
    if global.json {
        cmd.arg("--json");
    }
    if global.quiet {
        cmd.arg("--quiet");
    }
    for _ in 0..global.verbose {
        cmd.arg("--verbose");
    }
    let error = cmd.args(args).exec();
    Failure::internal(format!("cannot run {}: {error}", exe.display()))
}
