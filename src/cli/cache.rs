//! `webcpm cache dir|list|verify|gc|clean`: looking after the store.

use serde_json::json;

use super::args::CacheCommand;
use super::commands::{configured, installer, store_failure};
use super::{Context, Failure};
use crate::artifacts;
use crate::store::{Store, VerifyReport};

pub async fn run(ctx: &Context, cmd: CacheCommand) -> Result<i32, Failure> {
    match cmd {
        CacheCommand::Dir => {
            if ctx.global.json {
                println!("{}", json!({"dir": ctx.home}));
            } else {
                println!("{}", ctx.home.display());
            }
            Ok(0)
        }
        CacheCommand::List => {
            let blobs = match Store::open_existing(&ctx.home).map_err(store_failure)? {
                Some(store) => store.index().blobs().map_err(|e| store_failure(e.into()))?,
                None => Vec::new(),
            };
            if ctx.global.json {
                let rows: Vec<_> = blobs
                    .iter()
                    .map(|b| json!({"sha256": b.sha256, "size": b.size, "webc": b.webc}))
                    .collect();
                println!("{}", json!({ "blobs": rows }));
            } else {
                for b in &blobs {
                    println!("{}  {}  {} bytes", b.sha256, b.webc, b.size);
                }
            }
            Ok(0)
        }
        CacheCommand::Verify { repair } => {
            let report = verify(ctx, repair).await?;
            if ctx.global.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("plain data serializes")
                );
            } else {
                for p in &report.problems {
                    println!("{p}");
                }
                println!(
                    "checked {}, corrupt {}, missing {}, orphans removed {}, repaired {}",
                    report.checked, report.corrupt, report.missing, report.orphans, report.repaired
                );
            }
            Ok(if report.is_clean() { 0 } else { 1 })
        }
        CacheCommand::Gc { max_size } => {
            let Some(store) = exclusive_store(ctx)? else {
                if ctx.global.json {
                    println!(
                        "{}",
                        serde_json::to_string(&crate::store::GcReport::default())
                            .expect("plain data serializes")
                    );
                }
                return Ok(0);
            };
            let capacity = match max_size {
                Some(n) => Some(n),
                None => ctx.settings.store_max_size()?,
            };
            let engine = super::commands::engine_hash(ctx)?;
            let report = store.gc(&engine, capacity).map_err(store_failure)?;
            if ctx.global.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("plain data serializes")
                );
            } else {
                ctx.say(format!(
                    "removed {} packages and {} compiled modules, {} bytes freed, {} bytes kept",
                    report.removed_blobs,
                    report.removed_artifacts,
                    report.freed_bytes,
                    report.kept_bytes
                ));
            }
            Ok(0)
        }
        CacheCommand::Clean { yes } => {
            if !yes {
                return Err(Failure::new(
                    "usage",
                    "`cache clean` removes every install and file in the store",
                )
                .hint("run `webcpm cache clean --yes` to do it"));
            }
            let Some(store) = exclusive_store(ctx)? else {
                return Ok(0);
            };
            let freed = store.clean().map_err(store_failure)?;
            if ctx.global.json {
                println!("{}", json!({"freed_bytes": freed}));
            } else {
                ctx.say(format!(
                    "removed everything in {} ({freed} bytes)",
                    ctx.home.display()
                ));
            }
            Ok(0)
        }
    }
}

/// The store with no other process in it (for gc and clean), or `None` when there is no store.
fn exclusive_store(ctx: &Context) -> Result<Option<Store>, Failure> {
    if Store::open_existing(&ctx.home)
        .map_err(store_failure)?
        .is_none()
    {
        return Ok(None);
    }
    let store = Store::open_exclusive(&ctx.home).map_err(store_failure)?;
    configured(ctx, store).map(Some)
}

/// Verifies the store; with `repair`, downloads again the blobs that installs need and compiles
/// their atoms.
async fn verify(ctx: &Context, repair: bool) -> Result<VerifyReport, Failure> {
    let Some(store) = Store::open_existing(&ctx.home).map_err(store_failure)? else {
        return Ok(VerifyReport::default());
    };
    drop(store);
    // Files that no row names are debris only if no other process is between writing a file
    // and its row: with the store to itself, verify sweeps them; otherwise it leaves them.
    let (store, sweep) = match Store::try_open_exclusive(&ctx.home).map_err(store_failure)? {
        Some(store) => (store, true),
        None => (Store::open(&ctx.home).map_err(store_failure)?, false),
    };
    let store = configured(ctx, store)?;
    let mut report = store.verify(repair, sweep).map_err(store_failure)?;
    drop(store);
    if report.refetch.is_empty() {
        return Ok(report);
    }
    let installer = installer(ctx, false)?;
    for digest in std::mem::take(&mut report.refetch) {
        let dist = installer
            .store
            .index()
            .distribution_of_blob(&digest)
            .map_err(|e| store_failure(e.into()))?;
        let Some(dist) = dist else {
            report.problems.push(format!(
                "cannot repair blob {digest}: no record of where it came from"
            ));
            continue;
        };
        match installer.fetch_locked(&dist, &digest.hex()[..12]).await {
            Ok(_) => {
                if let Some(runtime) = &installer.runtime
                    && let Err(e) = artifacts::prepare(
                        &installer.store,
                        runtime,
                        &[digest],
                        &installer.compile_reporter,
                        artifacts::Recompile::IfMissing,
                    )
                    .await
                {
                    report
                        .problems
                        .push(format!("repaired blob {digest}, but: {e}"));
                }
                report.repaired += 1;
            }
            Err(e) => report
                .problems
                .push(format!("cannot repair blob {digest}: {e}")),
        }
    }
    Ok(report)
}
