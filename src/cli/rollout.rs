//! `webcpm rollout status|set|pin|unpin|rollback|resume`: the staged rollout of WebC v3 and the
//! emergency rollback to v2. Every change is an edit of the user (or, with `--system`, the
//! system) config file, written to the event log, and followed by re-pointing every install at
//! the format the new policy wants.

use serde_json::json;

use super::args::{GlobalArgs, RolloutCommand, RolloutEdit};
use super::commands::{installer, store_failure};
use super::config::{apply, target_file};
use super::{Failure, context};
use crate::policy::Cohort;
use crate::settings::Edit;
use crate::store::Store;

pub async fn run(global: &GlobalArgs, cmd: RolloutCommand) -> Result<i32, Failure> {
    let (edits, edit, cause): (Vec<Edit>, RolloutEdit, String) = match cmd {
        RolloutCommand::Status => return status(global),
        RolloutCommand::Set { v3_percent, edit } => (
            vec![Edit::Set(
                "rollout.v3_percent".into(),
                toml::Value::Integer(v3_percent.into()),
            )],
            edit,
            format!("rollout set --v3-percent {v3_percent}"),
        ),
        RolloutCommand::Pin {
            package,
            webc,
            edit,
        } => (
            vec![Edit::Pin(package.clone(), webc)],
            edit,
            format!("rollout pin {package} {webc}"),
        ),
        RolloutCommand::Unpin { package, edit } => (
            vec![Edit::Unpin(package.clone())],
            edit,
            format!("rollout unpin {package}"),
        ),
        RolloutCommand::Rollback { edit } => (
            vec![Edit::Set(
                "rollout.rolled_back".into(),
                toml::Value::Boolean(true),
            )],
            edit,
            "rollout rollback".to_string(),
        ),
        RolloutCommand::Resume { edit } => (
            vec![Edit::Unset("rollout.rolled_back".into())],
            edit,
            "rollout resume".to_string(),
        ),
    };
    let file = target_file(global, edit.system)?;
    apply(global, &file, &edits, edit.system)?;

    // The policy as it now stands, from every layer.
    let ctx = context(global, Vec::new(), None)?;
    let installer = installer(&ctx, edit.offline)?;
    installer
        .store
        .index()
        .log_event("policy", None, &format!("{cause} ({})", file.display()))
        .map_err(|e| store_failure(e.into()))?;
    let moved = crate::rollout::align(&installer, &cause, edit.offline)
        .await
        .map_err(|e| store_failure(e.into()))?;
    // The policy is in force; installs that could not move because something failed make the
    // command incomplete (exit 2): running it again finishes the job.
    let failed: Vec<&crate::rollout::Moved> = moved.iter().filter(|m| m.failed).collect();
    let code = if failed.is_empty() { 0 } else { 2 };
    if ctx.global.json {
        println!(
            "{}",
            json!({"policy": cause, "file": file, "installs": moved, "complete": failed.is_empty()})
        );
        return Ok(code);
    }
    ctx.say(format!("{cause}: written to {}", file.display()));
    let switched = moved.iter().filter(|m| m.outcome == "switched").count();
    ctx.say(format!(
        "{switched} of {} installed packages re-pointed",
        moved.len()
    ));
    for m in &moved {
        match m.outcome {
            "switched" => ctx.say(format!("  {} {} -> {}", m.package, m.from, m.to)),
            "kept" => ctx.say(format!("  {} stays on {}: {}", m.package, m.from, m.reason)),
            _ => {}
        }
    }
    if !failed.is_empty() {
        eprintln!(
            "error: {} installed packages could not be re-pointed; the policy is in force",
            failed.len()
        );
        eprintln!("  hint: run `webcpm {cause}` again to finish");
    }
    Ok(code)
}

fn status(global: &GlobalArgs) -> Result<i32, Failure> {
    let ctx = context(global, Vec::new(), None)?;
    let mut policy = ctx.settings.policy()?;
    let store = Store::open_existing(&ctx.home).map_err(store_failure)?;
    let (installs, events) = match &store {
        Some(store) => {
            policy.rollout.installation_id = store.installation_id().map_err(store_failure)?;
            (
                store
                    .index()
                    .installs()
                    .map_err(|e| store_failure(e.into()))?,
                store
                    .index()
                    .recent_events(10)
                    .map_err(|e| store_failure(e.into()))?,
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    let rows: Vec<_> = installs
        .iter()
        .map(|i| {
            let order = policy.order(&i.package);
            let (cohort, bucket) = policy.cohort(&i.package);
            json!({
                "package": i.package,
                "version": i.version.to_string(),
                "webc": i.webc,
                "cohort": match cohort { Cohort::V3 => "v3", Cohort::V2 => "v2" },
                "bucket": bucket,
                "wanted": order.formats[0],
                "rule": order.rule,
            })
        })
        .collect();
    let pins: serde_json::Map<String, serde_json::Value> = policy
        .rollout
        .pins
        .iter()
        .map(|(n, w)| (n.to_string(), json!(w)))
        .collect();
    if ctx.global.json {
        println!(
            "{}",
            json!({
                "priority": policy.priority,
                "fallback": policy.fallback,
                "v3_percent": policy.rollout.v3_percent,
                "rolled_back": policy.rollout.rolled_back,
                "pins": pins,
                "installation_id": policy.rollout.installation_id,
                "packages": rows,
                "events": events,
            })
        );
        return Ok(0);
    }
    let names: Vec<&str> = policy.priority.iter().map(|w| w.as_str()).collect();
    println!(
        "policy: priority {}, fallback {}, v3 rollout {}%{}",
        names.join(", "),
        if policy.fallback { "on" } else { "off" },
        policy.rollout.v3_percent,
        if policy.rollout.rolled_back {
            ", EMERGENCY ROLLBACK to v2 in force"
        } else {
            ""
        }
    );
    for (name, webc) in &policy.rollout.pins {
        println!("pin: {name} -> {webc}");
    }
    for i in &installs {
        let order = policy.order(&i.package);
        let pending = if order.formats[0] == i.webc {
            String::new()
        } else {
            format!(" (policy wants {})", order.formats[0])
        };
        println!(
            "  {:<32} {:<10} {}{pending}  [{}]",
            i.package, i.version, i.webc, order.rule
        );
    }
    if !events.is_empty() {
        println!("recent events:");
        for e in &events {
            println!(
                "  {} {} {}",
                e.kind,
                e.package.as_deref().unwrap_or("-"),
                e.detail
            );
        }
    }
    Ok(0)
}
