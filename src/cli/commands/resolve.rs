//! `webcpm resolve`: the version and WebC format a request resolves to, and with `--explain`
//! every candidate format, the ABI of its atoms, and the tree, without downloading anything.
//!
//! A WebC manifest does not say which ABI an atom needs (the runner is
//! `https://webc.org/runner/wasi` for WASI and WASIX alike): the atom's imports decide, and they
//! are read at install. So the ABI is shown for a candidate whose blob the store already holds,
//! and said to be unknown until install otherwise.

use crate::cli::args::ResolveArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::install::Network;
use crate::package::Sha256Digest;
use crate::printer::out;
use crate::store::Store;

/// The atoms of a stored blob with their ABI, as `main (preview1), sh (wasix32)`; `None` when
/// the store does not hold it (yet).
fn stored_abis(store: Option<&Store>, sha256: &str) -> Option<String> {
    let digest: Sha256Digest = sha256.parse().ok()?;
    let atoms = store?.index().atoms(&digest).ok()?;
    if atoms.is_empty() {
        return None;
    }
    let shown: Vec<String> = atoms
        .iter()
        .map(|a| match a.abi {
            Some(abi) => format!("{} ({abi})", a.name),
            None => format!("{} (ABI read at its next run)", a.name),
        })
        .collect();
    Some(shown.join(", "))
}

pub(crate) async fn resolve(ctx: &Context, args: ResolveArgs) -> Result<ExitStatus, Failure> {
    let installer = ctx.installer(Network::Online)?;
    let explanation = installer
        .explain(&args.package, args.format.no_deps)
        .await?;
    if ctx.global.json {
        ctx.print_json(&explanation);
        return Ok(ExitStatus::Success);
    }
    out!(
        "{}@{} -> WebC {} ({})",
        explanation.package,
        explanation.version,
        explanation.webc,
        explanation.rule
    );
    if !args.explain {
        return Ok(ExitStatus::Success);
    }
    let store = Store::open_existing(&ctx.home)?;
    for c in &explanation.candidates {
        out!("  {:<3} {:<9} {}", c.webc, c.outcome, c.reason);
        if let (Some(url), Some(sha)) = (&c.url, &c.sha256) {
            let size = c
                .size
                .map_or("size unknown".into(), |n| format!("{n} bytes"));
            out!("      {url}  sha256:{sha}  {size}");
            match stored_abis(store.as_ref(), sha) {
                Some(atoms) => out!("      atoms: {atoms}"),
                None => out!("      atoms: ABI read from their imports at install"),
            }
        }
    }
    for note in &explanation.notes {
        out!("  note: {note}");
    }
    if explanation.tree.len() > 1 {
        out!("  tree:");
        for m in &explanation.tree {
            out!(
                "    {}{}@{}",
                "  ".repeat(m.depth as usize),
                m.package,
                m.version
            );
        }
    }
    Ok(ExitStatus::Success)
}
