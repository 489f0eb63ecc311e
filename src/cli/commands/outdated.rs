//! `webcpm outdated`: for each install, the installed version, the newest version its request
//! allows, and the newest overall, asked of the registry in one request; a warning for each
//! installed version that the registry has yanked since.

use crate::printer::{err, out};
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::cooldown::Cooldown;
use crate::install::{InstallError, Network};
use crate::package::{PackageSpec, VersionRequest, WebcVersion};
use crate::resolver::select;
use crate::store::{Installed, Store};

/// One row: what is installed, what its request allows, what there is.
#[derive(Debug, serde::Serialize)]
struct Row {
    package: String,
    request: String,
    installed: String,
    wanted: Option<String>,
    latest: Option<String>,
    /// The installed version is yanked (archived) by the registry.
    yanked: bool,
    /// The newest version the cooldown holds back (newer than `latest`), and why.
    held: Option<String>,
}

pub(crate) async fn outdated(ctx: &Context) -> Result<ExitStatus, Failure> {
    let installs = match Store::open_existing(&ctx.home)? {
        Some(store) => store.index().installs()?,
        None => Vec::new(),
    };
    let installer = ctx.installer(Network::Online)?;
    let cooldown = &installer.cooldown;
    let client = installer.client.as_ref().expect("an online installer");
    let names: Vec<_> = installs.iter().map(|i| i.package.clone()).collect();
    let answers = client.packages(&names).await.map_err(InstallError::from)?;
    let mut rows = Vec::new();
    for (install, answer) in installs.iter().zip(answers) {
        rows.push(row(install, &answer.unwrap_or_default(), cooldown));
    }
    for r in &rows {
        if let Some(held) = &r.held {
            ctx.note(format!("{}: {held} (resolve.min_release_age)", r.package));
        }
    }
    for r in rows.iter().filter(|r| r.yanked) {
        err!(
            "warning: {}@{} (installed) is yanked by the registry; `webcpm update {}` moves to what the request allows",
            r.package,
            r.installed,
            r.package
        );
    }
    if ctx.global.json {
        out!("{}", json!({ "packages": rows }));
        return Ok(ExitStatus::Success);
    }
    if rows.is_empty() {
        ctx.say("No packages installed.");
        return Ok(ExitStatus::Success);
    }
    ctx.say(format!(
        "{:<32} {:<12} {:<12} {:<12}",
        "package", "installed", "wanted", "latest"
    ));
    for r in &rows {
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        ctx.say(format!(
            "{:<32} {:<12} {:<12} {:<12}",
            r.package,
            r.installed,
            shown(&r.wanted),
            shown(&r.latest)
        ));
    }
    Ok(ExitStatus::Success)
}

fn row(install: &Installed, releases: &[crate::package::Release], cooldown: &Cooldown) -> Row {
    let request = install
        .request
        .parse::<PackageSpec>()
        .map(|s| s.version)
        .unwrap_or(VersionRequest::Latest);
    let newest = |request: &VersionRequest| {
        select(releases, request, &WebcVersion::ALL, cooldown).map(|r| r.version.to_string())
    };
    let latest = select(
        releases,
        &VersionRequest::Latest,
        &WebcVersion::ALL,
        cooldown,
    );
    let held = releases
        .iter()
        .filter(|r| !r.archived && VersionRequest::Latest.matches(&r.version))
        .filter(|r| latest.is_none_or(|l| r.version > l.version))
        .filter_map(|r| Some((r, cooldown.hold(r)?)))
        .max_by(|a, b| a.0.version.cmp(&b.0.version))
        .map(|(r, hold)| format!("{} {hold}", r.version));
    Row {
        package: install.package.to_string(),
        request: install.request.clone(),
        installed: install.version.to_string(),
        wanted: newest(&request),
        latest: newest(&VersionRequest::Latest),
        yanked: releases
            .iter()
            .any(|r| r.version == install.version && r.archived),
        held,
    }
}
