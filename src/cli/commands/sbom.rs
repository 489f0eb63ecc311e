//! `webcpm sbom [--lockfile F] [--format cyclonedx|spdx] [-o FILE]`: the lockfile's packages as
//! a software bill of materials (see [`crate::sbom`]). Distributions the store lacks are
//! downloaded and verified first, from the lockfile's registry unless `--registry` names
//! another; with `--offline`, the store must hold them all.

use std::path::Path;

use crate::printer::out;

use crate::cli::args::{GlobalArgs, SbomFormat};
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::lockfile::{lockfile_context, read_lockfile, write_whole};
use crate::install::Network;

pub(crate) async fn sbom(
    global: &GlobalArgs,
    lockfile: &Path,
    format: SbomFormat,
    output: Option<&Path>,
    offline: bool,
) -> Result<ExitStatus, Failure> {
    let lock = read_lockfile(lockfile)?;
    let ctx = lockfile_context(global, &lock)?;
    let installer = ctx.installer(Network::offline_if(offline))?;
    let subject = lockfile
        .file_name()
        .map_or("webcpm.lock".into(), |n| n.to_string_lossy().into_owned());
    let inventory = crate::sbom::inventory(&installer, &subject, &lock, ctx.now()?, offline)
        .await
        .map_err(|e| {
            Failure::new(FailureKind::Integrity, e.to_string())
                .hint("without --offline, what the store lacks is downloaded")
        })?;
    let document = match format {
        SbomFormat::Cyclonedx => crate::sbom::cyclonedx(&inventory),
        SbomFormat::Spdx => crate::sbom::spdx(&inventory),
    };
    let text = serde_json::to_string_pretty(&document).expect("JSON values serialize");
    match output {
        None => out!("{text}"),
        Some(path) => {
            write_whole(path, &format!("{text}\n"), "the bill of materials")?;
            ctx.say(format!(
                "Wrote {} ({} packages) to {}",
                match format {
                    SbomFormat::Cyclonedx => "a CycloneDX 1.6 bill",
                    SbomFormat::Spdx => "an SPDX 2.3 document",
                },
                inventory.packages.len(),
                path.display()
            ));
        }
    }
    Ok(ExitStatus::Success)
}
