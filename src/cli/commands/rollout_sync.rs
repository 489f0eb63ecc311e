//! `webcpm rollout sync`: fetch the registry's policy now and re-point every install to match
//! it. Meant for a timer on every machine of a fleet; safe to run from many processes at once
//! (the policy copy is replaced under its lock, each install moves in one transaction).

use crate::printer::err;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::follow::{self, Wait};
use crate::fleet::Refresh;
use crate::install::Network;

pub(crate) async fn sync(ctx: &Context, offline: bool) -> Result<ExitStatus, Failure> {
    let Some(config) = ctx.settings.policy_source() else {
        return Err(Failure::usage("this machine follows no registry policy")
            .hint("pin the registry's key: webcpm config set rollout.policy_key KEY (from `webcpm registry keygen`)"));
    };
    let network = Network::offline_if(offline);
    let followed = follow::follow(ctx, Wait::Normal, network, true).await;
    let version = crate::fleet::registry_layer(&ctx.home, &config).map(|(l, _)| l.version);
    let refused = match &followed.refresh {
        Some(Refresh::Failed(e)) => Some(e.to_string()),
        _ => None,
    };
    let moved = followed.moved.unwrap_or_default();
    let failed = moved.iter().filter(|m| m.failed).count();
    let status = if failed > 0 {
        ExitStatus::Failed(FailureKind::Store)
    } else if refused.is_some() {
        ExitStatus::Failed(FailureKind::Network)
    } else {
        ExitStatus::Success
    };
    if ctx.global.json {
        ctx.print_json(&json!({
            "policy_version": version,
            "error": refused,
            "installs": moved,
            "reports_sent": followed.reports_sent,
            "complete": failed == 0,
        }));
        return Ok(status);
    }
    if let Some(e) = &refused {
        err!("warning: {e}");
    }
    match version {
        Some(v) => ctx.say(format!("registry policy v{v} in force")),
        None => ctx.say("no registry policy yet: the local rollout applies"),
    }
    ctx.say_moves(&moved);
    Ok(status)
}
