//! `webcpm show ns/name[@request]`: a package as the registry offers it (see
//! [`crate::show`]), from one query: every version, and the one the request names in detail.

use crate::printer::{out, plain};

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::install::InstallError;
use crate::package::PackageSpec;
use crate::show::{Detail, describe};
use crate::store::Store;

pub(crate) async fn show(ctx: &Context, spec: &PackageSpec) -> Result<ExitStatus, Failure> {
    let client = ctx.client()?;
    let Some(releases) = client
        .package(&spec.name)
        .await
        .map_err(InstallError::from)?
    else {
        return Err(Failure::from(InstallError::from(
            crate::resolver::ResolveError::NotFound(spec.name.clone()),
        )));
    };
    let store = Store::open_existing(&ctx.home)?;
    let shown = describe(&releases, &spec.version, &ctx.cooldown()?, store.as_ref());
    if ctx.global.json {
        ctx.print_json(&shown);
        return Ok(ExitStatus::Success);
    }
    out!("{}: {} versions", shown.package, shown.versions.len());
    for v in &shown.versions {
        let mut marks = Vec::new();
        if v.yanked {
            marks.push("yanked".to_string());
        }
        if let Some(held) = &v.held {
            marks.push(held.clone());
        }
        let by = v.publisher.as_deref().map(|p| format!("by {}", plain(p)));
        out!(
            "  {:<12} {:<22} {:<16} {}",
            v.version,
            v.published.as_deref().unwrap_or("(no publish time)"),
            by.unwrap_or_else(|| "(publisher not said)".into()),
            plain(&marks.join("; "))
        );
    }
    match &shown.detail {
        Some(detail) => print_detail(detail),
        None => ctx.note(format!("no version matches `{}`", spec.version)),
    }
    Ok(ExitStatus::Success)
}

fn print_detail(d: &Detail) {
    out!("{}:", d.version);
    for f in &d.formats {
        let size = f
            .size
            .map_or("size unknown".into(), |n| format!("{n} bytes"));
        out!("  {}  sha256:{}  {size}", f.webc, f.sha256);
        out!("      {}", plain(&f.url));
    }
    for c in &d.commands {
        let network = match &c.network {
            None => "the network: known once installed".to_string(),
            Some(imports) if imports.is_empty() => "no network".to_string(),
            Some(imports) => format!("can use the network ({})", imports.join(", ")),
        };
        out!("  command {}: {network}", plain(&c.name));
    }
    if !d.mounts.is_empty() {
        out!(
            "  mounts its own files, read-only, at {}",
            d.mounts.join(", ")
        );
    }
}
