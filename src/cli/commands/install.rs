//! `webcpm install`: every requested package and its tree, in parallel; then the store's
//! capacity is enforced.

use crate::printer::{err, out};
use std::time::Instant;

use serde_json::json;

use crate::cli::args::{GlobalArgs, InstallArgs};
use crate::cli::context::{Context, format_flags};
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::lockfile::read_lockfile;
use crate::cli::publishers::StoreBefore;
use crate::cli::requests::Before;
use crate::install::{InstallError, InstallOptions, InstallReport, Network};
use crate::lockfile::{LockedSource, Lockfile};
use crate::package::{PackageName, PackageSpec};
use crate::settings::keys;
use crate::store::Store;

/// The context of an install and, with `--locked`, its lockfile: the lockfile's registry is the
/// one asked, unless `--registry` names another.
pub(crate) fn context(
    global: &GlobalArgs,
    args: &InstallArgs,
) -> Result<(Context, Option<Lockfile>), Failure> {
    let lock = args.locked.as_deref().map(read_lockfile).transpose()?;
    let mut flags = format_flags(&args.format);
    if let Some(lock) = &lock {
        flags.push((
            keys::REGISTRY_URL.into(),
            toml::Value::String(lock.registry.clone()),
            keys::LOCKED_REGISTRY.into(),
        ));
    }
    Ok((Context::new(global, flags, args.format.webc)?, lock))
}

/// The packages an install names: its arguments, or the lockfile's roots.
pub(crate) fn names(args: &InstallArgs, lock: Option<&Lockfile>) -> Vec<PackageName> {
    match lock {
        None => args.packages.iter().map(|p| p.name.clone()).collect(),
        Some(lock) => lock
            .roots
            .iter()
            .filter_map(|r| r.package.parse().ok())
            .collect(),
    }
}

/// The no-op install: every request is answered by what is installed, read from the store
/// opened read-only, before any HTTP client, registry client or compiler is made. `None` when
/// something is to do (or anything is in doubt): the ordinary path decides.
fn already_installed(ctx: &Context, args: &InstallArgs) -> Option<Vec<InstallReport>> {
    if args.refresh || args.locked.is_some() || args.packages.is_empty() {
        return None;
    }
    let store = Store::open_read_only(&ctx.home).ok()??;
    let forced = ctx.settings.format.forced.as_ref();
    args.packages
        .iter()
        .map(|spec| {
            let installed = crate::install::satisfied_in(&store, spec, forced).ok()??;
            Some(InstallReport::up_to_date(installed))
        })
        .collect()
}

/// Every request through an installer (made here, and dropped before returning so that the
/// store's capacity can be enforced): the requests and the outcome of each.
async fn install_all(
    ctx: &Context,
    lock: Option<&Lockfile>,
    args: &InstallArgs,
) -> Result<(Vec<PackageSpec>, Vec<Result<InstallReport, InstallError>>), Failure> {
    let network = Network::offline_if(args.offline());
    let installer = ctx.installer(network)?;
    if let (Some(dir), Some(lock)) = (&args.from, lock) {
        let added = crate::vendor::import(&installer.store, lock, dir)
            .map_err(|e| Failure::new(FailureKind::Integrity, e.to_string()))?;
        ctx.note(format!("{added} file(s) taken from {}", dir.display()));
    }
    let options = InstallOptions {
        no_deps: args.format.no_deps,
        network,
        refresh: args.refresh,
    };
    let outcome = match lock {
        None => {
            let jobs = args.packages.iter().map(|s| installer.install(s, options));
            (
                args.packages.clone(),
                futures_util::future::join_all(jobs).await,
            )
        }
        Some(lock) => {
            let specs = lock.requests().map_err(|e| Failure::usage(e.to_string()))?;
            let source = LockedSource::new(lock).map_err(|e| Failure::usage(e.to_string()))?;
            let jobs = specs
                .iter()
                .map(|s| installer.install_locked(&source, s, options));
            let results = futures_util::future::join_all(jobs).await;
            (specs, results)
        }
    };
    if let Some(runtime) = &installer.runtime {
        crate::cli::optimizer::start_if_needed(ctx, &installer.store, runtime);
    }
    Ok(outcome)
}

pub(crate) async fn install(
    ctx: &Context,
    lock: Option<Lockfile>,
    args: InstallArgs,
) -> Result<ExitStatus, Failure> {
    let started = Instant::now();
    let (specs, results, before) = match already_installed(ctx, &args) {
        Some(reports) => (
            args.packages.clone(),
            reports.into_iter().map(Ok).collect(),
            Before::default(),
        ),
        None => {
            let before = Before::read(ctx, &names(&args, lock.as_ref()));
            let publishers = StoreBefore::read(ctx);
            let (specs, results) = install_all(ctx, lock.as_ref(), &args).await?;
            publishers.warn(ctx);
            (specs, results, before)
        }
    };
    let mut installed = Vec::new();
    let mut failures = Vec::new();
    for (spec, result) in specs.iter().zip(results) {
        match result {
            Ok(report) => {
                say_installed(ctx, &report, started);
                if !report.up_to_date {
                    before.show(ctx, &report.package, &report.version, &report.sha256);
                }
                installed.push(report);
            }
            Err(e) => failures.push((spec.clone(), Failure::from(e))),
        }
    }
    if ctx.global.json && failures.is_empty() {
        out!("{}", json!({ "installed": installed }));
    }
    if let Some(lock) = lock.as_ref().filter(|_| !args.offline()) {
        crate::cli::yanked::warn_locked(ctx, lock).await;
    }
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
        let why = report.reason.trim_start_matches("fallback: ");
        ctx.say(format!("  fell back from {from}: {why}"));
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
        err!("error: {spec}: {}", f.message);
        for h in &f.hints {
            err!("  hint: {h}");
        }
    }
    if ctx.global.json {
        let errors: Vec<_> = failures
            .iter()
            .map(|(spec, f)| json!({"package": spec.to_string(), "error": f.message, "kind": f.kind}))
            .collect();
        out!(
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
