//! `webcpm update [ns/name...]`: moves installs to the newest version their request allows,
//! with the usual policy, fallback and compile; the old version stays in use until the new one
//! is installed and compiled.

use crate::printer::out;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::publishers::StoreBefore;
use crate::cli::requests::Before;
use crate::install::{InstallOptions, Network};
use crate::package::{PackageName, PackageSpec};
use crate::store::Store;

pub(crate) async fn update(ctx: &Context, names: &[PackageName]) -> Result<ExitStatus, Failure> {
    let installs = match Store::open_existing(&ctx.home)? {
        Some(store) => store.index().installs()?,
        None => Vec::new(),
    };
    if let Some(missing) = names
        .iter()
        .find(|n| !installs.iter().any(|i| &i.package == *n))
    {
        return Err(
            Failure::new(FailureKind::Package, format!("{missing} is not installed"))
                .hint("`webcpm list` shows what is installed"),
        );
    }
    let installer = ctx.installer(Network::Online)?;
    let options = InstallOptions {
        refresh: true,
        ..InstallOptions::default()
    };
    let before = Before::read(
        ctx,
        &installs
            .iter()
            .map(|i| i.package.clone())
            .collect::<Vec<_>>(),
    );
    let publishers = StoreBefore::read(ctx);
    let mut moved = Vec::new();
    for install in installs
        .iter()
        .filter(|i| names.is_empty() || names.contains(&i.package))
    {
        let spec: PackageSpec = install.request.parse().unwrap_or(PackageSpec {
            name: install.package.clone(),
            version: crate::package::VersionRequest::Latest,
        });
        let report = match installer.install(&spec, options).await {
            Ok(report) => report,
            Err(e) => {
                // What was updated before the failure is still warned about.
                publishers.warn(ctx);
                return Err(e.into());
            }
        };
        let from = install.version.to_string();
        if report.version == from {
            ctx.say(format!("{} {from} is up to date", install.package));
        } else {
            ctx.say(format!(
                "Updated {} {from} -> {} (WebC {})",
                install.package, report.version, report.webc
            ));
            before.show(ctx, &install.package, &report.version, &report.sha256);
        }
        moved.push(json!({"package": install.package, "from": from, "to": report.version, "webc": report.webc}));
    }
    publishers.warn(ctx);
    if ctx.global.json {
        out!("{}", json!({ "updated": moved }));
    }
    Ok(ExitStatus::Success)
}
