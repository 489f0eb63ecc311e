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
use crate::install::{Installer, Network};
use crate::package::{PackageName, WebcVersion};
use crate::store::{InstallMember, Installed, Repoint};

/// Whether an install moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveOutcome {
    /// Re-pointed at the format the policy wants.
    Switched,
    /// Already on it.
    Unchanged,
    /// Could not move; the reason says why.
    Kept,
}

/// What became of one install.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Moved {
    pub package: PackageName,
    pub from: WebcVersion,
    pub to: WebcVersion,
    pub outcome: MoveOutcome,
    pub rule: String,
    pub reason: String,
    /// Kept because something failed (a download, the store, a concurrent change), not because
    /// the format is not offered: running the command again may finish the job.
    pub failed: bool,
}

/// Why one format could not be had for an install.
struct Miss {
    text: String,
    /// The registry does not offer it: nothing to retry.
    not_offered: bool,
}

/// Re-points every install at the format the installer's policy wants. `cause` is written to
/// the event log with each move.
pub async fn align(
    installer: &Installer,
    cause: &str,
    network: Network,
) -> Result<Vec<Moved>, crate::store::IndexError> {
    let installs = installer.store.index().installs()?;
    let jobs = installs
        .into_iter()
        .map(|install| align_one(installer, install, cause, network));
    Ok(futures_util::stream::iter(jobs)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await)
}

/// The formats an install could not move to, and why.
#[derive(Default)]
struct Misses(Vec<Miss>);

impl Misses {
    fn text(&self) -> String {
        let texts: Vec<&str> = self.0.iter().map(|m| m.text.as_str()).collect();
        texts.join("; ")
    }

    /// Something failed that running the command again may fix.
    fn failed(&self) -> bool {
        self.0.iter().any(|m| !m.not_offered)
    }
}

async fn align_one(
    installer: &Installer,
    install: Installed,
    cause: &str,
    network: Network,
) -> Moved {
    let order = installer.policy.order(&install.package);
    let moved = |to: WebcVersion, outcome, reason: String, failed: bool| Moved {
        package: install.package.clone(),
        from: install.webc,
        to,
        outcome,
        rule: order.rule.clone(),
        reason,
        failed,
    };
    let kept =
        |reason: String, failed: bool| moved(install.webc, MoveOutcome::Kept, reason, failed);
    let members = match installer.store.index().members(&install.package) {
        Ok(m) if !m.is_empty() => m,
        Ok(_) => return kept("the install has no recorded tree".into(), true),
        Err(e) => return kept(e.to_string(), true),
    };
    let mut misses = Misses::default();
    for &webc in &order.formats {
        if webc == install.webc && misses.0.is_empty() {
            return moved(
                webc,
                MoveOutcome::Unchanged,
                format!("already {webc}"),
                false,
            );
        }
        if webc == install.webc {
            return kept(misses.text(), misses.failed());
        }
        match switch(installer, &install, &members, webc, network).await {
            Ok(new_members) => {
                let reason = if misses.0.is_empty() {
                    format!("{cause}: {}", order.rule)
                } else {
                    format!("{cause}: fallback: {}", misses.text())
                };
                let repoint = Repoint {
                    from: install.sha256,
                    webc,
                    members: &new_members,
                    rule: &order.rule,
                    reason: &reason,
                    fell_back_from: (webc != order.formats[0]).then_some(order.formats[0]),
                    cause,
                };
                return match installer.store.index().repoint(&install.package, &repoint) {
                    Ok(true) => moved(webc, MoveOutcome::Switched, reason, false),
                    Ok(false) => moved_meanwhile(installer, &install, webc).unwrap_or_else(|| {
                        kept(
                            "another process changed this install meanwhile; run the command again"
                                .into(),
                            true,
                        )
                    }),
                    Err(e) => kept(e.to_string(), true),
                };
            }
            Err(miss) => misses.0.push(Miss {
                text: format!("{webc}: {}", miss.text),
                ..miss
            }),
        }
    }
    kept(misses.text(), misses.failed())
}

/// When another process re-pointed the install at `webc` first (two `rollout sync` at once),
/// the job is done: the install is reported unchanged.
fn moved_meanwhile(installer: &Installer, install: &Installed, webc: WebcVersion) -> Option<Moved> {
    let now = installer.store.index().installed(&install.package).ok()??;
    (now.webc == webc).then(|| Moved {
        package: install.package.clone(),
        from: install.webc,
        to: webc,
        outcome: MoveOutcome::Unchanged,
        rule: installer.policy.order(&install.package).rule,
        reason: format!("already {webc}: another process re-pointed it"),
        failed: false,
    })
}

/// Makes every member of an install present and compiled in `webc`; returns the new tree.
async fn switch(
    installer: &Installer,
    install: &Installed,
    members: &[InstallMember],
    webc: WebcVersion,
    network: Network,
) -> Result<Vec<InstallMember>, Miss> {
    let failed = |text: String| Miss {
        text,
        not_offered: false,
    };
    let index = installer.store.index();
    let mut new_members = Vec::with_capacity(members.len());
    for m in members {
        let dist = index
            .distribution(&install.registry, &m.package, &m.version, webc)
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| Miss {
                text: format!("{}@{} is not offered as {webc}", m.package, m.version),
                not_offered: true,
            })?;
        let present = installer
            .store
            .blob(&dist.sha256)
            .map_err(|e| failed(e.to_string()))?;
        // One file behind both nodes (a version older than v3): the v3 node serves the v2 file
        // that is already installed, which is not v3.
        if let Some(blob) = &present
            && blob.webc != webc
        {
            return Err(Miss {
                text: format!(
                    "{}@{}: the {webc} node serves WebC {}",
                    m.package, m.version, blob.webc
                ),
                not_offered: true,
            });
        }
        if present.is_none() {
            if network == Network::Offline {
                return Err(failed(format!(
                    "{}@{} as {webc} is not in the store and --offline forbids downloading it",
                    m.package, m.version
                )));
            }
            let _permit = installer.downloads.acquire().await.expect("never closed");
            let label = format!("{}@{} ({webc})", m.package, m.version);
            installer
                .fetch_locked(&dist, &label)
                .await
                .map_err(|e| failed(e.to_string()))?;
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
            &installer.compiling(artifacts::Recompile::IfMissing),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
    }
    Ok(new_members)
}
