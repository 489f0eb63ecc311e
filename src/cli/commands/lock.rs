//! `webcpm lock`: resolves the requests and writes a lockfile with both formats of every
//! package of each tree; with `--locked`, writes nothing and fails if the file would change.

use crate::printer::out;
use serde_json::json;

use crate::cli::args::LockArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::lockfile::{read_lockfile, write_lockfile};
use crate::install::Network;
use crate::lockfile::{Lockfile, changes};

pub(crate) async fn lock(ctx: &Context, args: LockArgs) -> Result<ExitStatus, Failure> {
    let installer = ctx.installer(Network::Online)?;
    let mut resolved = Vec::new();
    for spec in &args.packages {
        let resolution = installer.resolve(spec, args.format.no_deps).await?;
        resolved.push((spec.clone(), resolution));
    }
    let lock = Lockfile::new(&ctx.settings.registry.url.val, &resolved);
    let path = &args.output;
    if args.locked {
        let old = read_lockfile(path)?;
        if !old.same_as(&lock) {
            let lines = changes(&old, &lock);
            let mut failure = Failure::new(
                FailureKind::Resolution,
                format!("{} would change", path.display()),
            );
            for line in lines.iter().take(20) {
                failure = failure.hint(line.clone());
            }
            return Err(failure.hint("run `webcpm lock` without --locked to write it"));
        }
    } else {
        if let Ok(old) = read_lockfile(path) {
            crate::cli::publishers::warn_lockfile(&old, &lock);
        }
        write_lockfile(path, &lock.to_text())?;
    }
    if ctx.global.json {
        out!(
            "{}",
            json!({"lockfile": path, "roots": lock.roots, "packages": lock.packages.len(), "written": !args.locked})
        );
        return Ok(ExitStatus::Success);
    }
    for root in &lock.roots {
        ctx.say(format!(
            "{} -> {}@{} (WebC {}, {})",
            root.request, root.package, root.version, root.webc, root.rule
        ));
    }
    let verb = if args.locked {
        "is up to date"
    } else {
        "written"
    };
    ctx.say(format!(
        "{} {verb}: {} packages, both formats of each",
        path.display(),
        lock.packages.len()
    ));
    Ok(ExitStatus::Success)
}
