//! `webcpm install`: every requested package and its tree, in parallel; then the store's
//! capacity is enforced.

use std::time::Instant;

use serde_json::json;

use crate::cli::args::InstallArgs;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::install::{InstallOptions, InstallReport, Network};
use crate::package::PackageSpec;
use crate::store::Store;

pub async fn install(ctx: &Context, args: InstallArgs) -> Result<ExitStatus, Failure> {
    let network = if args.offline {
        Network::Offline
    } else {
        Network::Online
    };
    let installer = ctx.installer(network)?;
    let options = InstallOptions {
        no_deps: args.format.no_deps,
        network,
        refresh: args.refresh,
    };
    let started = Instant::now();
    let results = futures_util::future::join_all(
        args.packages
            .iter()
            .map(|spec| installer.install(spec, options)),
    )
    .await;
    let mut installed = Vec::new();
    let mut failures = Vec::new();
    for (spec, result) in args.packages.iter().zip(results) {
        match result {
            Ok(report) => {
                say_installed(ctx, &report, started);
                installed.push(report);
            }
            Err(e) => failures.push((spec.clone(), Failure::from(e))),
        }
    }
    if ctx.global.json && failures.is_empty() {
        println!("{}", json!({ "installed": installed }));
    }
    drop(installer);
    enforce_capacity(ctx)?;
    match failures.len() {
        0 => Ok(ExitStatus::Success),
        1 if installed.is_empty() => Err(failures.pop().expect("one failure").1),
        _ => Ok(report_failures(
            ctx,
            &installed,
            &failures,
            args.packages.len(),
        )),
    }
}

fn say_installed(ctx: &Context, report: &InstallReport, started: Instant) {
    if report.up_to_date {
        ctx.say(format!(
            "{}@{} is already installed ({})",
            report.package, report.version, report.webc
        ));
        return;
    }
    let took = started.elapsed().as_secs_f64();
    ctx.say(format!(
        "Installed {}@{} as WebC {} ({} bytes) in {took:.2}s",
        report.package, report.version, report.webc, report.size
    ));
    if let Some(from) = report.fell_back_from {
        ctx.say(format!("  fell back from {from}: {}", report.reason));
    }
}

/// Some of several packages failed: each is named, and the worst failure sets the exit code.
fn report_failures(
    ctx: &Context,
    installed: &[InstallReport],
    failures: &[(PackageSpec, Failure)],
    requested: usize,
) -> ExitStatus {
    for (spec, f) in failures {
        eprintln!("error: {spec}: {}", f.message);
        for h in &f.hints {
            eprintln!("  hint: {h}");
        }
    }
    if ctx.global.json {
        let errors: Vec<_> = failures
            .iter()
            .map(|(spec, f)| json!({"package": spec.to_string(), "error": f.message, "kind": f.kind}))
            .collect();
        println!(
            "{}",
            json!({
                "installed": installed,
                "error": format!("{} of {requested} packages failed", failures.len()),
                "kind": failures[0].1.kind,
                "errors": errors,
            })
        );
    }
    failures
        .iter()
        .map(|(_, f)| f.status)
        .max_by_key(|s| s.code())
        .unwrap_or(ExitStatus::Success)
}

/// After an install: when the store has a capacity and is over it, evict what no install uses,
/// least recently used first. Skipped when another process is using the store: it is not worth
/// waiting for, the next command will do it.
fn enforce_capacity(ctx: &Context) -> Result<(), Failure> {
    let store_capacity = ctx.settings.store.max_size.val;
    let compiled_capacity = ctx.settings.compile_cache().capacity();
    if store_capacity.is_none() && compiled_capacity.is_none() {
        return Ok(());
    }
    let Some(store) = Store::try_open_exclusive(&ctx.home)? else {
        return Ok(());
    };
    let store = ctx.configured(store);
    let engines = ctx.engine_hashes()?;
    if let Some(capacity) = compiled_capacity {
        store.gc_compiled(&engines, capacity)?;
    }
    let Some(capacity) = store_capacity else {
        return Ok(());
    };
    let report = store.gc(&engines, Some(capacity))?;
    if report.freed_bytes > 0 {
        tracing::info!(
            "store over its capacity of {capacity} bytes: removed {} unused packages and {} compiled modules",
            report.removed_blobs,
            report.removed_artifacts
        );
    }
    Ok(())
}
