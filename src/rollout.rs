//! Keeping installs in line with the format policy: after `rollout rollback`, `resume`, `set`,
//! `pin` and `unpin`, every installed package is re-pointed at the format the policy now wants.
//!
//! Re-pointing needs no registry query: the index remembers what the registry offered for both
//! formats of every installed version (URL, SHA-256, size). A blob the store already holds is
//! used as it is; one it lacks is downloaded and verified like any other; either way its atoms
//! are compiled before the install moves. Each install moves in one SQLite transaction, after
//! everything it will point at is complete on disk: an interrupted rollback leaves every install
//! on a complete artifact, old or new, and running it again finishes the job.

use futures_util::StreamExt;

use crate::artifacts;
use crate::install::Installer;
use crate::package::{PackageName, WebcVersion};
use crate::store::{InstallMember, Installed, Repoint};

/// What became of one install.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Moved {
    pub package: PackageName,
    pub from: WebcVersion,
    pub to: WebcVersion,
    /// `switched`, `unchanged` or `kept` (could not move; `reason` says why).
    pub outcome: &'static str,
    pub rule: String,
    pub reason: String,
}

/// Re-points every install at the format the installer's policy wants. `cause` is written to
/// the event log with each move.
pub async fn align(installer: &Installer, cause: &str, offline: bool) -> Vec<Moved> {
    let installs = match installer.store.index().installs() {
        Ok(list) => list,
        Err(e) => {
            tracing::error!("cannot list installs: {e}");
            return Vec::new();
        }
    };
    let jobs = installs
        .into_iter()
        .map(|install| align_one(installer, install, cause, offline));
    futures_util::stream::iter(jobs)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn align_one(installer: &Installer, install: Installed, cause: &str, offline: bool) -> Moved {
    let order = installer.policy.order(&install.package);
    let moved = |to: WebcVersion, outcome, reason: String| Moved {
        package: install.package.clone(),
        from: install.webc,
        to,
        outcome,
        rule: order.rule.clone(),
        reason,
    };
    let members = match installer.store.index().members(&install.package) {
        Ok(m) if !m.is_empty() => m,
        Ok(_) => {
            return moved(
                install.webc,
                "kept",
                "the install has no recorded tree".into(),
            );
        }
        Err(e) => return moved(install.webc, "kept", e.to_string()),
    };
    let mut failures: Vec<String> = Vec::new();
    for &webc in &order.formats {
        if webc == install.webc {
            let outcome = if failures.is_empty() {
                "unchanged"
            } else {
                "kept"
            };
            let reason = if failures.is_empty() {
                format!("already {webc}")
            } else {
                failures.join("; ")
            };
            return moved(webc, outcome, reason);
        }
        match switch(installer, &install, &members, webc, offline).await {
            Ok(new_members) => {
                let fell_back_from = (webc != order.formats[0]).then_some(order.formats[0]);
                let reason = if failures.is_empty() {
                    format!("{cause}: {}", order.rule)
                } else {
                    format!("{cause}: fallback: {}", failures.join("; "))
                };
                let written = installer.store.index().repoint(
                    &install.package,
                    &Repoint {
                        webc,
                        members: &new_members,
                        rule: &order.rule,
                        reason: &reason,
                        fell_back_from,
                        cause,
                    },
                );
                return match written {
                    Ok(()) => moved(webc, "switched", reason),
                    Err(e) => moved(install.webc, "kept", e.to_string()),
                };
            }
            Err(why) => failures.push(format!("{webc}: {why}")),
        }
    }
    moved(install.webc, "kept", failures.join("; "))
}

/// Makes every member of an install present and compiled in `webc`; returns the new tree.
async fn switch(
    installer: &Installer,
    install: &Installed,
    members: &[InstallMember],
    webc: WebcVersion,
    offline: bool,
) -> Result<Vec<InstallMember>, String> {
    let index = installer.store.index();
    let mut new_members = Vec::with_capacity(members.len());
    for m in members {
        let dist = index
            .distribution(&install.registry, &m.package, &m.version, webc)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}@{} is not offered as {webc}", m.package, m.version))?;
        let present = installer
            .store
            .blob(&dist.sha256)
            .map_err(|e| e.to_string())?
            .is_some();
        if !present {
            if offline {
                return Err(format!(
                    "{}@{} as {webc} is not in the store and --offline forbids downloading it",
                    m.package, m.version
                ));
            }
            let _permit = installer.downloads.acquire().await.expect("never closed");
            let label = format!("{}@{} ({webc})", m.package, m.version);
            installer
                .fetch_locked(&dist, &label)
                .await
                .map_err(|e| e.to_string())?;
        }
        new_members.push(InstallMember {
            package: m.package.clone(),
            version: m.version.clone(),
            webc,
            sha256: dist.sha256,
            depth: m.depth,
        });
    }
    if let Some(runtime) = &installer.runtime {
        let blobs: Vec<_> = new_members.iter().map(|m| m.sha256).collect();
        artifacts::prepare(
            &installer.store,
            runtime,
            &blobs,
            &installer.compile_reporter,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(new_members)
}
