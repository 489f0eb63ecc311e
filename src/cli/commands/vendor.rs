//! `webcpm vendor DIR [--lockfile F]`: every locked package, both formats, verified, as files in
//! DIR with a copy of the lockfile, for `install --locked DIR/webcpm.lock --from DIR` on a
//! machine without the network (see [`crate::vendor`]). The lockfile's registry is asked,
//! unless `--registry` names another.

use std::path::Path;

use crate::cli::args::GlobalArgs;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::lockfile::{lockfile_context, read_lockfile};
use crate::install::Network;

pub(crate) async fn vendor(
    global: &GlobalArgs,
    dir: &Path,
    lockfile: &Path,
) -> Result<ExitStatus, Failure> {
    let lock = read_lockfile(lockfile)?;
    let ctx = lockfile_context(global, &lock)?;
    let installer = ctx.installer(Network::Online)?;
    let done = crate::vendor::vendor(&installer, &lock, dir)
        .await
        .map_err(|e| Failure::new(FailureKind::Integrity, e.to_string()))?;
    if ctx.global.json {
        ctx.print_json(&done);
        return Ok(ExitStatus::Success);
    }
    ctx.say(format!(
        "Vendored {} files ({} bytes) and {} into {}",
        done.files,
        done.bytes,
        done.lockfile.display(),
        dir.display()
    ));
    ctx.say(format!(
        "On the other machine: webcpm install --locked {} --from {}",
        done.lockfile.display(),
        dir.display()
    ));
    Ok(ExitStatus::Success)
}
