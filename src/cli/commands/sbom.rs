//! `webcpm sbom [--lockfile F] [--format cyclonedx|spdx] [-o FILE]`: the lockfile's packages as
//! a software bill of materials (see [`crate::sbom`]). Distributions the store lacks are
//! downloaded and verified first, from the lockfile's registry unless `--registry` names
//! another; with `--offline`, the store must hold them all.

use std::path::Path;

use crate::printer::out;

use crate::cli::args::{GlobalArgs, SbomFormat};
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::cli::lockfile::{lockfile_context, read_lockfile, write_whole};
use crate::fetch::FetchError;
use crate::install::Network;
use crate::sbom::{SbomError, Subject};

/// A failure of the bill, with the kind (and exit code) of its cause.
fn failure(e: SbomError) -> Failure {
    let text = e.to_string();
    match e {
        SbomError::Lock(_) => {
            Failure::usage(text).hint("write the lockfile again with `webcpm lock`")
        }
        SbomError::Fetch { source, .. } => {
            let kind = match source {
                FetchError::Transport { .. } | FetchError::Status { .. } => FailureKind::Network,
                FetchError::Store(_) => FailureKind::Store,
                _ => FailureKind::Integrity,
            };
            Failure::new(kind, text)
        }
        SbomError::NotStored(_) => Failure::new(FailureKind::Integrity, text),
        SbomError::Container { .. } => Failure::new(FailureKind::Integrity, text),
    }
}

pub(crate) async fn sbom(
    global: &GlobalArgs,
    lockfile: &Path,
    format: SbomFormat,
    output: Option<&Path>,
    offline: bool,
) -> Result<ExitStatus, Failure> {
    let lock = read_lockfile(lockfile)?;
    let bytes = std::fs::read(lockfile)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", lockfile.display())))?;
    let ctx = lockfile_context(global, &lock)?;
    let installer = ctx.installer(Network::offline_if(offline))?;
    let name = lockfile
        .file_name()
        .map_or("webcpm.lock".into(), |n| n.to_string_lossy().into_owned());
    let subject = Subject {
        name: &name,
        bytes: &bytes,
        created: ctx.now()?,
        offline,
    };
    let inventory = crate::sbom::inventory(&installer, subject, &lock)
        .await
        .map_err(failure)?;
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
