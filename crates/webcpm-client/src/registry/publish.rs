//! `webcpm publish DIR|FILE.webc`: the Wasmer registry's publish flow, from the client's side.
//! The package directory is built into a WebC v3 container ([`crate::package_dir`]) and checked
//! (a prebuilt WebC v2 or v3 file, from CI say, is checked whole and named by its manifest), then:
//! 1. `generateUploadUrl` (`graphql/generate_upload_url.graphql`) gives a signed URL;
//! 2. the container is uploaded there with the resumable protocol of the storage behind the real
//!    registry: `POST` with `x-goog-resumable: start` answers `201` and the session's URL in
//!    `Location`, then `PUT`s of [`CHUNK`] bytes with `Content-Range`, answered `308` until the
//!    last;
//! 3. `publishPackage` (`graphql/publish_package.graphql`) names the signed URL, and answers with
//!    the version's two formats, which the registry made from the upload.
//!
//! The token goes only to the registry's GraphQL URL, as a bearer token; never to the upload
//! URLs, which the registry signed (on a real registry they are another origin). A refusal of
//! the token is [`PublishClientError::Unauthorized`] (HTTP 401) or
//! [`PublishClientError::Forbidden`] (403), with the registry's own words, scrubbed of the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use graphql_client::GraphQLQuery;
use serde::Serialize;

use crate::container::Format;
use crate::http::{self, Secret};
use crate::package::{PackageName, WebcVersion, parse_version};
use crate::package_dir::{self, DirError};

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/registry.graphql",
    query_path = "../../graphql/generate_upload_url.graphql",
    response_derives = "Debug"
)]
struct GenerateUploadUrl;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/registry.graphql",
    query_path = "../../graphql/publish_package.graphql",
    response_derives = "Debug",
    variables_derives = "Clone"
)]
struct PublishPackage;

/// The size of one upload request.
pub(crate) const CHUNK: usize = 4 << 20;

/// The longest text taken from a registry's answer into a message.
const MAX_MESSAGE: usize = 500;

/// How long the signed URL should stay valid, in seconds.
const UPLOAD_SECONDS: i64 = 600;

/// Why a package could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishClientError {
    #[error(transparent)]
    Dir(#[from] DirError),
    #[error("wasmer.toml has no package name; add `name = \"ns/name\"` under [package]")]
    NoName,
    #[error("the package name `{0}` in wasmer.toml is not `ns/name`; fix it under [package]")]
    BadName(String),
    #[error("wasmer.toml has no version; add `version = \"X.Y.Z\"` under [package]")]
    NoVersion,
    #[error("the version `{0}` in wasmer.toml is not semver; fix it under [package]")]
    BadVersion(String),
    #[error("the package built from the directory does not check out: {0}; fix the package")]
    Container(String),
    #[error(
        "{path} does not check out as a WebC file: {reason}; publish a WebC v2 or v3 file, or the package's directory"
    )]
    BadFile { path: PathBuf, reason: String },
    #[error(
        "{path} does not say its {what} (its manifest's `wapm` annotation); give it with --name ns/name and --version X.Y.Z"
    )]
    Unnamed { path: PathBuf, what: &'static str },
    #[error(
        "--name and --version are for a prebuilt .webc file; {0} is a directory: set them in its wasmer.toml"
    )]
    NamedDirectory(PathBuf),
    #[error("the registry at {url} refused the publish (HTTP 401): {message}")]
    Unauthorized { url: String, message: String },
    #[error("the registry at {url} refused the publish (HTTP 403): {message}")]
    Forbidden { url: String, message: String },
    #[error("the registry at {url} refused the version: {message}")]
    Exists { url: String, message: String },
    #[error("the registry at {url} refused the publish: {message}")]
    Refused { url: String, message: String },
    #[error("the registry at {url} answered HTTP {status}; try again later")]
    Status { url: String, status: u16 },
    #[error("the registry at {url} answered HTTP {status} and did nothing; try again later")]
    Undone { url: String, status: u16 },
    #[error("cannot reach {url}: {reason}; check the registry URL and the network")]
    Unreachable { url: String, reason: String },
    #[error("the registry at {url} sent an answer that does not match its schema: {reason}")]
    Malformed { url: String, reason: String },
    #[error("the upload to {url} failed: {reason}; publish again")]
    Upload { url: String, reason: String },
    #[error("registry URL: {0}")]
    Url(#[from] http::UrlError),
}

impl PublishClientError {
    /// Whether the package or the registry's verdict on it is at fault (exit code 1); otherwise
    /// the network, the token or the settings are (exit code 2).
    pub fn is_package(&self) -> bool {
        matches!(
            self,
            PublishClientError::Dir(_)
                | PublishClientError::NoName
                | PublishClientError::BadName(_)
                | PublishClientError::NoVersion
                | PublishClientError::BadVersion(_)
                | PublishClientError::Container(_)
                | PublishClientError::BadFile { .. }
                | PublishClientError::Unnamed { .. }
                | PublishClientError::NamedDirectory(_)
                | PublishClientError::Exists { .. }
                | PublishClientError::Refused { .. }
        )
    }
}

/// One format of the published version, as the registry answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedFormat {
    pub sha256: Option<String>,
    pub size: Option<i64>,
}

/// What `publish` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub package: PackageName,
    pub version: String,
    /// The registry's GraphQL URL, redacted.
    pub registry: String,
    pub v2: Option<PublishedFormat>,
    pub v3: Option<PublishedFormat>,
}

/// A package directory, built and named, or a prebuilt `.webc` file.
struct Package {
    name: PackageName,
    version: semver::Version,
    description: Option<String>,
    manifest_text: String,
    bytes: Bytes,
    /// The format of `bytes`: v3 for a directory; a prebuilt file's own.
    format: WebcVersion,
}

/// The name and version given for a prebuilt file (a directory's are its `wasmer.toml`'s).
#[derive(Debug, Clone, Default)]
pub struct Naming {
    pub name: Option<PackageName>,
    pub version: Option<semver::Version>,
}

/// Builds and checks the directory, or checks the `.webc` file; nothing is sent yet.
fn pack(path: &Path, naming: &Naming) -> Result<Package, PublishClientError> {
    if path.is_file() {
        return pack_file(path, naming);
    }
    if naming.name.is_some() || naming.version.is_some() {
        return Err(PublishClientError::NamedDirectory(path.into()));
    }
    let dir = path;
    let built = package_dir::build(dir)?;
    let name_text = built.name.ok_or(PublishClientError::NoName)?;
    let name = name_text
        .parse()
        .map_err(|_| PublishClientError::BadName(name_text.clone()))?;
    let version_text = built.version.ok_or(PublishClientError::NoVersion)?;
    let version =
        parse_version(&version_text).map_err(|_| PublishClientError::BadVersion(version_text))?;
    crate::container::open(built.bytes.clone())
        .map_err(|e| PublishClientError::Container(e.to_string()))?;
    Ok(Package {
        name,
        version,
        description: built.description,
        manifest_text: built.manifest_text,
        bytes: built.bytes,
        format: WebcVersion::V3,
    })
}

/// A prebuilt WebC v2 or v3 file, checked whole, named by `naming`, else by its manifest's
/// `wapm` annotation (which recent builds leave out). The registry is told its format, and
/// keeps it as it is.
fn pack_file(path: &Path, naming: &Naming) -> Result<Package, PublishClientError> {
    let bad = |reason: String| PublishClientError::BadFile {
        path: path.into(),
        reason,
    };
    let bytes = Bytes::from(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
    let checked = crate::container::open(bytes.clone()).map_err(|e| bad(e.to_string()))?;
    let Format::Current(format) = checked.format else {
        return Err(bad("it is WebC v1, which registries no longer take".into()));
    };
    let wapm = checked.manifest().wapm().ok().flatten();
    let said = |field: fn(&webc::metadata::annotations::Wapm) -> Option<String>, what| {
        wapm.as_ref()
            .and_then(field)
            .ok_or(PublishClientError::Unnamed {
                path: path.into(),
                what,
            })
    };
    let name = match &naming.name {
        Some(name) => name.clone(),
        None => {
            let text = said(|w| w.name.clone(), "package name")?;
            text.parse()
                .map_err(|_| PublishClientError::BadName(text.clone()))?
        }
    };
    let version = match &naming.version {
        Some(version) => version.clone(),
        None => {
            let text = said(|w| w.version.clone(), "version")?;
            parse_version(&text).map_err(|_| PublishClientError::BadVersion(text))?
        }
    };
    // `publishPackage` wants a manifest: the `wasmer.toml` that names the file's package.
    let manifest_text = format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\n");
    Ok(Package {
        name,
        version,
        description: wapm.and_then(|w| w.description),
        manifest_text,
        bytes,
        format,
    })
}

/// One line of at most [`MAX_MESSAGE`] characters, without the token.
fn clean(text: &str, token: Option<&Secret>) -> String {
    let text = token.map_or_else(|| text.to_string(), |t| t.scrub(text));
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_MESSAGE)
        .collect();
    flat
}

/// How many times a mutation that the registry left undone is sent again.
const MUTATION_RETRIES: u32 = 4;

/// Waits before retry number `attempt` of a request that did nothing (`why`): the client's
/// backoff from 200 ms, or the registry's `Retry-After` when longer.
async fn back_off(attempt: u32, retry_after: Option<Duration>, why: &str) {
    let wait = http::retry_delay(Duration::from_millis(200), attempt, retry_after);
    tracing::warn!("{why}; trying again in {} ms", wait.as_millis());
    tokio::time::sleep(wait).await;
}

/// The `extensions.code` of the first error that has one.
fn code(errors: &[graphql_client::Error]) -> Option<&str> {
    errors
        .iter()
        .find_map(|e| e.extensions.as_ref()?.get("code")?.as_str())
}

impl PublishClientError {
    /// Whether the registry may have done what was asked though no answer said so: the
    /// connection broke, or a proxy answered 502 or 504 for the registry.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            PublishClientError::Unreachable { .. } => true,
            PublishClientError::Status { status, .. } => matches!(status, 502 | 504),
            _ => false,
        }
    }
}

/// A client that publishes to one registry.
#[derive(Debug, Clone)]
pub struct Publisher {
    http: http::Client,
    endpoint: reqwest::Url,
    token: Option<Secret>,
}

impl Publisher {
    pub fn new(
        http: http::Client,
        endpoint: &str,
        token: Option<String>,
    ) -> Result<Self, PublishClientError> {
        let endpoint = http.check(endpoint)?;
        Ok(Publisher {
            http,
            endpoint,
            token: token.filter(|t| !t.is_empty()).map(Secret::new),
        })
    }

    /// Builds the package in `dir` and publishes it.
    pub async fn publish(
        &self,
        path: &Path,
        naming: Naming,
    ) -> Result<Published, PublishClientError> {
        let path = path.to_path_buf();
        let package = tokio::task::spawn_blocking(move || pack(&path, &naming))
            .await
            .map_err(|e| PublishClientError::Container(e.to_string()))??;
        let (name, version) = (&package.name, package.version.to_string());
        let answer: generate_upload_url::ResponseData = self
            .mutate::<GenerateUploadUrl>(
                generate_upload_url::Variables {
                    name: Some(name.to_string()),
                    version: Some(version.clone()),
                    filename: Some(format!("{}-{version}.webc", name.name())),
                    expires_after_seconds: Some(UPLOAD_SECONDS),
                },
                true,
            )
            .await?;
        let url = answer
            .generate_upload_url
            .ok_or_else(|| self.malformed("generateUploadUrl is null"))?
            .signed_url
            .url;
        self.upload(&url, &package.bytes).await?;
        let variables = publish_package::Variables {
            name: Some(name.to_string()),
            namespace: Some(name.namespace().to_string()),
            version: Some(version.clone()),
            description: package.description.clone(),
            manifest: package.manifest_text.clone(),
            signed_url: Some(url),
            upload_format: Some(match package.format {
                WebcVersion::V2 => publish_package::UploadFormat::webcv2,
                WebcVersion::V3 => publish_package::UploadFormat::webcv3,
            }),
        };
        match self
            .mutate::<PublishPackage>(variables.clone(), false)
            .await
        {
            Ok(answer) => self.published(&package, answer),
            Err(e) if e.outcome_unknown() => self.ask_again(&package, variables, e).await,
            Err(e) => Err(e),
        }
    }

    /// The answer to `publishPackage` was lost (the connection broke, or a proxy answered for a
    /// replica that went away): ask once more, and if the registry says the version is there
    /// already (or the upload used), see whether what is there is what was uploaded.
    async fn ask_again(
        &self,
        package: &Package,
        variables: publish_package::Variables,
        lost: PublishClientError,
    ) -> Result<Published, PublishClientError> {
        tracing::warn!("{lost}; asking the registry again");
        tokio::time::sleep(Duration::from_millis(500)).await;
        match self.mutate::<PublishPackage>(variables, false).await {
            Ok(answer) => self.published(package, answer),
            Err(PublishClientError::Exists { .. } | PublishClientError::Refused { .. }) => {
                self.already_there(package).await?.ok_or(lost)
            }
            Err(e) => Err(e),
        }
    }

    /// The version as the registry has it, when its v3 file is the bytes that were uploaded.
    async fn already_there(
        &self,
        package: &Package,
    ) -> Result<Option<Published>, PublishClientError> {
        let token = self.token.as_ref().map(|t| t.expose().to_string());
        let client = super::RegistryClient::new(self.http.clone(), self.endpoint.as_str(), token)
            .map_err(|e| self.malformed(&e.to_string()))?;
        let releases = client
            .package(&package.name)
            .await
            .map_err(|e| self.malformed(&e.to_string()))?
            .unwrap_or_default();
        let sha256 = crate::package::Sha256Digest::of(&package.bytes);
        let Some(release) = releases.into_iter().find(|r| {
            r.version == package.version
                && r.offer(package.format)
                    .distribution()
                    .is_some_and(|d| d.sha256 == sha256)
        }) else {
            return Ok(None);
        };
        let format = |offer: &crate::package::Offer| {
            offer.distribution().map(|d| PublishedFormat {
                sha256: Some(d.sha256.hex()),
                size: d.size.and_then(|n| i64::try_from(n).ok()),
            })
        };
        Ok(Some(Published {
            package: package.name.clone(),
            version: package.version.to_string(),
            registry: http::redact(self.endpoint.as_str()),
            v2: format(&release.v2),
            v3: format(&release.v3),
        }))
    }

    fn published(
        &self,
        package: &Package,
        answer: publish_package::ResponseData,
    ) -> Result<Published, PublishClientError> {
        let payload = answer
            .publish_package
            .ok_or_else(|| self.malformed("publishPackage is null"))?;
        if !payload.success {
            return Err(PublishClientError::Refused {
                url: http::redact(self.endpoint.as_str()),
                message: "publishPackage answered success: false".into(),
            });
        }
        let node = |d: publish_package::Published| PublishedFormat {
            sha256: d.pirita_sha256_hash,
            size: d.pirita_size,
        };
        let (v2, v3) = match payload.package_version {
            Some(v) => (Some(node(v.v2)), Some(node(v.v3))),
            None => (None, None),
        };
        Ok(Published {
            package: package.name.clone(),
            version: package.version.to_string(),
            registry: http::redact(self.endpoint.as_str()),
            v2,
            v3,
        })
    }

    fn malformed(&self, reason: &str) -> PublishClientError {
        PublishClientError::Malformed {
            url: http::redact(self.endpoint.as_str()),
            reason: reason.to_string(),
        }
    }

    /// One mutation to the registry, with the token; a refusal becomes its error. An answer
    /// that says nothing was done (`429`, or `503` with the code `UNAVAILABLE`) is retried, at
    /// most [`MUTATION_RETRIES`] times, after its `Retry-After`; with `idempotent`, so is a
    /// request whose answer was lost ([`PublishClientError::outcome_unknown`]).
    async fn mutate<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        idempotent: bool,
    ) -> Result<Q::ResponseData, PublishClientError> {
        let url = http::redact(self.endpoint.as_str());
        let body = serde_json::to_vec(&Q::build_query(variables))
            .map_err(|e| self.malformed(&e.to_string()))?;
        let mut attempt = 0;
        loop {
            let (outcome, retry_after) = match self.post(&body, &url).await {
                Ok((status, retry_after, answer)) => {
                    (self.answer::<Q>(status, &answer, &url), retry_after)
                }
                Err(e) => (Err(e), None),
            };
            let again = match &outcome {
                Err(PublishClientError::Undone { .. }) => true,
                Err(e) => idempotent && e.outcome_unknown(),
                Ok(_) => false,
            };
            if !again || attempt == MUTATION_RETRIES {
                return outcome;
            }
            attempt += 1;
            let why = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            back_off(attempt, retry_after, &why).await;
        }
    }

    /// What an answer to a mutation says.
    fn answer<Q: GraphQLQuery>(
        &self,
        status: u16,
        answer: &[u8],
        url: &str,
    ) -> Result<Q::ResponseData, PublishClientError> {
        let answer: Option<graphql_client::Response<Q::ResponseData>> =
            serde_json::from_slice(answer).ok();
        let (data, errors) = match answer {
            Some(a) => (a.data, a.errors.unwrap_or_default()),
            None => (None, Vec::new()),
        };
        if status == 429 || (status == 503 && code(&errors) == Some("UNAVAILABLE")) {
            return Err(PublishClientError::Undone {
                url: url.to_string(),
                status,
            });
        }
        if let Some(refusal) = self.refusal(status, &errors, url) {
            return Err(refusal);
        }
        if !(200..300).contains(&status) {
            return Err(PublishClientError::Status {
                url: url.to_string(),
                status,
            });
        }
        data.ok_or_else(|| self.malformed("no `data` and no `errors`"))
    }

    /// Posts a GraphQL body with the token: the status, its `Retry-After` and the answer.
    async fn post(
        &self,
        body: &[u8],
        url: &str,
    ) -> Result<(u16, Option<Duration>, Bytes), PublishClientError> {
        let mut request = self
            .http
            .post(self.endpoint.as_str())?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| PublishClientError::Unreachable {
                url: url.to_string(),
                reason: http::describe(&e),
            })?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        Ok((
            status,
            retry_after,
            response.bytes().await.unwrap_or_default(),
        ))
    }

    /// The error for a refused request: by HTTP status (401, 403), then by the first error's
    /// `extensions.code`.
    fn refusal(
        &self,
        status: u16,
        errors: &[graphql_client::Error],
        url: &str,
    ) -> Option<PublishClientError> {
        let message = clean(
            &errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            self.token.as_ref(),
        );
        let url = url.to_string();
        match (status, code(errors)) {
            (401, _) => Some(PublishClientError::Unauthorized { url, message }),
            (403, _) => Some(PublishClientError::Forbidden { url, message }),
            (_, Some("ALREADY_EXISTS")) => Some(PublishClientError::Exists { url, message }),
            _ if !errors.is_empty() => Some(PublishClientError::Refused { url, message }),
            _ => None,
        }
    }

    /// Sends `bytes[start..end]` of the upload: the status and its `Retry-After`, or why
    /// nothing came back.
    async fn put_chunk(
        &self,
        session: &reqwest::Url,
        bytes: &Bytes,
        start: usize,
        end: usize,
    ) -> Result<(u16, Option<Duration>), String> {
        let total = bytes.len();
        let response = self
            .http
            .put(session.as_str())
            .map_err(|e| e.to_string())?
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(
                reqwest::header::CONTENT_RANGE,
                format!("bytes {start}-{}/{total}", end.saturating_sub(1)),
            )
            .body(bytes.slice(start..end))
            .send()
            .await
            .map_err(|e| http::describe(&e))?;
        Ok((
            response.status().as_u16(),
            http::retry_after(response.headers()),
        ))
    }

    /// Asks the signed URL for an upload session (`x-goog-resumable: start`), again when the
    /// registry is busy or unreachable (it only names the session), counting in `retries`.
    async fn start_session(
        &self,
        signed_url: &reqwest::Url,
        retries: &mut u32,
    ) -> Result<Result<reqwest::Response, String>, PublishClientError> {
        loop {
            let sent = self
                .http
                .post(signed_url.as_str())?
                .header(reqwest::header::CONTENT_LENGTH, "0")
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header("x-goog-resumable", "start")
                .send()
                .await;
            let busy = match &sent {
                Ok(r) => matches!(r.status().as_u16(), 429 | 503),
                Err(_) => true,
            };
            if !busy || *retries == MUTATION_RETRIES {
                return Ok(sent.map_err(|e| http::describe(&e)));
            }
            *retries += 1;
            let retry_after = sent.ok().and_then(|r| http::retry_after(r.headers()));
            let why = "starting the upload found the registry busy";
            back_off(*retries, retry_after, why).await;
        }
    }

    /// Uploads `bytes` to the signed URL, in chunks, without the token; a chunk that the
    /// registry did not store is sent again, at most [`MUTATION_RETRIES`] times in all.
    async fn upload(&self, signed: &str, bytes: &Bytes) -> Result<(), PublishClientError> {
        let signed_url = self.http.check(signed)?;
        let shown = http::redact(signed);
        let failed = |reason: String| PublishClientError::Upload {
            url: shown.clone(),
            reason,
        };
        let mut retries = 0;
        let started = self
            .start_session(&signed_url, &mut retries)
            .await?
            .map_err(failed)?;
        if !started.status().is_success() {
            return Err(failed(format!(
                "starting it answered HTTP {}",
                started.status()
            )));
        }
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| failed("the answer to its start has no Location".into()))?;
        let session = signed_url
            .join(location)
            .map_err(|_| failed("the session URL is not a URL".into()))?;
        let session = self.http.check(session.as_str())?;
        let total = bytes.len();
        let mut start = 0;
        while start < total.max(1) {
            let end = (start + CHUNK).min(total);
            let sent = self.put_chunk(&session, bytes, start, end).await;
            let (status, retry_after) = match &sent {
                Ok((status, retry_after)) => (*status, *retry_after),
                Err(_) => (0, None),
            };
            let last = end == total;
            if last && (200..300).contains(&status) || !last && status == 308 {
                start = end.max(1);
                continue;
            }
            // Nothing stored (a lost connection, 429, 503), or, after such a retry, a 409: the
            // registry did take the chunk whose answer was lost. Send again; after a 409, all of
            // it (a chunk at 0 starts the upload afresh).
            let again = matches!(status, 0 | 429 | 503) || status == 409 && retries > 0;
            if again && retries < MUTATION_RETRIES {
                retries += 1;
                let why = match &sent {
                    Err(reason) => format!("bytes {start}-{end} were not sent: {reason}"),
                    Ok(_) => format!("bytes {start}-{end} were not stored (HTTP {status})"),
                };
                if status == 409 {
                    start = 0;
                }
                back_off(retries, retry_after, &why).await;
                continue;
            }
            return Err(failed(match sent {
                Err(reason) => reason,
                Ok(_) => format!("bytes {start}-{end} answered HTTP {status}"),
            }));
        }
        Ok(())
    }
}
