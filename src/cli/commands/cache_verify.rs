//! `webcpm cache verify [--repair]`: re-hashes the store against its index and its unpacked
//! files against their packages and, with `--repair`, unpacks tampered files again, downloads
//! again the blobs that installs need and compiles their atoms.

use crate::artifacts;
use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::install::{Installer, Network};
use crate::package::Sha256Digest;
use crate::printer::out;
use crate::store::{Orphans, Store, VerifyMode, VerifyReport};

pub(crate) async fn verify(ctx: &Context, repair: bool) -> Result<ExitStatus, Failure> {
    let mode = if repair {
        VerifyMode::Repair
    } else {
        VerifyMode::Check
    };
    let report = check(ctx, mode).await?;
    if ctx.global.json {
        ctx.print_json(&report);
    } else {
        for p in &report.problems {
            out!("{p}");
        }
        out!(
            "checked {}, corrupt {}, missing {}, orphans removed {}, repaired {}",
            report.checked,
            report.corrupt,
            report.missing,
            report.orphans,
            report.repaired
        );
    }
    Ok(if report.is_clean() {
        ExitStatus::Success
    } else {
        ExitStatus::Failed(FailureKind::Integrity)
    })
}

/// Verifies the store, then downloads again what the report says installs need.
async fn check(ctx: &Context, mode: VerifyMode) -> Result<VerifyReport, Failure> {
    if Store::open_existing(&ctx.home)?.is_none() {
        return Ok(VerifyReport::default());
    }
    // Files that no row names are debris only if no other process is between writing a file
    // and its row: with the store to itself, verify sweeps them; otherwise it leaves them.
    let (store, orphans) = match Store::try_open_exclusive(&ctx.home)? {
        Some(store) => (store, Orphans::Sweep),
        None => (Store::open(&ctx.home)?, Orphans::Leave),
    };
    let store = ctx.configured(store);
    let mut report = store.verify(mode, orphans)?;
    for digest in std::mem::take(&mut report.unpack) {
        match artifacts::unpack(&store, &digest) {
            Ok(_) => report.repaired += 1,
            Err(e) => report
                .problems
                .push(format!("cannot unpack blob {digest} again: {e}")),
        }
    }
    drop(store);
    if report.refetch.is_empty() {
        return Ok(report);
    }
    let installer = ctx.installer(Network::Online)?;
    for digest in std::mem::take(&mut report.refetch) {
        match refetch(&installer, digest).await {
            Ok(problem) => {
                report.problems.extend(problem);
                report.repaired += 1;
            }
            Err(problem) => report.problems.push(problem),
        }
    }
    Ok(report)
}

/// Downloads a blob again from where the index says it came from, and compiles its atoms.
/// `Ok` with a problem: the blob is back but its atoms could not all be compiled.
async fn refetch(installer: &Installer, digest: Sha256Digest) -> Result<Option<String>, String> {
    let dist = installer
        .store
        .index()
        .distribution_of_blob(&digest)
        .map_err(|e| format!("cannot repair blob {digest}: {e}"))?
        .ok_or_else(|| format!("cannot repair blob {digest}: no record of where it came from"))?;
    installer
        .fetch_locked(&dist, &digest.hex()[..12])
        .await
        .map_err(|e| format!("cannot repair blob {digest}: {e}"))?;
    let Some(runtime) = &installer.runtime else {
        return Ok(None);
    };
    let prepared = artifacts::prepare(
        &installer.store,
        runtime,
        &[digest],
        &installer.compiling(artifacts::Recompile::IfMissing),
    )
    .await;
    Ok(prepared
        .err()
        .map(|e| format!("repaired blob {digest}, but: {e}")))
}
