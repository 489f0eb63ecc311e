//! `webcpm-registry keygen` and `rollout status|set|halt|rollback|resume|
//! automate`: the operator's side of fleet control. Every change is written to the registry
//! root's database with a new policy version, who made it and why; a running `registry serve`
//! publishes it at once.

use serde_json::json;

use crate::cli::args::{FleetChange, FleetCommand, GlobalArgs, RegistryPlace};
use crate::cli::failure::{ExitStatus, Failure};
use crate::fleet::{self, Automation, Change, OnRegression, RolloutStatus};

use webcpm_formats::policy_document::now;

/// `registry keygen [--rotate]`.
pub(crate) fn keygen(
    global: &GlobalArgs,
    root: &std::path::Path,
    options: &fleet::KeygenOptions,
) -> Result<ExitStatus, Failure> {
    let report = fleet::keygen(root, options, now())?;
    if global.json {
        println!("{}", json!(report));
    } else if !global.quiet {
        if let Some(old) = &report.previous_key {
            eprintln!(
                "made a new signing key {}, endorsed by the root until {} (Unix time); the old one was {old}: revoke it with `keygen --revoke {old}` once no replica signs with it",
                report.signing_key, report.endorsement_expires_at
            );
        }
        println!("{}", report.public_key);
        if report.previous_key.is_none() {
            eprintln!(
                "pin it on every client: webcpm config set rollout.policy_key {}",
                report.public_key
            );
            eprintln!(
                "(for a key that signs shared compiled code, pin it as compile.shared_key instead, and set compile.shared_signing_key to {} on the machines that push)",
                options
                    .root_key
                    .clone()
                    .unwrap_or_else(|| root.join("policy-root-key"))
                    .display()
            );
        }
    }
    Ok(ExitStatus::Success)
}

/// `registry keygen --revoke KEY`.
pub(crate) fn revoke_key(
    global: &GlobalArgs,
    root: &std::path::Path,
    key: &str,
    options: &fleet::KeygenOptions,
) -> Result<ExitStatus, Failure> {
    let report = fleet::revoke_key(root, key, options.root_key.as_deref(), now())?;
    if global.json {
        println!("{}", json!(report));
    } else if !global.quiet {
        eprintln!(
            "revocation list v{}: {} key(s); every replica serves it with the policy once it has this directory",
            report.version,
            report.revoked.len()
        );
    }
    Ok(ExitStatus::Success)
}

fn who(change: &FleetChange) -> String {
    change
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `registry rollout ...`.
pub(crate) fn rollout(global: &GlobalArgs, cmd: FleetCommand) -> Result<ExitStatus, Failure> {
    let (change, how) = match cmd {
        FleetCommand::Status { place } => {
            let storage = storage(&place)?;
            return status(global, &fleet::status(&storage, &storage.keys, now())?);
        }
        FleetCommand::Automate {
            place,
            on_regression,
            min_samples,
            threshold,
            window,
        } => {
            return automate(
                global,
                &place,
                on_regression,
                min_samples,
                threshold,
                window,
            );
        }
        FleetCommand::Set {
            v3_percent,
            package,
            webc,
            clear,
            change,
        } => {
            let what = match (package, webc, v3_percent) {
                (Some(package), _, _) if clear => Change::Clear { package },
                (Some(package), Some(webc), _) => Change::Format { package, webc },
                (package, None, Some(v3_percent)) => Change::Percent {
                    package,
                    v3_percent,
                },
                _ => return Err(Failure::usage("nothing to set").hint("pass --v3-percent N")),
            };
            (what, change)
        }
        FleetCommand::Halt { change } => (Change::Halt, change),
        FleetCommand::Rollback { change } => (Change::Rollback, change),
        FleetCommand::Resume { change } => (Change::Resume, change),
    };
    let made = fleet::change(
        &storage(&how.place)?,
        &change,
        &who(&how),
        &how.reason,
        now(),
    )?;
    if global.json {
        let (policy, record) = match &made {
            Some((p, r)) => (Some(p), Some(r)),
            None => (None, None),
        };
        println!(
            "{}",
            json!({"changed": made.is_some(), "policy": policy, "change": record})
        );
    } else if !global.quiet {
        match &made {
            Some((policy, record)) => println!(
                "policy v{}: {} ({} by {})",
                policy.policy_version,
                record.action,
                if record.reason.is_empty() {
                    "no reason given"
                } else {
                    &record.reason
                },
                record.actor
            ),
            None => println!("nothing changed: the policy in force already says so"),
        }
    }
    Ok(ExitStatus::Success)
}

/// The registry's storage named by `--root`, `--database` and `--blobs`.
fn storage(place: &RegistryPlace) -> Result<crate::Storage, Failure> {
    Ok(place.storage()?)
}

fn automate(
    global: &GlobalArgs,
    place: &RegistryPlace,
    on_regression: Option<OnRegression>,
    min_samples: Option<u32>,
    threshold: Option<f64>,
    window: Option<u64>,
) -> Result<ExitStatus, Failure> {
    let storage = storage(place)?;
    let mut a: Automation = fleet::status(&storage, &storage.keys, now())?.automation;
    if let Some(action) = on_regression {
        a.on_regression = action;
    }
    a.min_samples = min_samples.unwrap_or(a.min_samples).max(1);
    a.threshold = threshold.unwrap_or(a.threshold).max(0.0);
    a.window = window.map_or(a.window, |s| std::time::Duration::from_secs(s.max(1)));
    fleet::automate(&storage, &a)?;
    if global.json {
        println!("{}", json!(a));
    } else if !global.quiet {
        println!(
            "on a v3 regression: {} (at least {} reports of each format, v3 worse by more than {} points, over {} s)",
            a.on_regression.as_str(),
            a.min_samples,
            a.threshold,
            a.window.as_secs()
        );
    }
    Ok(ExitStatus::Success)
}

fn status(global: &GlobalArgs, s: &RolloutStatus) -> Result<ExitStatus, Failure> {
    if global.json {
        println!("{}", json!(s));
        return Ok(ExitStatus::Success);
    }
    let p = &s.policy;
    println!(
        "policy v{}: v3 at {}%{}{}",
        p.policy_version,
        p.v3_percent,
        if p.halted { ", HALTED" } else { "" },
        if p.rolled_back {
            ", ROLLED BACK to v2"
        } else {
            ""
        }
    );
    for (name, rule) in &p.packages {
        match (rule.webc, rule.v3_percent) {
            (Some(webc), _) => println!("  {name}: {webc}"),
            (None, Some(percent)) => println!("  {name}: v3 at {percent}%"),
            _ => {}
        }
    }
    match &s.public_key {
        Some(key) => println!("signing key: {key}"),
        None => println!("signing key: none (run `webcpm registry keygen`)"),
    }
    println!("automation: {}", s.automation);
    let rate = |r: &fleet::Rate| format!("{:.1}% of {}", r.percent(), r.reports);
    let o = &s.rates.overall;
    println!("failures: v3 {}, v2 {}", rate(&o.v3), rate(&o.v2));
    for (name, r) in &s.rates.packages {
        println!("  {name}: v3 {}, v2 {}", rate(&r.v3), rate(&r.v2));
    }
    for c in &s.history {
        println!(
            "  v{} {} by {} at {}: {}",
            c.policy_version, c.action, c.actor, c.at, c.reason
        );
    }
    Ok(ExitStatus::Success)
}
