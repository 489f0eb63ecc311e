//! `changePackageVersionArchivedStatus(input: {packageVersionId, isArchived})`: the real
//! registry's mutation that yanks a version (or takes the yank back), for a token of the
//! package's namespace. The version is named by its `PackageVersion.id`
//! (`PackageVersion:ns/name@version`, see [`version_id`]). The real input has no reason: a yank
//! through the API has none; `webcpm-registry yank --reason` gives one.

use async_graphql::{Context, ID, InputObject, SimpleObject};

use super::graphql::{VersionNode, find_version};
use super::publish_api::{BAD_USER_INPUT, check_namespace, error, publishing, unavailable};
use crate::package::PackageName;

/// The `id` of a version: `PackageVersion:ns/name@version` (clients treat it as opaque).
pub(crate) fn version_id(name: &PackageName, version: &semver::Version) -> ID {
    ID(format!("PackageVersion:{name}@{version}"))
}

fn parse_id(id: &str) -> Option<(PackageName, semver::Version)> {
    let (name, version) = id.strip_prefix("PackageVersion:")?.rsplit_once('@')?;
    Some((name.parse().ok()?, semver::Version::parse(version).ok()?))
}

#[derive(InputObject)]
#[graphql(name = "ChangePackageVersionArchivedStatusInput")]
pub(crate) struct ArchiveInput {
    client_mutation_id: Option<String>,
    is_archived: Option<bool>,
    package_version_id: ID,
}

#[derive(SimpleObject)]
#[graphql(name = "ChangePackageVersionArchivedStatusPayload")]
pub(crate) struct ArchivePayload {
    client_mutation_id: Option<String>,
    package_version: VersionNode,
}

/// Archives (by default) or un-archives the version, and answers with it.
pub(crate) async fn change(
    ctx: &Context<'_>,
    input: ArchiveInput,
) -> async_graphql::Result<Option<ArchivePayload>> {
    let publishing = publishing(ctx)?;
    let namespace = publishing.authorize(ctx).await?.namespace;
    let Some((name, version)) = parse_id(&input.package_version_id) else {
        return Err(error(
            BAD_USER_INPUT,
            "packageVersionId is not a version's id; read it from PackageVersion.id",
        ));
    };
    check_namespace(&namespace, &name)?;
    let archived = input.is_archived.unwrap_or(true);
    let (n, v) = (name.clone(), version.clone());
    let found = publishing
        .db(move |db, _| Ok(db.set_archived(&n, &v, archived, None)?))
        .await
        .map_err(|e| unavailable("cannot change the version", e))?;
    let node = match found {
        true => find_version(ctx, name.as_str(), &version.to_string()).await?,
        false => None,
    };
    let Some(node) = node else {
        return Err(error(
            BAD_USER_INPUT,
            format!("{name}@{version} is not published here"),
        ));
    };
    tracing::info!("{name}@{version} archived: {archived}");
    Ok(Some(ArchivePayload {
        client_mutation_id: input.client_mutation_id,
        package_version: node,
    }))
}
