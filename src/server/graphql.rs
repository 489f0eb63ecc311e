//! The queries of the local registry's GraphQL schema (`schema/registry.graphql`; the whole
//! schema, mutations included, is put together in `schema.rs`), served by async-graphql from the
//! registry database.
//!
//! Answers follow the real Wasmer registry: an unknown or invalid package name is `null`, not an
//! error; `JSONString` values are JSON strings holding JSON text; `distribution` without an
//! argument is the WebC v2 node. Every download URL is absolute: `{base}/blobs/{sha256}.webc`.
//! Each query reads the database afresh, so versions added while the server runs are seen.
//! A fault rule that fired for a query (`claim-v3`, `bad-manifest`, see [`super::faults`]) is in
//! the request's data and changes the nodes it names.

use std::sync::{Arc, Mutex};

use async_graphql::{
    Context, Enum, InputValueError, InputValueResult, Object, Scalar, ScalarType, Value,
};

use super::db::{BlobRecord, Db, DbError, PackageRecord};
use super::faults::{BAD_MANIFEST, NodeFault};
use crate::package::{PackageName, WebcVersion};

/// What resolvers read: the database and the base of download URLs.
pub struct Catalog {
    db: Mutex<Db>,
    /// `http://host:port` or the public URL, without a trailing `/`.
    base_url: String,
}

impl Catalog {
    pub fn new(db: Db, base_url: String) -> Self {
        Catalog {
            db: Mutex::new(db),
            base_url,
        }
    }

    /// Loads a package with all its versions, off the async threads.
    async fn package(self: &Arc<Self>, name: PackageName) -> Result<Option<PackageRecord>, String> {
        let this = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let db = this
                .db
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            db.package(&name)
        })
        .await;
        match result {
            Ok(Ok(record)) => Ok(record),
            Ok(Err(e)) => Err(db_failure(e)),
            Err(e) => {
                tracing::error!("registry database task failed: {e}");
                Err("internal error: the registry database task failed".into())
            }
        }
    }

    fn blob_url(&self, blob: &BlobRecord) -> String {
        format!("{}/blobs/{}.webc", self.base_url, blob.sha256.hex())
    }
}

fn db_failure(e: DbError) -> String {
    tracing::error!("{e}");
    "internal error: the registry database failed; see the server's log".into()
}

/// `scalar JSONString`: a JSON string whose text is a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonString(pub String);

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
    Ok(catalog.package(name).await?.map(|record| PackageNode {
        record: Arc::new(record),
        catalog: Arc::clone(catalog),
    }))
}

/// `type Query`
pub struct Query;

#[Object(name = "Query")]
impl Query {
    async fn get_package(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<PackageNode>> {
        load(ctx, &name).await
    }

    async fn get_package_version(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default_with = "Some(String::from(\"latest\"))")] version: Option<String>,
    ) -> async_graphql::Result<Option<VersionNode>> {
        find_version(ctx, &name, version.as_deref().unwrap_or("latest")).await
    }
}

/// The version `wanted` (`latest` or exact semver text) of the package `name`, as the node that
/// `getPackageVersion` answers; `publishPackage` answers with it too.
pub async fn find_version(
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
pub struct PackageNode {
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
pub struct VersionNode {
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
    async fn version(&self) -> async_graphql::Result<String> {
        Ok(self.record()?.version.to_string())
    }

    async fn is_archived(&self) -> async_graphql::Result<bool> {
        Ok(self.record()?.archived)
    }

    async fn is_last_version(&self) -> bool {
        self.package.record.latest() == Some(self.index)
    }

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
        let fault = ctx.data_opt::<NodeFault>();
        // `claim-v3`: the v3 node describes the v2 file truthfully but calls it V3.
        let source = if webc == WebcVersion::V3 && fault.is_some_and(|f| f.claims_v3(name)) {
            WebcVersion::V2
        } else {
            webc
        };
        let mut blob = record.blob(source).clone();
        if fault.is_some_and(|f| f.breaks_manifest(name, webc)) {
            blob.manifest = BAD_MANIFEST.to_string();
        }
        let url = match fault.and_then(|f| f.url_for(name, webc)) {
            Some(url) => url.to_string(),
            None => self.package.catalog.blob_url(&blob),
        };
        Ok(DistributionNode {
            url,
            claimed: webc,
            offered: record.offers(source),
            blob,
        })
    }
}

/// `type PackageDistribution`: one format of one version.
pub struct DistributionNode {
    url: String,
    blob: BlobRecord,
    /// The format the node says its bytes are in (`webcVersion`).
    claimed: WebcVersion,
    /// `false`: this format is not offered, and every nullable field is null.
    offered: bool,
}

impl DistributionNode {
    fn int_size(&self) -> Option<i32> {
        self.offered
            .then(|| i32::try_from(self.blob.size).ok())
            .flatten()
    }

    fn url(&self) -> Option<&str> {
        self.offered.then_some(self.url.as_str())
    }

    fn hash(&self) -> Option<String> {
        self.offered.then(|| self.blob.sha256.hex())
    }
}

#[Object(name = "PackageDistribution")]
impl DistributionNode {
    async fn download_url(&self) -> &str {
        self.url().unwrap_or_default()
    }

    async fn size(&self) -> Option<i32> {
        self.int_size()
    }

    async fn pirita_download_url(&self) -> Option<&str> {
        self.url()
    }

    async fn pirita_sha256_hash(&self) -> Option<String> {
        self.hash()
    }

    async fn pirita_size(&self) -> Option<i32> {
        self.int_size()
    }

    async fn webc_download_url(&self) -> Option<&str> {
        self.url()
    }

    async fn webc_sha256_hash(&self) -> Option<String> {
        self.hash()
    }

    async fn webc_size(&self) -> Option<i32> {
        self.int_size()
    }

    async fn webc_version(&self) -> Option<GqlWebcVersion> {
        self.offered.then_some(self.claimed.into())
    }

    async fn webc_manifest(&self) -> Option<JsonString> {
        self.offered.then(|| JsonString(self.blob.manifest.clone()))
    }
}
