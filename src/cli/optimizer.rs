//! The background optimizer: when atoms of the store run on baseline code only (after an install
//! with `compile.tiering`), a detached `webcpm cache optimize --background` compiles them with
//! Cranelift, so that the command that installed them does not wait for it. It runs in its own
//! process group with no terminal streams (a Ctrl-C meant for a program does not stop it), and
//! under the store's optimizer lock: a second one finds it taken and exits.

use std::process::Stdio;

use crate::cli::context::Context;
use crate::runtime::Runtime;
use crate::store::Store;

/// Starts the optimizer unless the store has nothing for it. Failing to start it is not an
/// error: the next command starts it, and `webcpm cache optimize` does the same work.
pub(super) fn start_if_needed(ctx: &Context, store: &Store, runtime: &Runtime) {
    match crate::artifacts::baseline_only(store, runtime) {
        Ok(todo) if !todo.is_empty() => start(ctx),
        Ok(_) => {}
        Err(e) => tracing::debug!("cannot list the atoms on baseline code: {e}"),
    }
}

/// Starts a detached `webcpm cache optimize --background` on this store.
pub(super) fn start(ctx: &Context) {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            tracing::debug!("cannot start the optimizer: {e}");
            return;
        }
    };
    let mut command = std::process::Command::new(exe);
    command.arg("--home").arg(&ctx.home);
    if let Some(config) = &ctx.global.config {
        command.arg("--config").arg(config);
    }
    command
        .args(["cache", "optimize", "--background", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    match command.spawn() {
        Ok(child) => tracing::info!(
            "optimizing with Cranelift in the background (process {})",
            child.id()
        ),
        Err(e) => tracing::debug!("cannot start the optimizer: {e}"),
    }
}
