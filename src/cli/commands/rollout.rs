//! `webcpm rollout set|pin|unpin|rollback|resume`: the staged rollout of WebC v3 and the
//! emergency rollback to v2. Every change is an edit of the user (or, with `--system`, the
//! system) config file, written to the event log, and followed by re-pointing every install at
//! the format the new policy wants.

use crate::printer::{err, out};
use serde_json::json;

use crate::cli::args::{GlobalArgs, RolloutChange, RolloutEdit};
use crate::cli::config_edit::{Target, apply};
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::install::Network;
use crate::settings::{Edit, keys};

/// The edits a rollout command makes, its flags, and how the event log names it.
fn edits(cmd: RolloutChange) -> (Vec<Edit>, RolloutEdit, String) {
    match cmd {
        RolloutChange::Set { v3_percent, edit } => (
            vec![Edit::Set(
                keys::V3_PERCENT.into(),
                toml::Value::Integer(v3_percent.into()),
            )],
            edit,
            format!("rollout set --v3-percent {v3_percent}"),
        ),
        RolloutChange::Pin {
            package,
            webc,
            edit,
        } => (
            vec![Edit::Pin(package.clone(), webc)],
            edit,
            format!("rollout pin {package} {webc}"),
        ),
        RolloutChange::Unpin { package, edit } => (
            vec![Edit::Unpin(package.clone())],
            edit,
            format!("rollout unpin {package}"),
        ),
        RolloutChange::Rollback { edit } => (
            vec![Edit::Set(
                keys::ROLLED_BACK.into(),
                toml::Value::Boolean(true),
            )],
            edit,
            "rollout rollback".to_string(),
        ),
        RolloutChange::Resume { edit } => (
            vec![Edit::Unset(keys::ROLLED_BACK.into())],
            edit,
            "rollout resume".to_string(),
        ),
    }
}

/// Changes the policy, then re-points every install. Installs that could not move because
/// something failed make the command incomplete (exit 2): running it again finishes the job.
pub(crate) async fn change(global: &GlobalArgs, cmd: RolloutChange) -> Result<ExitStatus, Failure> {
    let (edits, edit, cause) = edits(cmd);
    let file = apply(global, Target::from_flag(edit.system), &edits)?;

    // The policy as it now stands, from every layer.
    let ctx = Context::new(global, Vec::new(), None)?;
    let network = Network::offline_if(edit.offline);
    let installer = ctx.installer(network)?;
    installer
        .store
        .index()
        .log_event("policy", None, &format!("{cause} ({})", file.display()))?;
    let moved = crate::rollout::align(&installer, &cause, network).await?;
    let failed = moved.iter().filter(|m| m.failed).count();
    let status = if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failed(FailureKind::Store)
    };
    if ctx.global.json {
        out!(
            "{}",
            json!({"policy": cause, "file": file, "installs": moved, "complete": failed == 0})
        );
        return Ok(status);
    }
    ctx.say(format!("{cause}: written to {}", file.display()));
    ctx.say_moves(&moved);
    if failed > 0 {
        err!("error: {failed} installed packages could not be re-pointed; the policy is in force");
        err!("  hint: run `webcpm {cause}` again to finish");
    }
    Ok(status)
}
