//! Versions that the registry has yanked (archived) since they were locked or installed:
//! `install --locked` and `outdated` say so on stderr, and change nothing. The registry is asked
//! about every package in one request (or a few, for many packages); a registry that cannot be
//! asked now is no error here.

use crate::printer::err;

use crate::cli::context::Context;
use crate::package::{PackageName, Release};

/// The versions of `wanted` (name, version) that `releases` mark archived.
pub(crate) fn yanked<'a>(
    wanted: &'a [(PackageName, String)],
    releases: &[Option<Vec<Release>>],
) -> Vec<&'a (PackageName, String)> {
    wanted
        .iter()
        .zip(releases)
        .filter(|((_, version), found)| {
            found
                .iter()
                .flatten()
                .any(|r| r.version.to_string() == *version && r.archived)
        })
        .map(|(w, _)| w)
        .collect()
}

/// Asks the registry about every locked package and warns about those that are yanked.
pub(crate) async fn warn_locked(ctx: &Context, lock: &crate::lockfile::Lockfile) {
    let wanted: Vec<(PackageName, String)> = lock
        .packages
        .iter()
        .filter_map(|p| Some((p.name.parse().ok()?, p.version.clone())))
        .collect();
    let Ok(client) = ctx.client() else {
        return;
    };
    let names: Vec<PackageName> = wanted.iter().map(|(name, _)| name.clone()).collect();
    let releases: Vec<Option<Vec<Release>>> = match client.packages(&names).await {
        Ok(answers) => answers,
        Err(e) => {
            tracing::debug!("cannot ask the registry about yanked versions: {e}");
            return;
        }
    };
    for (name, version) in yanked(&wanted, &releases) {
        err!(
            "warning: {name}@{version} (locked) is yanked by the registry; lock a newer version when you can (webcpm lock)"
        );
    }
}
