//! The queries of the local registry's GraphQL schema (`schema/registry.graphql`; the whole
//! schema, mutations included, is put together in `schema.rs`), served by async-graphql from the
//! registry database.
//!
//! Answers follow the real Wasmer registry: an unknown or invalid package name is `null`, not an
//! error; `JSONString` values are JSON strings holding JSON text; `distribution` without an
//! argument is the WebC v2 node. Every download URL is absolute: `{base}/blobs/{sha256}.webc`.
//! Each query reads the database afresh, so versions added while the server runs are seen.
//! A fault rule that fired for a query (`claim-v3`, `bad-manifest`, see [`super::faults`]) is in
//! the request's data and changes the nodes it names. With `--real-shapes`, nodes take the
//! shapes of the real registry's answers ([`super::shapes`]).

use std::sync::Arc;

use async_graphql::{
    Context, Enum, InputValueError, InputValueResult, Object, Scalar, ScalarType, Value,
};

use time::format_description::well_known::Rfc3339;

use super::db::{BlobRecord, DbError, PackageRecord, Pool};
use super::faults::{BAD_MANIFEST, NodeFault};
use super::graphql_search::{PackagesFilter, Page, SearchConnection};
use super::mirror::Mirror;
use super::shapes::{self, Shapes};
use crate::package::{PackageName, WebcVersion};

/// What resolvers read: the database and the base of download URLs.
pub(crate) struct Catalog {
    pool: Arc<Pool>,
    /// `http://host:port` or the public URL, without a trailing `/`.
    base_url: String,
    /// `--real-shapes`.
    shapes: Option<Shapes>,
    /// `--mirror`: packages are brought from the upstream before they are read.
    mirror: Option<Arc<Mirror>>,
}

impl Catalog {
    pub(crate) fn new(
        pool: Arc<Pool>,
        base_url: String,
        shapes: Option<Shapes>,
        mirror: Option<Arc<Mirror>>,
    ) -> Self {
        Catalog {
            pool,
            base_url,
            shapes,
            mirror,
        }
    }

    /// Loads a package with all its versions, off the async threads (a mirror brings it up to
    /// date from its upstream first).
    async fn package(
        self: &Arc<Self>,
        name: PackageName,
    ) -> async_graphql::Result<Option<PackageRecord>> {
        if let Some(mirror) = &self.mirror {
            mirror.refresh(&name).await;
        }
        let mut record = self.read(move |db| db.package(&name)).await?;
        if let (Some(shapes), Some(record)) = (&self.shapes, record.as_mut()) {
            shapes.add_broken_version(record);
        }
        Ok(record)
    }

    /// The packages that match `query`, by name.
    pub(crate) async fn search(
        self: &Arc<Self>,
        query: String,
    ) -> async_graphql::Result<Vec<PackageRecord>> {
        self.read(move |db| db.search(&query)).await
    }

    /// Runs `read` on the database, off the async threads.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&mut super::db::Db) -> Result<T, DbError> + Send + 'static,
    ) -> async_graphql::Result<T> {
        let this = Arc::clone(self);
        match tokio::task::spawn_blocking(move || this.pool.with(read)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(db_failure(e)),
            Err(e) => {
                tracing::error!("registry database task failed: {e}");
                Err(async_graphql::Error::new(
                    "internal error: the registry database task failed",
                ))
            }
        }
    }

    fn blob_url(&self, blob: &BlobRecord) -> String {
        let signed = self
            .shapes
            .as_ref()
            .map(|s| s.sign(&blob.sha256))
            .unwrap_or_default();
        format!("{}/blobs/{}.webc{signed}", self.base_url, blob.sha256.hex())
    }
}

/// A database that did not answer leaves the request undone: `UNAVAILABLE` (HTTP 503 with
/// `Retry-After`), which clients send again; a bad row is the registry's own fault.
fn db_failure(e: DbError) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    tracing::error!("{e}");
    match e {
        DbError::Sql { .. } | DbError::Open { .. } => {
            async_graphql::Error::new("the registry's database did not answer; try again shortly")
                .extend_with(|_, x| x.set("code", super::publish_api::UNAVAILABLE))
        }
        _ => async_graphql::Error::new(
            "internal error: the registry database failed; see the server's log",
        ),
    }
}

/// `scalar JSONString`: a JSON string whose text is a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonString(pub String);

#[Scalar(name = "JSONString")]
impl ScalarType for JsonString {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Ok(JsonString(text)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `scalar DateTime`: a Unix time, written as RFC 3339 (ISO 8601) in UTC
/// (`2024-05-16T09:09:40Z`; the real registry writes the same instant as `...+00:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime(pub i64);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        let parsed = time::OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| InputValueError::custom(format!("not an RFC 3339 time: {e}")))?;
        Ok(DateTime(parsed.unix_timestamp()))
    }

    fn to_value(&self) -> Value {
        let at = time::OffsetDateTime::from_unix_timestamp(self.0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Value::String(at.format(&Rfc3339).unwrap_or_default())
    }
}

// `enum WebcVersion { V2 V3 }` (a `///` comment would become a description in the SDL).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "WebcVersion")]
pub enum GqlWebcVersion {
    V2,
    V3,
}

impl From<WebcVersion> for GqlWebcVersion {
    fn from(v: WebcVersion) -> Self {
        match v {
            WebcVersion::V2 => GqlWebcVersion::V2,
            WebcVersion::V3 => GqlWebcVersion::V3,
        }
    }
}

impl From<GqlWebcVersion> for WebcVersion {
    fn from(v: GqlWebcVersion) -> Self {
        match v {
            GqlWebcVersion::V2 => WebcVersion::V2,
            GqlWebcVersion::V3 => WebcVersion::V3,
        }
    }
}

fn catalog<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Catalog>> {
    ctx.data::<Arc<Catalog>>()
}

async fn load(ctx: &Context<'_>, name: &str) -> async_graphql::Result<Option<PackageNode>> {
    let Ok(name) = name.parse::<PackageName>() else {
        return Ok(None);
    };
    let catalog = catalog(ctx)?;
    if let Ok(metrics) = ctx.data::<Arc<super::metrics::Metrics>>() {
        metrics.resolved();
    }
    Ok(catalog.package(name).await?.map(|record| PackageNode {
        record: Arc::new(record),
        catalog: Arc::clone(catalog),
    }))
}

/// What a package lookup costs in a query's complexity (a database query), against the limit
/// of [`super::schema`]: at most a few hundred lookups in one request.
pub(crate) const LOOKUP: usize = 100;
/// How many versions a package's `versions` list is counted as: its fields cost this many times
/// over. A version's `package` (the way back up the cycle) is priced the same, so that
/// `versions { package { versions … } }` is refused instead of costing N^depth.
pub(crate) const VERSIONS: usize = 100;

/// `type Query`
pub(crate) struct Query;

#[Object(name = "Query")]
impl Query {
    #[graphql(complexity = "LOOKUP + child_complexity")]
    async fn get_package(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<PackageNode>> {
        load(ctx, &name).await
    }

    #[graphql(complexity = "LOOKUP + child_complexity")]
    async fn get_package_version(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default_with = "Some(String::from(\"latest\"))")] version: Option<String>,
    ) -> async_graphql::Result<Option<VersionNode>> {
        find_version(ctx, &name, version.as_deref().unwrap_or("latest")).await
    }

    /// Packages only: each match is its latest version ([`super::search`]).
    #[graphql(complexity = "LOOKUP + VERSIONS * child_complexity")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        packages: Option<PackagesFilter>,
        query: String,
    ) -> async_graphql::Result<SearchConnection> {
        let found = catalog(ctx)?.search(query).await?;
        let nodes = found.into_iter().filter_map(|record| {
            let index = record.latest().or(record.versions.len().checked_sub(1))?;
            let package = PackageNode {
                record: Arc::new(record),
                catalog: Arc::clone(catalog(ctx).ok()?),
            };
            Some(VersionNode { package, index })
        });
        let page = Page::new(after.as_deref(), first, packages.and_then(|p| p.count))?;
        Ok(page.connection(nodes.collect()))
    }
}

/// The version `wanted` (`latest` or exact semver text) of the package `name`, as the node that
/// `getPackageVersion` answers; `publishPackage` answers with it too.
pub(crate) async fn find_version(
    ctx: &Context<'_>,
    name: &str,
    wanted: &str,
) -> async_graphql::Result<Option<VersionNode>> {
    let Some(package) = load(ctx, name).await? else {
        return Ok(None);
    };
    let wanted = wanted.trim();
    let index = if wanted == "latest" {
        package.record.latest()
    } else {
        semver::Version::parse(wanted).ok().and_then(|v| {
            package
                .record
                .versions
                .iter()
                .position(|record| record.version == v)
        })
    };
    Ok(index.map(|index| VersionNode { package, index }))
}

/// `type Package`
#[derive(Clone)]
pub(crate) struct PackageNode {
    record: Arc<PackageRecord>,
    catalog: Arc<Catalog>,
}

#[Object(name = "Package")]
impl PackageNode {
    async fn name(&self) -> &str {
        self.record.name.as_str()
    }

    async fn namespace(&self) -> &str {
        self.record.name.namespace()
    }

    /// The name of the package without the owner
    async fn package_name(&self) -> &str {
        self.record.name.name()
    }

    async fn is_archived(&self) -> bool {
        false
    }

    async fn last_version(&self) -> Option<VersionNode> {
        self.record.latest().map(|index| VersionNode {
            package: self.clone(),
            index,
        })
    }

    #[graphql(complexity = "VERSIONS * child_complexity")]
    async fn versions(&self) -> Option<Vec<Option<VersionNode>>> {
        Some(
            (0..self.record.versions.len())
                .map(|index| {
                    Some(VersionNode {
                        package: self.clone(),
                        index,
                    })
                })
                .collect(),
        )
    }
}

/// `type PackageVersion`
pub(crate) struct VersionNode {
    package: PackageNode,
    index: usize,
}

impl VersionNode {
    fn record(&self) -> async_graphql::Result<&super::db::VersionRecord> {
        self.package
            .record
            .versions
            .get(self.index)
            .ok_or_else(|| "internal error: a version vanished".into())
    }
}

#[Object(name = "PackageVersion")]
impl VersionNode {
    async fn id(&self) -> async_graphql::Result<async_graphql::ID> {
        let version = &self.record()?.version;
        Ok(super::yank_api::version_id(
            &self.package.record.name,
            version,
        ))
    }

    async fn version(&self) -> async_graphql::Result<String> {
        Ok(self.record()?.version.to_string())
    }

    async fn is_archived(&self) -> async_graphql::Result<bool> {
        Ok(self.record()?.archived)
    }

    async fn created_at(&self) -> async_graphql::Result<DateTime> {
        Ok(DateTime(self.record()?.published_at))
    }

    async fn description(&self) -> async_graphql::Result<String> {
        Ok(self.record()?.description.clone().unwrap_or_default())
    }

    /// Who published it; the username is empty for a version added before the registry kept it.
    async fn published_by(&self) -> async_graphql::Result<User> {
        let username = self.record()?.publisher.clone().unwrap_or_default();
        Ok(User { username })
    }

    async fn is_last_version(&self) -> bool {
        self.package.record.latest() == Some(self.index)
    }

    #[graphql(complexity = "VERSIONS * child_complexity")]
    async fn package(&self) -> PackageNode {
        self.package.clone()
    }

    async fn pirita_manifest(&self) -> async_graphql::Result<Option<JsonString>> {
        Ok(Some(JsonString(self.record()?.v2.manifest.clone())))
    }

    async fn distribution(
        &self,
        ctx: &Context<'_>,
        version: Option<GqlWebcVersion>,
    ) -> async_graphql::Result<DistributionNode> {
        let webc: WebcVersion = version.unwrap_or(GqlWebcVersion::V2).into();
        let record = self.record()?;
        let name = &self.package.record.name;
        let catalog = &self.package.catalog;
        let fault = ctx.data_opt::<NodeFault>();
        let real = catalog.shapes.as_ref();
        // A version stored in v2 only predates v3: in real shapes, its v3 node names the v2 file.
        let shared =
            real.is_some() && webc == WebcVersion::V3 && record.only == Some(WebcVersion::V2);
        // `claim-v3`: the v3 node describes the v2 file truthfully but calls it V3.
        let source =
            if shared || (webc == WebcVersion::V3 && fault.is_some_and(|f| f.claims_v3(name))) {
                WebcVersion::V2
            } else {
                webc
            };
        if !record.offers(source) {
            return Ok(DistributionNode::default());
        }
        let blob = record.blob(source);
        let mut node = DistributionNode {
            url: Some(match fault.and_then(|f| f.url_for(name, webc)) {
                Some(url) => url.to_string(),
                None => catalog.blob_url(blob),
            }),
            hash: Some(blob.sha256.hex()),
            size: i32::try_from(blob.size).ok(),
            claimed: Some(webc.into()),
            manifest: Some(JsonString(
                if fault.is_some_and(|f| f.breaks_manifest(name, webc)) {
                    BAD_MANIFEST.to_string()
                } else {
                    blob.manifest.clone()
                },
            )),
            expires_in: None,
        };
        if let Some(real) = real {
            node.size = None;
            node.claimed = None;
            node.expires_in = i32::try_from(real.ttl().as_secs()).ok();
            if record.only == Some(WebcVersion::V2) {
                node.manifest = None;
            }
            if record.broken {
                node.hash = Some(shapes::BROKEN_HASH.to_string());
                node.url = (webc == WebcVersion::V2).then(|| shapes::BROKEN_URL.to_string());
                node.manifest = None;
                node.expires_in = None;
            }
        }
        Ok(node)
    }
}

/// `type PackageDistribution`: one format of one version, as it is answered; a format that is
/// not offered has every nullable field null.
#[derive(Default)]
pub(crate) struct DistributionNode {
    url: Option<String>,
    hash: Option<String>,
    size: Option<i32>,
    /// The format the node says its bytes are in (`webcVersion`).
    claimed: Option<GqlWebcVersion>,
    manifest: Option<JsonString>,
    expires_in: Option<i32>,
}

#[Object(name = "PackageDistribution")]
impl DistributionNode {
    async fn download_url(&self) -> &str {
        self.url.as_deref().unwrap_or_default()
    }

    async fn size(&self) -> Option<i32> {
        self.size
    }

    async fn pirita_download_url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    async fn pirita_expires_in_seconds(&self) -> Option<i32> {
        self.expires_in
    }

    async fn pirita_sha256_hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }

    async fn pirita_size(&self) -> Option<i32> {
        self.size
    }

    async fn webc_download_url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    async fn webc_sha256_hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }

    async fn webc_size(&self) -> Option<i32> {
        self.size
    }

    async fn webc_version(&self) -> Option<GqlWebcVersion> {
        self.claimed
    }

    async fn webc_manifest(&self) -> Option<&JsonString> {
        self.manifest.as_ref()
    }
}

/// `type User`: who published a version.
#[derive(async_graphql::SimpleObject)]
#[graphql(name = "User")]
pub(crate) struct User {
    username: String,
}
