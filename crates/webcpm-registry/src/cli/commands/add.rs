//! `webcpm-registry add` and `archive`: filling a registry directory.

use serde_json::json;

use crate::cli::args::{AddArgs, GlobalArgs, RegistryPlace};
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::package::{InputError, PackageSpec, VersionRequest};

/// `add`: a package directory or a `.webc` file, published as both WebC v2 and v3.
pub(crate) async fn add(global: &GlobalArgs, args: AddArgs) -> Result<ExitStatus, Failure> {
    let options = add_options(&args)?;
    let storage = args.place.storage()?;
    let path = args.path;
    let report = tokio::task::spawn_blocking(move || crate::add(&storage, &path, &options))
        .await
        .map_err(|e| Failure::internal(e.to_string()))??;
    if global.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("plain data serializes")
        );
    } else if !global.quiet {
        println!(
            "Published {}@{}: v2 {} ({} bytes), v3 {} ({} bytes)",
            report.package,
            report.version,
            report.v2.sha256,
            report.v2.size,
            report.v3.sha256,
            report.v3.size
        );
    }
    Ok(ExitStatus::Success)
}

fn add_options(args: &AddArgs) -> Result<crate::AddOptions, Failure> {
    let input = |e: InputError| Failure::new(FailureKind::Package, e.to_string());
    let published_at = match &args.published_at {
        None => None,
        Some(text) => Some(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    Failure::usage(format!(
                        "--published-at `{text}` is not an RFC 3339 time: {e}"
                    ))
                    .hint("write it as 2026-12-07T12:00:00Z")
                })?
                .unix_timestamp(),
        ),
    };
    Ok(crate::AddOptions {
        name: args
            .name
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(input)?,
        version: args
            .version
            .as_deref()
            .map(crate::package::parse_version)
            .transpose()
            .map_err(input)?,
        force: args.force,
        only: args.webc,
        description: None,
        readme: None,
        published_at,
        publisher: match args.publisher.as_deref() {
            None => crate::add::Publisher::Namespace,
            Some(user) => crate::add::Publisher::Named(
                crate::tokens::check_user(user)
                    .map_err(|e| Failure::usage(format!("--publisher: {e}")))?,
            ),
        },
    })
}

/// `yank` (or `archive`): a version hidden from ranges and `latest`, with the reason (or shown
/// again with `--undo`).
pub(crate) fn yank(
    global: &GlobalArgs,
    place: &RegistryPlace,
    package: &str,
    reason: Option<&str>,
    undo: bool,
) -> Result<ExitStatus, Failure> {
    let spec: PackageSpec = package
        .parse()
        .map_err(|e: InputError| Failure::usage(e.to_string()))?;
    let VersionRequest::Exact(version) = spec.version else {
        return Err(
            Failure::usage(format!("`{package}` names no exact version"))
                .hint("write it as ns/name@1.2.3"),
        );
    };
    crate::set_archived(&place.storage()?, &spec.name, &version, !undo, reason)?;
    if global.json {
        println!(
            "{}",
            json!({"package": spec.name, "version": version.to_string(), "archived": !undo,
                   "reason": reason.filter(|_| !undo)})
        );
    }
    Ok(ExitStatus::Success)
}
