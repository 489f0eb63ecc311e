//! `webcpm tree` and `webcpm why ns/name`: what a lockfile holds, as the trees of its roots, and
//! the paths from a root to one package (why it is there).

use std::path::Path;

use crate::printer::out;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::cli::lockfile::read_lockfile;
use crate::lock_graph::Graph;
use crate::package::PackageName;

pub(crate) fn tree(ctx: &Context, lockfile: &Path) -> Result<ExitStatus, Failure> {
    let graph = Graph::of(&read_lockfile(lockfile)?);
    let lines = graph.tree();
    if ctx.global.json {
        out!("{}", json!({ "lockfile": lockfile, "tree": lines }));
        return Ok(ExitStatus::Success);
    }
    for line in &lines {
        let mark = if line.repeated { " (*)" } else { "" };
        out!(
            "{}{}@{}{mark}",
            "  ".repeat(line.depth),
            line.package,
            line.version
        );
    }
    if lines.iter().any(|l| l.repeated) {
        ctx.note("(*): shown above with its dependencies");
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn why(
    ctx: &Context,
    lockfile: &Path,
    package: &PackageName,
) -> Result<ExitStatus, Failure> {
    let graph = Graph::of(&read_lockfile(lockfile)?);
    let paths = graph.why(package.as_str());
    if ctx.global.json {
        out!("{}", json!({ "package": package, "paths": paths }));
    } else {
        for path in &paths {
            out!("{}", path.join(" -> "));
        }
    }
    if paths.len() >= crate::lock_graph::MAX_PATHS {
        ctx.note(format!(
            "the first {} paths; there may be more",
            crate::lock_graph::MAX_PATHS
        ));
    }
    if paths.is_empty() {
        return Err(
            Failure::usage(format!("{package} is not in {}", lockfile.display()))
                .hint("`webcpm tree` shows what the lockfile holds"),
        );
    }
    Ok(ExitStatus::Success)
}
