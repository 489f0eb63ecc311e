//! `webcpm resolve`: the version and WebC format a request resolves to, and with `--explain`
//! every candidate format and the tree, without downloading anything.

use crate::cli::args::ResolveArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::install::Network;

pub async fn resolve(ctx: &Context, args: ResolveArgs) -> Result<ExitStatus, Failure> {
    let installer = ctx.installer(Network::Online)?;
    let explanation = installer
        .explain(&args.package, args.format.no_deps)
        .await?;
    if ctx.global.json {
        ctx.print_json(&explanation);
        return Ok(ExitStatus::Success);
    }
    println!(
        "{}@{} -> WebC {} ({})",
        explanation.package, explanation.version, explanation.webc, explanation.rule
    );
    if !args.explain {
        return Ok(ExitStatus::Success);
    }
    for c in &explanation.candidates {
        println!("  {:<3} {:<9} {}", c.webc, c.outcome, c.reason);
        if let (Some(url), Some(sha)) = (&c.url, &c.sha256) {
            let size = c
                .size
                .map_or("size unknown".into(), |n| format!("{n} bytes"));
            println!("      {url}  sha256:{sha}  {size}");
        }
    }
    for note in &explanation.notes {
        println!("  note: {note}");
    }
    if explanation.tree.len() > 1 {
        println!("  tree:");
        for m in &explanation.tree {
            println!(
                "    {}{}@{}",
                "  ".repeat(m.depth as usize),
                m.package,
                m.version
            );
        }
    }
    Ok(ExitStatus::Success)
}
