//! Publishing over the network, as the real Wasmer registry does it: the mutation
//! `generateUploadUrl` gives a signed URL, the client uploads the package there, and the mutation
//! `publishPackage` names that URL and stores the package as both WebC v2 and v3, as
//! `registry add` does ([`super::add::add`]).
//!
//! Both mutations need a bearer token made by `webcpm-registry token create` for the package's
//! namespace ([`super::tokens`]). A refusal is a GraphQL error whose `extensions.code` is
//! [`UNAUTHENTICATED`] (no token, or one the registry does not know) or [`FORBIDDEN`] (a token
//! for another namespace); the HTTP layer answers those with 401 and 403.
//!
//! The signed URL is `{base}/uploads/{id}` (`base` is `--upload-url`, else the public URL; any
//! replica takes any chunk, see [`super::uploads`]), where `id` is 64 random hex digits: knowing it is
//! the right to upload there, so the upload itself carries no token (a token is never sent to
//! an upload URL, which on a real registry is another origin). Uploads follow the resumable
//! protocol of the storage behind the real registry: `POST` with `x-goog-resumable: start`
//! answers `201` with the session's URL in `Location` (the same URL here), then `PUT`s with
//! `Content-Range: bytes a-b/total` send the file in order, each answered `308` with
//! `Range: bytes=0-n` until the last, answered `200`. A single `PUT` without `Content-Range`
//! sends the whole file at once. The session is a row of the database and each chunk a blob of
//! the blob store; the upload is forgotten and its chunks removed when it is published, or an
//! hour after its URL expired.
//!
//! A version that is already in the registry is refused unless the server was started with
//! `--allow-republish`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, SimpleObject};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::add::{AddOptions, MAX_BLOB_SIZE, PublishError, add};
use super::db::{Pool, unix_now};
use super::graphql::{VersionNode, find_version};
use super::storage::Storage;
use super::tokens::{self, Holder};
use super::uploads::{self, Chunk, Session, UploadError};
use super::yank_api::{ArchiveInput, ArchivePayload};
use crate::package::{PackageName, Sha256Digest};

/// `extensions.code` of a request without a valid token (HTTP 401).
pub(crate) const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// `extensions.code` of a token that may not publish this package (HTTP 403).
pub(crate) const FORBIDDEN: &str = "FORBIDDEN";
/// `extensions.code` of a version that is already published.
pub(crate) const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
/// `extensions.code` of a request the registry could not serve now and left undone (its
/// database or blob store did not answer): HTTP 503 with `Retry-After`, safe to send again.
pub(crate) const UNAVAILABLE: &str = "UNAVAILABLE";
/// `extensions.code` of a request whose input is wrong.
pub(crate) const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// The largest body of one upload request.
pub(crate) const MAX_CHUNK: usize = 16 << 20;
/// The longest time an upload URL is valid for.
const MAX_EXPIRY: Duration = Duration::from_secs(3600);

/// The bearer token of a GraphQL request, put in its data by the HTTP layer.
#[derive(Debug, Clone)]
pub(crate) struct Bearer(pub Option<String>);

/// What the mutations and the upload routes share.
pub(crate) struct Publishing {
    storage: Storage,
    /// The database's connections, for the token checks.
    pool: Arc<Pool>,
    /// `http://host:port` or the public URL, without a trailing `/`.
    base_url: String,
    allow_republish: bool,
}

pub(crate) fn error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn internal(what: &str, e: impl std::fmt::Display) -> async_graphql::Error {
    tracing::error!("{what}: {e}");
    async_graphql::Error::new(format!("internal error: {what}; see the registry's log"))
}

/// The `extensions.code` of an error.
fn code_of(e: &async_graphql::Error) -> Option<&str> {
    match e.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// A failure before anything was changed: the client may send the request again.
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> async_graphql::Error {
    tracing::error!("{what}: {e}");
    error(
        UNAVAILABLE,
        format!("the registry cannot serve this now ({what}); try again shortly"),
    )
}

impl Publishing {
    pub(crate) fn new(
        storage: Storage,
        pool: Arc<Pool>,
        base_url: String,
        allow_republish: bool,
    ) -> Self {
        Publishing {
            storage,
            pool,
            base_url,
            allow_republish,
        }
    }

    /// Runs `f` on a database connection, off the async threads.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut super::db::Db, &super::blobs::BlobStore) -> Result<T, UploadError>
        + Send
        + 'static,
    ) -> Result<T, UploadError> {
        let (pool, blobs) = (Arc::clone(&self.pool), self.storage.blobs.clone());
        tokio::task::spawn_blocking(move || pool.with(|db| f(db, &blobs)))
            .await
            .map_err(|e| UploadError::Task(e.to_string()))?
    }

    /// The session of upload `id` (`None` for an id that is not one).
    async fn session(&self, id: &str) -> Result<Option<Session>, UploadError> {
        if !uploads::valid_id(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.db(move |db, _| Ok(uploads::get(db, &id)?)).await
    }

    /// Who holds the request's token (the namespace it may publish into, the user it publishes
    /// as), or a 401 refusal.
    pub(crate) async fn authorize(&self, ctx: &Context<'_>) -> async_graphql::Result<Holder> {
        let Some(token) = ctx.data_opt::<Bearer>().and_then(|b| b.0.clone()) else {
            return Err(error(
                UNAUTHENTICATED,
                "publishing needs a token: make one on the registry's machine with `webcpm registry token create --root DIR --namespace NS` and set WEBCPM_TOKEN",
            ));
        };
        let pool = Arc::clone(&self.pool);
        let found = tokio::task::spawn_blocking(move || pool.with(|db| tokens::holder(db, &token)))
            .await
            .map_err(|e| unavailable("the token check failed", e))?
            .map_err(|e| unavailable("the token check failed", e))?;
        found.ok_or_else(|| {
            error(
                UNAUTHENTICATED,
                "the registry does not know this token; check WEBCPM_TOKEN (or registry.token), or make a new one with `webcpm-registry token create`",
            )
        })
    }

    /// Starts an upload for a token of `namespace`; returns its URL.
    async fn open_upload(&self, namespace: String, seconds: i32) -> async_graphql::Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| internal("no random bytes", e))?;
        let id = hex::encode(bytes);
        let valid = Duration::from_secs(u64::try_from(seconds.max(1)).unwrap_or(60));
        let now = unix_now();
        let expires_at = now + valid.min(MAX_EXPIRY).as_secs() as i64;
        let session = id.clone();
        self.db(move |db, blobs| uploads::open(db, blobs, &session, &namespace, expires_at, now))
            .await
            .map_err(|e| unavailable("cannot open the upload", e))?;
        Ok(format!("{}/uploads/{id}", self.base_url))
    }

    /// The complete upload behind `url`, made for a token of `namespace`: its id, its session
    /// and its bytes in a new file (which the caller removes). The upload stays until
    /// [`Self::finish_upload`].
    async fn read_upload(&self, url: &str, namespace: &str) -> async_graphql::Result<Upload> {
        let prefix = format!("{}/uploads/", self.base_url);
        let unknown = || {
            error(
                BAD_USER_INPUT,
                "signedUrl is not an upload URL of this registry (or it was published already); ask for one with generateUploadUrl",
            )
        };
        let id = url.strip_prefix(&prefix).ok_or_else(unknown)?.to_string();
        let session = self
            .session(&id)
            .await
            .map_err(|e| unavailable("cannot read the upload", e))?
            .ok_or_else(unknown)?;
        if session.namespace != namespace {
            return Err(error(
                FORBIDDEN,
                "this upload was made with a token for another namespace",
            ));
        }
        if !session.complete() {
            return Err(error(
                BAD_USER_INPUT,
                "the upload is not complete; send the whole file before publishing",
            ));
        }
        let (seen, at, tmp) = (session.clone(), id.clone(), self.storage.root.join("tmp"));
        let assembled = self
            .db(move |_, blobs| uploads::assemble(blobs, &tmp, &at, &seen))
            .await;
        match assembled {
            Ok(file) => Ok(Upload { id, session, file }),
            Err(e @ UploadError::Damaged(_)) => Err(error(
                BAD_USER_INPUT,
                format!("{e}; upload the file again with a new generateUploadUrl"),
            )),
            Err(e) => Err(unavailable("cannot read the upload", e)),
        }
    }

    /// Forgets an upload that was used; a failure only leaves it for the clean-up of stale ones.
    async fn finish_upload(&self, upload: Upload) {
        let Upload { id, session, file } = upload;
        let _ = std::fs::remove_file(&file);
        let done = self
            .db(move |db, blobs| Ok(uploads::finish(db, blobs, &id, &session)?))
            .await;
        if let Err(e) = done {
            tracing::warn!("a published upload stays until it expires: {e}");
        }
    }
}

/// An upload read for publishing.
struct Upload {
    id: String,
    session: Session,
    file: PathBuf,
}

pub(crate) fn publishing<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Publishing>> {
    ctx.data::<Arc<Publishing>>()
}

/// `input GenerateUploadUrlInput`
#[derive(InputObject)]
#[graphql(name = "GenerateUploadUrlInput")]
pub(crate) struct GenerateUploadUrlInput {
    client_mutation_id: Option<String>,
    #[graphql(default_with = "Some(60)")]
    expires_after_seconds: Option<i32>,
    /// Accepted for compatibility; the registry names uploads itself.
    filename: Option<String>,
    name: Option<String>,
    #[graphql(default_with = "Some(String::from(\"latest\"))")]
    version: Option<String>,
}

/// `type SignedUrl`
#[derive(SimpleObject)]
#[graphql(name = "SignedUrl")]
pub(crate) struct SignedUrl {
    url: String,
}

/// `type GenerateUploadUrlPayload`
#[derive(SimpleObject)]
#[graphql(name = "GenerateUploadUrlPayload")]
pub(crate) struct GenerateUploadUrlPayload {
    client_mutation_id: Option<String>,
    signed_url: SignedUrl,
}

// `enum UploadFormat { targz webcv2 webcv3 }` (a `///` comment would become a description).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "UploadFormat", rename_items = "lowercase")]
pub enum UploadFormat {
    Targz,
    Webcv2,
    Webcv3,
}

/// `input PublishPackageInput`: the fields a Wasmer client sends. The registry reads the package
/// from the upload and keeps its `description` and `readme` (when the package has none of its
/// own) for the web page; `license`, `homepage`, `repository`, `file` and `wait` are accepted
/// and not kept.
#[derive(InputObject)]
#[graphql(name = "PublishPackageInput")]
#[allow(dead_code)]
pub(crate) struct PublishPackageInput {
    client_mutation_id: Option<String>,
    description: Option<String>,
    file: Option<String>,
    homepage: Option<String>,
    license: Option<String>,
    manifest: String,
    name: Option<String>,
    namespace: Option<String>,
    /// Whether the package is private
    #[graphql(default_with = "Some(false)")]
    private: Option<bool>,
    readme: Option<String>,
    repository: Option<String>,
    signed_url: Option<String>,
    /// The upload format of the package
    #[graphql(default_with = "Some(UploadFormat::Targz)")]
    upload_format: Option<UploadFormat>,
    version: Option<String>,
    /// Whether to wait for webc generation to finish
    #[graphql(default_with = "Some(false)")]
    wait: Option<bool>,
}

/// `type PublishPackagePayload`
#[derive(SimpleObject)]
#[graphql(name = "PublishPackagePayload")]
pub(crate) struct PublishPackagePayload {
    client_mutation_id: Option<String>,
    package_version: Option<VersionNode>,
    success: bool,
}

/// The namespace of a name as a client sends it: `ns/name`, or `name` with `namespace`.
fn package_name(name: Option<&str>, namespace: Option<&str>) -> async_graphql::Result<PackageName> {
    let text = match (name, namespace) {
        (Some(name), _) if name.contains('/') => name.to_string(),
        (Some(name), Some(ns)) => format!("{ns}/{name}"),
        _ => {
            return Err(error(
                BAD_USER_INPUT,
                "the package has no name: give `name` as ns/name (or `name` and `namespace`)",
            ));
        }
    };
    text.parse()
        .map_err(|e: crate::package::InputError| error(BAD_USER_INPUT, e.to_string()))
}

pub(crate) fn check_namespace(allowed: &str, name: &PackageName) -> async_graphql::Result<()> {
    if name.namespace() == allowed {
        return Ok(());
    }
    Err(error(
        FORBIDDEN,
        format!(
            "this token may publish into the namespace `{allowed}` only, not into `{}`; use a token made for `{}`",
            name.namespace(),
            name.namespace()
        ),
    ))
}

/// `type Mutation`
pub(crate) struct Mutation;

#[Object(name = "Mutation")]
impl Mutation {
    async fn change_package_version_archived_status(
        &self,
        ctx: &Context<'_>,
        input: ArchiveInput,
    ) -> async_graphql::Result<Option<ArchivePayload>> {
        super::yank_api::change(ctx, input).await
    }

    async fn generate_upload_url(
        &self,
        ctx: &Context<'_>,
        input: GenerateUploadUrlInput,
    ) -> async_graphql::Result<Option<GenerateUploadUrlPayload>> {
        let publishing = publishing(ctx)?;
        let namespace = publishing.authorize(ctx).await?.namespace;
        if let Some(name) = input.name.as_deref().filter(|n| n.contains('/')) {
            check_namespace(&namespace, &package_name(Some(name), None)?)?;
        }
        let seconds = input.expires_after_seconds.unwrap_or(60);
        let url = publishing.open_upload(namespace, seconds).await?;
        tracing::info!(
            "upload URL for {} {} ({})",
            input.name.as_deref().unwrap_or("a package"),
            input.version.as_deref().unwrap_or("latest"),
            input.filename.as_deref().unwrap_or("no file name")
        );
        Ok(Some(GenerateUploadUrlPayload {
            client_mutation_id: input.client_mutation_id,
            signed_url: SignedUrl { url },
        }))
    }

    async fn publish_package(
        &self,
        ctx: &Context<'_>,
        input: PublishPackageInput,
    ) -> async_graphql::Result<Option<PublishPackagePayload>> {
        let publishing = publishing(ctx)?;
        let holder = publishing.authorize(ctx).await?;
        let name = package_name(input.name.as_deref(), input.namespace.as_deref())?;
        check_namespace(&holder.namespace, &name)?;
        let version = input
            .version
            .as_deref()
            .ok_or_else(|| error(BAD_USER_INPUT, "give the version to publish"))
            .and_then(|v| {
                crate::package::parse_version(v).map_err(|e| error(BAD_USER_INPUT, e.to_string()))
            })?;
        if input.private == Some(true) {
            return Err(error(
                BAD_USER_INPUT,
                "this registry has no private packages; publish it as public",
            ));
        }
        if !matches!(
            input.upload_format,
            Some(UploadFormat::Webcv2 | UploadFormat::Webcv3)
        ) {
            return Err(error(
                BAD_USER_INPUT,
                "this registry takes a WebC file (uploadFormat webcv2 or webcv3), not a tar.gz",
            ));
        }
        let url = input.signed_url.as_deref().ok_or_else(|| {
            error(
                BAD_USER_INPUT,
                "give the signedUrl the file was uploaded to",
            )
        })?;
        let upload = publishing.read_upload(url, &holder.namespace).await?;
        let said = Said {
            description: input.description,
            readme: input.readme,
            publisher: holder.user,
        };
        let stored = publishing.store(&upload.file, &name, &version, said).await;
        // An upload is used up by a publish, or by a refusal that would come again; one left
        // undone (UNAVAILABLE) stays for the client to ask again.
        match &stored {
            Err(e) if code_of(e) == Some(UNAVAILABLE) => {
                let _ = std::fs::remove_file(&upload.file);
            }
            _ => publishing.finish_upload(upload).await,
        }
        if let Ok(metrics) = ctx.data::<Arc<crate::metrics::Metrics>>() {
            metrics.published(stored.is_ok());
        }
        stored?;
        let node = find_version(ctx, name.as_str(), &version.to_string()).await?;
        Ok(Some(PublishPackagePayload {
            client_mutation_id: input.client_mutation_id,
            success: node.is_some(),
            package_version: node,
        }))
    }
}

/// What the publisher said of the package besides its file.
struct Said {
    description: Option<String>,
    readme: Option<String>,
    /// The token's user.
    publisher: String,
}

impl Publishing {
    /// Adds the uploaded file as `name@version`, in both formats.
    async fn store(
        &self,
        file: &Path,
        name: &PackageName,
        version: &semver::Version,
        said: Said,
    ) -> async_graphql::Result<()> {
        let (storage, upload) = (self.storage.clone(), file.to_path_buf());
        let options = AddOptions {
            name: Some(name.clone()),
            version: Some(version.clone()),
            force: self.allow_republish,
            only: None,
            description: said.description,
            readme: said.readme,
            published_at: None,
            publisher: crate::add::Publisher::Named(said.publisher),
        };
        let result = tokio::task::spawn_blocking(move || add(&storage, &upload, &options))
            .await
            .map_err(|e| internal("the publish task failed", e))?;
        match result {
            Ok(report) => {
                tracing::info!("published {}@{}", report.package, report.version);
                Ok(())
            }
            Err(PublishError::Exists { name, version }) => Err(error(
                ALREADY_EXISTS,
                format!(
                    "{name}@{version} is already in the registry, which does not replace published versions; publish a new version"
                ),
            )),
            Err(PublishError::NotWebc(_)) => Err(error(
                BAD_USER_INPUT,
                "the uploaded file is not a WebC file; upload a .webc file (v2 or v3)",
            )),
            // The registry's own paths are no business of the client's.
            Err(e) if e.is_input() => {
                let shown = file.display().to_string();
                Err(error(
                    BAD_USER_INPUT,
                    e.to_string().replace(&shown, "the uploaded file"),
                ))
            }
            // Nothing was published and the upload stays: the client may ask again.
            Err(e @ (PublishError::Db(_) | PublishError::Blob(_))) => {
                Err(unavailable("cannot store the package", e))
            }
            Err(e) => Err(internal("cannot store the package", e)),
        }
    }
}

/// The upload routes, `POST` and `PUT` on `/uploads/{id}`.
pub(crate) fn routes(publishing: Arc<Publishing>) -> Router {
    Router::new()
        .route("/uploads/{id}", post(start_upload).put(put_upload))
        .layer(DefaultBodyLimit::max(MAX_CHUNK))
        .with_state(publishing)
}

fn answer(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

/// `POST` with `x-goog-resumable: start`: the session's URL in `Location`.
async fn start_upload(
    State(publishing): State<Arc<Publishing>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if headers
        .get("x-goog-resumable")
        .and_then(|v| v.to_str().ok())
        != Some("start")
    {
        return answer(
            StatusCode::BAD_REQUEST,
            "start an upload with `x-goog-resumable: start`, or PUT the whole file",
        );
    }
    let session = match publishing.session(&id).await {
        Ok(session) => session,
        Err(e) => return store_failed(&id, &e),
    };
    if session.is_none_or(|u| u.expires_at <= unix_now()) {
        return answer(
            StatusCode::NOT_FOUND,
            "no such upload, or its URL expired; ask for a new one with generateUploadUrl",
        );
    }
    let location = format!("{}/uploads/{id}", publishing.base_url);
    (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
}

/// `Content-Range: bytes a-b/total` as `(a, b + 1, total)`.
fn content_range(headers: &HeaderMap) -> Option<Result<(u64, u64, u64), ()>> {
    let text = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let parse = || {
        let (range, total) = text.trim().strip_prefix("bytes ")?.split_once('/')?;
        let (a, b) = range.split_once('-')?;
        let (a, b, total): (u64, u64, u64) =
            (a.parse().ok()?, b.parse().ok()?, total.parse().ok()?);
        (a <= b && b < total).then_some((a, b + 1, total))
    };
    Some(parse().ok_or(()))
}

/// One `PUT`: a chunk in order, or the whole file without `Content-Range`.
async fn put_upload(
    State(publishing): State<Arc<Publishing>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let len = body.len() as u64;
    let (start, end, total) = match content_range(&headers) {
        None => (0, len, len),
        Some(Ok(range)) => range,
        Some(Err(())) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "Content-Range is not `bytes a-b/total`",
            );
        }
    };
    if end - start != len {
        return answer(
            StatusCode::BAD_REQUEST,
            "the body's length does not match Content-Range",
        );
    }
    if total > MAX_BLOB_SIZE {
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the file is larger than the registry takes",
        );
    }
    let session = match publishing.session(&id).await {
        Ok(session) => session.filter(|u| u.expires_at + uploads::SESSION > unix_now()),
        Err(e) => return store_failed(&id, &e),
    };
    let Some(session) = session else {
        return answer(
            StatusCode::NOT_FOUND,
            "no such upload, or it expired; ask for a new one with generateUploadUrl",
        );
    };
    let follows = start == 0 || (start == session.received && session.total == Some(total));
    if !follows {
        return answer(
            StatusCode::CONFLICT,
            "this chunk does not follow the bytes received so far; send them in order",
        );
    }
    let chunk = Chunk {
        start,
        len,
        sha256: Sha256Digest::of(&body),
    };
    let stored = {
        let (id, chunk) = (id.clone(), chunk.clone());
        publishing
            .db(move |db, blobs| {
                blobs.put_chunk(&id, &chunk, &body)?;
                uploads::record(db, blobs, &id, &session, chunk, total)
            })
            .await
    };
    match stored {
        Ok(true) => {}
        Ok(false) => {
            return answer(
                StatusCode::CONFLICT,
                "another request sent bytes for this upload at the same time; send them in order",
            );
        }
        Err(e) => return store_failed(&id, &e),
    }
    if end == total {
        return answer(StatusCode::OK, "upload complete");
    }
    let range = format!("bytes=0-{}", end - 1);
    (StatusCode::PERMANENT_REDIRECT, [(header::RANGE, range)]).into_response()
}

/// A store or database that failed under an upload: 503, which clients retry.
fn store_failed(id: &str, e: &UploadError) -> Response {
    tracing::error!("upload {}: {e}", &id[..id.floor_char_boundary(12)]);
    let mut response = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "the registry cannot store the upload now; try again",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_and_names_take_both_forms() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_RANGE, value.parse().unwrap());
            h
        };
        assert_eq!(content_range(&HeaderMap::new()), None);
        assert_eq!(
            content_range(&headers("bytes 0-9/20")),
            Some(Ok((0, 10, 20)))
        );
        assert_eq!(
            content_range(&headers("bytes 10-19/20")),
            Some(Ok((10, 20, 20)))
        );
        for bad in [
            "bytes 5-4/20",
            "bytes 0-20/20",
            "bytes */20",
            "items 0-1/2",
            "bytes a-b/c",
        ] {
            assert_eq!(content_range(&headers(bad)), Some(Err(())), "{bad}");
        }

        let name = |n: Option<&str>, ns: Option<&str>| package_name(n, ns).map(|p| p.to_string());
        assert_eq!(name(Some("Acme/Tool"), None).unwrap(), "acme/tool");
        assert_eq!(name(Some("tool"), Some("acme")).unwrap(), "acme/tool");
        assert!(name(Some("tool"), None).is_err());
        assert!(name(None, Some("acme")).is_err());
        let tool: PackageName = "acme/tool".parse().unwrap();
        assert!(check_namespace("acme", &tool).is_ok());
        let refused = check_namespace("other", &tool).unwrap_err();
        assert!(
            refused.message.contains("`other` only"),
            "{}",
            refused.message
        );
    }
}
