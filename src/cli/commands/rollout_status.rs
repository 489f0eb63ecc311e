//! `webcpm rollout status`: the policy, the pins, and each installed package's format, cohort
//! and deciding rule, with the recent events.

use crate::printer::out;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::policy::{Cohort, Policy};
use crate::store::{Event, Installed, Store};

pub(crate) fn status(ctx: &Context) -> Result<ExitStatus, Failure> {
    let (policy, installs, events) = match Store::open_existing(&ctx.home)? {
        Some(store) => (
            ctx.policy(&store)?,
            store.index().installs()?,
            store.index().recent_events(10)?,
        ),
        None => (ctx.settings.policy(), Vec::new(), Vec::new()),
    };
    let source = source(ctx);
    if ctx.global.json {
        print_json(&policy, &installs, &events, &source);
    } else {
        out!("source: {}", source_line(&source));
        print_text(&policy, &installs, &events);
    }
    Ok(ExitStatus::Success)
}

/// Where the rollout comes from: local, or the registry's policy with its version and age.
fn source(ctx: &Context) -> serde_json::Value {
    let Some(config) = ctx.settings.policy_source() else {
        return json!({"source": "local"});
    };
    let now = crate::fleet::source::now();
    match crate::fleet::source::load(&crate::fleet::dir(&ctx.home), &config.key) {
        Some(c) => json!({
            "source": "registry",
            "url": crate::http::redact(&config.url),
            "policy_version": c.version(),
            "age_seconds": (now - c.checked_at).max(0),
            "expires_at": c.envelope.policy.expires_at,
            "expired": now >= c.envelope.policy.expires_at,
            "rolled_back": c.envelope.policy.rolled_back,
            "halted": c.envelope.policy.halted,
            "v3_percent": c.envelope.policy.v3_percent,
            "packages": c.envelope.policy.packages,
        }),
        None => json!({
            "source": "registry",
            "url": crate::http::redact(&config.url),
            "policy_version": null,
        }),
    }
}

fn source_line(s: &serde_json::Value) -> String {
    if s["source"] == "local" {
        return "local config (no registry policy key pinned)".into();
    }
    if s["policy_version"].is_null() {
        return format!(
            "registry {} (no policy fetched yet: the local rollout applies)",
            s["url"].as_str().unwrap_or("")
        );
    }
    format!(
        "registry {}, policy v{}, checked {} s ago{}{}{}",
        s["url"].as_str().unwrap_or(""),
        s["policy_version"],
        s["age_seconds"],
        if s["expired"] == true {
            ", EXPIRED: v2 first (safe state)"
        } else {
            ""
        },
        if s["rolled_back"] == true {
            ", ROLLED BACK"
        } else {
            ""
        },
        if s["halted"] == true { ", halted" } else { "" },
    )
}

fn print_json(
    policy: &Policy,
    installs: &[Installed],
    events: &[Event],
    source: &serde_json::Value,
) {
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
    out!(
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
            "registry": source,
        })
    );
}

fn print_text(policy: &Policy, installs: &[Installed], events: &[Event]) {
    let names: Vec<&str> = policy.priority.iter().map(|w| w.as_str()).collect();
    let percent = match &policy.rollout.registry {
        Some(r) => format!(
            "{}% (registry policy v{}; local {}%)",
            r.v3_percent, r.version, policy.rollout.v3_percent
        ),
        None => format!("{}%", policy.rollout.v3_percent),
    };
    out!(
        "policy: priority {}, fallback {}, v3 rollout {percent}{}",
        names.join(", "),
        if policy.fallback { "on" } else { "off" },
        if policy.rollout.rolled_back {
            ", EMERGENCY ROLLBACK to v2 in force"
        } else {
            ""
        }
    );
    for (name, webc) in &policy.rollout.pins {
        out!("pin: {name} -> {webc}");
    }
    for i in installs {
        let order = policy.order(&i.package);
        let pending = if order.formats[0] == i.webc {
            String::new()
        } else {
            format!(" (policy wants {})", order.formats[0])
        };
        out!(
            "  {:<32} {:<10} {}{pending}  [{}]",
            i.package,
            i.version,
            i.webc,
            order.rule
        );
    }
    if !events.is_empty() {
        out!("recent events:");
        for e in events {
            out!(
                "  {} {} {}",
                e.kind,
                e.package.as_deref().unwrap_or("-"),
                e.detail
            );
        }
    }
}
