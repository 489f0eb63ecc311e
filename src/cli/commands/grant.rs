//! `webcpm grant`: gives a package something of the host for every run (the network, a
//! directory, the host's environment), takes it back (`--revoke`), or lists what was given
//! (`--list`). Grants live in the store's index, beside the installs they go with.

use crate::printer::out;
use serde_json::json;

use crate::cli::args::GrantArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::cli::host::{capabilities, named_as_given};
use crate::package::PackageName;
use crate::store::Capability;

pub(crate) fn grant(ctx: &Context, args: GrantArgs) -> Result<ExitStatus, Failure> {
    if args.list {
        return list(ctx, args.package.as_ref());
    }
    let package = args
        .package
        .as_ref()
        .expect("clap requires a package unless --list");
    let store = ctx.store()?;
    let named = match args.revoke {
        true => named_as_given(&args.host)?,
        false => capabilities(&args.host)?,
    };
    if args.revoke {
        let removed = match named.is_empty() {
            true => store.index().revoke(package, None)?,
            false => named
                .iter()
                .map(|c| store.index().revoke(package, Some(c)))
                .sum::<Result<usize, _>>()?,
        };
        ctx.say(format!("Took back {removed} grant(s) from {package}"));
        return Ok(ExitStatus::Success);
    }
    if named.is_empty() {
        return Err(Failure::usage("nothing to grant")
            .hint("name what to give: --net, --dir HOST[:GUEST], --volume HOST:GUEST, --mapdir GUEST:HOST, --forward-host-env"));
    }
    for capability in &named {
        store.index().grant(package, capability)?;
        ctx.say(format!("Granted {package} {capability}"));
    }
    Ok(ExitStatus::Success)
}

fn list(ctx: &Context, package: Option<&PackageName>) -> Result<ExitStatus, Failure> {
    let Some(store) = crate::store::Store::open_existing(&ctx.home)? else {
        return Ok(ExitStatus::Success);
    };
    let grants: Vec<(PackageName, Capability)> = store
        .index()
        .all_grants()?
        .into_iter()
        .filter(|(p, _)| package.is_none_or(|want| want == p))
        .collect();
    if ctx.global.json {
        let rows: Vec<_> = grants
            .iter()
            .map(|(p, c)| json!({"package": p, "grant": c}))
            .collect();
        out!("{}", json!({ "grants": rows }));
    } else if grants.is_empty() {
        ctx.say("No grants: every program gets only its package's files, stdio, its arguments and the environment it is given");
    } else {
        for (p, c) in &grants {
            out!("{p}\t{c}");
        }
    }
    Ok(ExitStatus::Success)
}
