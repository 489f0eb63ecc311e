//! Following the registry's rollout policy from the command line: before a command that talks
//! to the registry, refresh the policy when the last good copy is older than `rollout.refresh`;
//! when the policy in force is not the one installs were last re-pointed for, re-point them; and
//! post queued outcome reports. After `install` and `run`, queue their outcomes.
//!
//! None of it can fail a command: a registry that is away, a refused policy or a full outbox is
//! a warning, and the last good policy stays in force. A warm `run` waits on the network at
//! most [`TIGHT`], and only once the copy is stale.

use std::time::Duration;

use super::context::Context;
use super::failure::{ExitStatus, Failure};
use crate::fleet::reports::{self, Phase, Report};
use crate::fleet::{self, Refresh, SourceConfig, source};
use crate::install::Network;
use crate::package::PackageName;
use crate::rollout::{MoveOutcome, Moved};
use crate::store::Store;

/// How long a warm `run` may wait for the registry's policy or take its reports.
pub(super) const TIGHT: Duration = Duration::from_millis(300);

/// How long a command may wait on the registry's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// At most [`TIGHT`] (`run`).
    Tight,
    /// The usual network timeout (`install`, `resolve`, `rollout sync`).
    Normal,
}

/// What following did, for `rollout sync`.
#[derive(Debug, Default)]
pub(super) struct Followed {
    pub refresh: Option<Refresh>,
    /// The installs that were re-pointed for a new policy, if any were looked at.
    pub moved: Option<Vec<Moved>>,
    pub reports_sent: usize,
}

fn http(ctx: &Context) -> Option<crate::http::Client> {
    crate::http::client(&ctx.settings.http())
        .map_err(|e| tracing::warn!("cannot set up HTTP for the rollout policy: {e}"))
        .ok()
}

/// Refreshes the policy (always with `force`), re-points installs when it changed, and flushes
/// reports. Does nothing when the machine follows no registry.
pub(super) async fn follow(ctx: &Context, wait: Wait, network: Network, force: bool) -> Followed {
    let mut out = Followed::default();
    let Some(config) = ctx.settings.policy_source() else {
        return out;
    };
    let dir = fleet::dir(&ctx.home);
    let timeout = match wait {
        Wait::Tight => TIGHT,
        Wait::Normal => ctx
            .settings
            .download
            .timeout
            .val
            .min(Duration::from_secs(10)),
    };
    let mut client = None;
    let mut cached = source::load(&dir, &config.key);
    let due = force
        || (cached.as_ref().is_none_or(|c| c.stale(config.refresh))
            && !source::backing_off(&dir, &config));
    // Only a stale copy costs an HTTP client: a warm run with a fresh copy reads one file.
    if network == Network::Online
        && due
        && let Some(http) = http(ctx)
    {
        let refresh = source::refresh(&http, &config, &dir, timeout, true).await;
        match &refresh {
            Refresh::Updated { to, .. } => tracing::info!("rollout policy v{to} from the registry"),
            Refresh::Failed(e) => tracing::warn!("{e}"),
            Refresh::UpToDate | Refresh::Confirmed => {}
        }
        client = Some(http);
        out.refresh = Some(refresh);
        cached = source::load(&dir, &config.key);
    }
    let layer = cached.and_then(|c| source::layer(&c, source::now()));
    if let Some(layer) = layer.as_ref().filter(|l| l.expired) {
        tracing::warn!(
            "the registry's policy v{} has expired and no fresh copy could be had: v2 comes first until the registry answers",
            layer.version
        );
    }
    if let Some(layer) = layer {
        out.moved = repoint(ctx, layer.version, network, force).await;
    }
    if let Some(http) = client {
        out.reports_sent = flush(ctx, &http, &config, timeout).await;
    }
    out
}

/// Re-points installs for the policy in force, when it is not the one they were last
/// re-pointed for (or always, with `force`).
async fn repoint(ctx: &Context, version: u64, network: Network, force: bool) -> Option<Vec<Moved>> {
    let dir = fleet::dir(&ctx.home);
    if !force && source::applied(&dir) == Some(version) {
        return None;
    }
    if !ctx.home.join("index.sqlite").exists() {
        let _ = source::set_applied(&dir, version);
        return Some(Vec::new());
    }
    let installer = match ctx.installer(network) {
        Ok(installer) => installer,
        Err(f) => {
            tracing::warn!(
                "cannot re-point installs for the registry's policy: {}",
                f.message
            );
            return None;
        }
    };
    let cause = format!("registry policy v{version}");
    let _ = installer.store.index().log_event("policy", None, &cause);
    let moved = match crate::rollout::align(&installer, &cause, network).await {
        Ok(moved) => moved,
        Err(e) => {
            tracing::warn!("cannot re-point installs for the registry's policy: {e}");
            return None;
        }
    };
    // `rollout sync` (forced) prints the moves itself.
    for m in moved
        .iter()
        .filter(|m| m.outcome == MoveOutcome::Switched && !force)
    {
        ctx.note(format!("{cause}: {} {} -> {}", m.package, m.from, m.to));
    }
    if moved.iter().all(|m| !m.failed) {
        let _ = source::set_applied(&dir, version);
    }
    Some(moved)
}

async fn flush(
    ctx: &Context,
    http: &crate::http::Client,
    config: &SourceConfig,
    timeout: Duration,
) -> usize {
    let dir = fleet::dir(&ctx.home);
    if !ctx.settings.fleet.report.val || reports::pending(&dir) == 0 {
        return 0;
    }
    let Ok(Some(store)) = Store::open_existing(&ctx.home) else {
        return 0;
    };
    let Ok(id) = store.installation_id() else {
        return 0;
    };
    drop(store);
    let client = reports::client_id(&config.url, &id);
    let url = fleet::reports_url(&config.url);
    let outbox = reports::Outbox {
        url: &url,
        client: &client,
        token: ctx
            .settings
            .fleet
            .report_token
            .as_ref()
            .map(|t| t.val.as_str()),
    };
    match reports::flush(http, &outbox, &dir, timeout).await {
        Ok(n) => n,
        Err(e) => {
            tracing::info!("{e}");
            0
        }
    }
}

/// Whether a command's result counts as a failure, and its class.
fn classify(result: &Result<ExitStatus, Failure>) -> Option<Option<String>> {
    match result {
        Ok(ExitStatus::Interrupted) => None,
        Ok(ExitStatus::Trapped) => Some(Some("trap".into())),
        Ok(ExitStatus::Failed(kind)) | Err(Failure { kind, .. }) => Some(Some(
            serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "error".into()),
        )),
        Ok(ExitStatus::Success | ExitStatus::Program(_)) => Some(None),
    }
}

/// Queues the outcome of `phase` for `packages` (only when following a registry and reporting).
pub(super) fn record(
    ctx: &Context,
    packages: &[PackageName],
    phase: Phase,
    result: &Result<ExitStatus, Failure>,
) {
    if ctx.settings.policy_source().is_none() || !ctx.settings.fleet.report.val {
        return;
    }
    let Some(error_class) = classify(result) else {
        return;
    };
    let Ok(Some(store)) = Store::open_existing(&ctx.home) else {
        return;
    };
    let Ok(id) = store.installation_id() else {
        return;
    };
    let queued: Vec<Report> = packages
        .iter()
        .filter_map(|name| {
            let installed = store.index().installed(name).ok().flatten();
            let (version, format) = match installed {
                Some(i) => (i.version.to_string(), i.webc),
                // Nothing installed: the format the policy wanted (only on failures).
                None if error_class.is_some() => {
                    let wanted = ctx.policy(&store).ok()?.order(name).formats[0];
                    (String::new(), wanted)
                }
                None => return None,
            };
            Some(Report {
                package: name.to_string(),
                version,
                format,
                phase,
                ok: error_class.is_none(),
                error_class: error_class.clone(),
                bucket: crate::policy::bucket(&id, name),
            })
        })
        .collect();
    if let Err(e) = reports::record(&fleet::dir(&ctx.home), &queued) {
        tracing::info!("{e}");
    }
}
