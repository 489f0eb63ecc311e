//! `webcpm cache dir|list|gc|clean|optimize`: where the store is, what it holds, making room,
//! and replacing baseline code with optimized code.

use crate::printer::out;
use std::sync::Arc;

use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::cli::reporters::CompileLines;
use crate::store::{GcReport, Store};

pub(crate) fn dir(ctx: &Context) -> ExitStatus {
    if ctx.global.json {
        out!("{}", json!({"dir": ctx.home}));
    } else {
        out!("{}", ctx.home.display());
    }
    ExitStatus::Success
}

pub(crate) fn list(ctx: &Context) -> Result<ExitStatus, Failure> {
    let blobs = match Store::open_existing(&ctx.home)? {
        Some(store) => store.index().blobs()?,
        None => Vec::new(),
    };
    if ctx.global.json {
        let rows: Vec<_> = blobs
            .iter()
            .map(|b| json!({"sha256": b.sha256, "size": b.size, "webc": b.webc}))
            .collect();
        out!("{}", json!({ "blobs": rows }));
    } else {
        for b in &blobs {
            out!("{}  {}  {} bytes", b.sha256, b.webc, b.size);
        }
    }
    Ok(ExitStatus::Success)
}

/// The store with no other process in it (for gc and clean), or `None` when there is no store.
fn exclusive_store(ctx: &Context) -> Result<Option<Store>, Failure> {
    if Store::open_existing(&ctx.home)?.is_none() {
        return Ok(None);
    }
    Ok(Some(ctx.configured(Store::open_exclusive(&ctx.home)?)))
}

pub(crate) fn gc(ctx: &Context, max_size: Option<u64>) -> Result<ExitStatus, Failure> {
    let Some(store) = exclusive_store(ctx)? else {
        if ctx.global.json {
            ctx.print_json(&GcReport::default());
        }
        return Ok(ExitStatus::Success);
    };
    let capacity = max_size.or(ctx.settings.store.max_size.val);
    let report = store.gc(&ctx.engine_hashes()?, capacity)?;
    if ctx.global.json {
        ctx.print_json(&report);
    } else {
        ctx.say(format!(
            "removed {} packages and {} compiled modules, {} bytes freed, {} bytes kept",
            report.removed_blobs, report.removed_artifacts, report.freed_bytes, report.kept_bytes
        ));
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn clean(ctx: &Context, yes: bool) -> Result<ExitStatus, Failure> {
    if !yes {
        return Err(
            Failure::usage("`cache clean` removes every install and file in the store")
                .hint("run `webcpm cache clean --yes` to do it"),
        );
    }
    let Some(store) = exclusive_store(ctx)? else {
        return Ok(ExitStatus::Success);
    };
    let freed = store.clean()?;
    if ctx.global.json {
        out!("{}", json!({"freed_bytes": freed}));
    } else {
        ctx.say(format!(
            "removed everything in {} ({freed} bytes)",
            ctx.home.display()
        ));
    }
    Ok(ExitStatus::Success)
}

/// Compiles with Cranelift what runs on baseline code only.
pub(crate) fn optimize(ctx: &Context, background: bool) -> Result<ExitStatus, Failure> {
    if Store::open_existing(&ctx.home)?.is_none() {
        return Ok(ExitStatus::Success);
    }
    let store = ctx.store()?;
    let runtime = ctx.runtime()?;
    let how = crate::artifacts::Compiling {
        shared: ctx.shared_cache()?,
        ..crate::artifacts::Compiling::local(
            Arc::new(CompileLines {
                quiet: ctx.global.quiet || ctx.global.json,
            }),
            crate::artifacts::Recompile::IfMissing,
        )
    };
    let done = crate::artifacts::optimize(&store, &runtime, &how, !background)
        .map_err(crate::install::InstallError::from)?;
    match done {
        None => ctx.note("another optimizer is at work on this store"),
        Some(n) if ctx.global.json => ctx.print_json(&json!({ "optimized": n })),
        Some(1) => ctx.say("1 module optimized"),
        Some(n) => ctx.say(format!("{n} modules optimized")),
    }
    Ok(ExitStatus::Success)
}
