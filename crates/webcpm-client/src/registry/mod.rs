//! The registry client: one GraphQL query per package (`graphql/get_package.graphql`, compiled by
//! graphql_client against `schema/registry.graphql`) that returns every version with both of its
//! formats, `v2: distribution(version: V2)` and `v3: distribution(version: V3)`; or, for many
//! packages at once (a level of a dependency tree), the same fragments under one alias per
//! package in one request ([`RegistryClient::packages`]).
//!
//! The answer is untrusted, and the real registry's answers are ragged: it leaves `piritaSize`,
//! `webcVersion` and `webcManifest` null for many versions, and old versions carry hashes that
//! are not SHA-256 digests (`1234asdf`) or no URL at all. The answer is read with serde types of
//! this module that accept a missing key wherever a null is allowed (the generated types never
//! leave it, and are used only to build the request), and turned at once into [`Release`]s, one
//! version at a time, so that one broken version never spoils the others:
//! - a node whose URL and hash are both null is [`Offer::NotOffered`];
//! - a node that is there but cannot be used (a hash that is not a SHA-256, a hash without a URL
//!   or a URL without a hash, a URL that is not http(s), a negative size, a manifest that does
//!   not parse) is [`Offer::Invalid`] with the reason; the policy falls back to the other
//!   format, and a version with no usable node is skipped by the resolver with that reason;
//! - a version whose fields do not have the schema's types is kept with both nodes invalid;
//! - a version whose number is not semver is dropped (with a log line), as Wasmer does;
//! - an answer without the schema's shape, or with `errors`, is an error.
//!
//! What is sent: `getPackage(name: "ns/name")`. A bare `name` is sent as `_/name`, the name the
//! registry knows legacy packages by (the Wasmer CLI sends the bare name, and the registry
//! answers with namespace `_` either way). The package's name is read back from `namespace` and
//! `packageName`; an answer about another package is refused.
//!
//! The distribution fields: `pirita*` (`piritaDownloadUrl`, `piritaSha256Hash`, `piritaSize`,
//! `piritaExpiresInSeconds`) describe the `.webc` file of the format the alias asks for ("pirita"
//! is the old name of the WebC container). The schema also has `webcDownloadUrl`,
//! `webcSha256Hash`, `webcSize` and `webcExpiresInSeconds`, which also describe a version's WebC
//! file; the Wasmer client reads none of them (its resolver, `BackendSource`, asks for
//! `piritaDownloadUrl`, `piritaSha256Hash` and `webcManifest` only, and `wasmer package download`
//! uses `piritaDownloadUrl`), so webcpm does not either. `downloadUrl` is the package's tar.gz
//! (its WebC file when it was published as WebC only), not a container to install.
//!
//! The pure part, [`parse_answer`], turns an answer's bytes into [`Release`]s; property tests
//! feed it arbitrary input. Transient failures (unreachable, 5xx, 429) are retried with backoff,
//! honouring `Retry-After`; an answer larger than [`MAX_ANSWER`] is refused.
//!
//! The registry token is sent as a bearer token to the registry's own URL and nowhere else (the
//! downloader sends it to blob URLs on the same origin only); it is a [`http::Secret`], and is
//! scrubbed from any text the registry sends back into an error.

mod batch;
mod legacy;
pub mod publish;
pub mod search;

pub use batch::MAX_BATCH;

use graphql_client::GraphQLQuery;

use crate::http;
use crate::package::{
    Distribution, InputError, Offer, PackageName, Release, Sha256Digest, WebcVersion,
    dependencies_of, parse_version,
};

/// The scalar `JSONString`: the real registry sends a string holding JSON; some servers send the
/// JSON itself. Both are accepted.
type JSONString = serde_json::Value;
/// The scalar `DateTime`: RFC 3339 text (read by [`crate::cooldown::parse_time`]).
type DateTime = String;

/// Builds the request; its response types are not used (see [`answer`]).
#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/registry.graphql",
    query_path = "../../graphql/get_package.graphql",
    response_derives = "Debug"
)]
struct GetPackage;

/// The answer to `GetPackage`, read leniently: a missing key is a null wherever the schema
/// allows a null (and `isArchived` defaults to false, as in Wasmer's client).
mod answer {
    use serde::Deserialize;

    /// Any GraphQL answer: its `data` of type `D`, or its `errors`.
    #[derive(Debug, Deserialize)]
    pub(super) struct Response<D> {
        pub data: Option<D>,
        pub errors: Option<Vec<Error>>,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct Error {
        pub message: String,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct Data {
        #[serde(rename = "getPackage")]
        pub get_package: Option<Package>,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct Package {
        pub namespace: String,
        #[serde(rename = "packageName")]
        pub package_name: String,
        /// Each version is read on its own, so that one that is malformed spoils nothing else.
        pub versions: Option<Vec<Option<serde_json::Value>>>,
    }

    /// A version's number is read before, on its own: it names the version in messages.
    #[derive(Debug, Deserialize)]
    pub(super) struct Version {
        #[serde(rename = "isArchived", default)]
        pub is_archived: bool,
        #[serde(rename = "createdAt", default)]
        pub created_at: Option<String>,
        #[serde(rename = "publishedBy", default)]
        pub published_by: Option<User>,
        pub v2: Option<Node>,
        pub v3: Option<Node>,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct User {
        #[serde(default)]
        pub username: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Node {
        pub pirita_download_url: Option<String>,
        pub pirita_sha256_hash: Option<String>,
        pub pirita_size: Option<i64>,
        pub pirita_expires_in_seconds: Option<i64>,
        pub webc_version: Option<String>,
        pub webc_manifest: Option<super::JSONString>,
    }
}

/// The largest GraphQL answer read; a registry that sends more is refused.
pub(crate) const MAX_ANSWER: usize = 64 << 20;

/// The longest error text taken from a registry's answer into a message.
const MAX_MESSAGE: usize = 500;

/// Why the registry could not be asked, or answered with something unusable.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the registry at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the registry at {url} answered HTTP {status}")]
    Status {
        url: String,
        status: u16,
        /// The server's `Retry-After`, capped.
        retry_after: Option<std::time::Duration>,
    },
    #[error("the registry at {url} answered with errors: {messages}")]
    GraphQl { url: String, messages: String },
    #[error("the registry at {url} sent an answer that does not match its schema: {reason}")]
    Malformed { url: String, reason: String },
    #[error("registry URL: {0}")]
    Url(#[from] http::UrlError),
}

impl RegistryError {
    /// Whether trying again later might help.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Why an answer's body could not be used, before the registry's URL is attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer has errors: {0}")]
    GraphQl(String),
    #[error("the answer does not match the schema: {0}")]
    Malformed(String),
}

impl AnswerError {
    fn at(self, url: String) -> RegistryError {
        match self {
            AnswerError::GraphQl(messages) => RegistryError::GraphQl { url, messages },
            AnswerError::Malformed(reason) => RegistryError::Malformed { url, reason },
        }
    }
}

/// One line of at most [`MAX_MESSAGE`] characters, control characters blanked.
fn clipped(text: &str) -> String {
    let flat = crate::error_text::one_line(&text.replace(char::is_control, " "));
    let mut chars = flat.chars();
    let mut out: String = chars.by_ref().take(MAX_MESSAGE).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Turns the body of a registry's answer to the query for `name` into releases: `None` when the
/// registry does not know the package. Pure, and total: any bytes give a value or an error,
/// never a panic. A version that is not semver is skipped; a node that is wrong is
/// [`Offer::Invalid`]; an answer without the schema's shape, with `errors`, or about another
/// package is an error.
pub fn parse_answer(
    bytes: &[u8],
    name: &PackageName,
    allow_insecure_http: bool,
) -> Result<Option<Vec<Release>>, AnswerError> {
    let data: answer::Data = data_of(bytes)?;
    releases_of(name, data.get_package, allow_insecure_http)
}

/// One package of an answer, checked to be the one asked for, as releases; `None` when the
/// registry does not know it.
fn releases_of(
    name: &PackageName,
    package: Option<answer::Package>,
    allow_insecure_http: bool,
) -> Result<Option<Vec<Release>>, AnswerError> {
    let Some(package) = package else {
        return Ok(None);
    };
    let answered = format!("{}/{}", package.namespace, package.package_name);
    if answered.parse::<PackageName>().ok().as_ref() != Some(name) {
        return Err(AnswerError::Malformed(clipped(&format!(
            "asked for {name}, the answer is about `{answered}`"
        ))));
    }
    Ok(Some(convert_package(name, package, allow_insecure_http)))
}

/// The `data` of a GraphQL answer; its `errors` (clipped), or a body that is not an answer, are
/// errors.
fn data_of<D: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<D, AnswerError> {
    let answer: answer::Response<D> = serde_json::from_slice(bytes)
        .map_err(|e| AnswerError::Malformed(clipped(&e.to_string())))?;
    if let Some(errors) = answer.errors.filter(|e| !e.is_empty()) {
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        return Err(AnswerError::GraphQl(clipped(&messages.join("; "))));
    }
    answer
        .data
        .ok_or_else(|| AnswerError::Malformed("no `data` and no `errors`".into()))
}

/// A client for one registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: http::Client,
    endpoint: reqwest::Url,
    token: Option<http::Secret>,
    /// Set once the registry refused `publishedBy` ([`legacy`]).
    legacy: legacy::Legacy,
    retries: u32,
    backoff: std::time::Duration,
}

impl RegistryClient {
    pub fn new(
        http: http::Client,
        endpoint: &str,
        token: Option<String>,
    ) -> Result<Self, RegistryError> {
        let endpoint = http.check(endpoint)?;
        Ok(RegistryClient {
            http,
            endpoint,
            token: token.filter(|t| !t.is_empty()).map(http::Secret::new),
            legacy: legacy::Legacy::default(),
            retries: 3,
            backoff: std::time::Duration::from_millis(200),
        })
    }

    /// How many times a transient failure (unreachable, 5xx, 429) is tried again (default 3).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    pub fn endpoint(&self) -> &reqwest::Url {
        &self.endpoint
    }

    /// The registry's URL and token, for downloads from the registry's own origin.
    pub fn credentials(&self) -> Option<(&reqwest::Url, &http::Secret)> {
        self.token.as_ref().map(|t| (&self.endpoint, t))
    }

    /// Every version of `name` with both formats, or `None` when the registry does not know it.
    /// Transient failures are retried with backoff, honouring `Retry-After`.
    pub async fn package(&self, name: &PackageName) -> Result<Option<Vec<Release>>, RegistryError> {
        // `_/name` for a package of the global namespace (see the module's documentation).
        let body = GetPackage::build_query(get_package::Variables {
            name: name.to_string(),
        });
        let build = |legacy: bool| {
            serde_json::json!({
                "query": legacy::query_text(body.query, legacy),
                "operationName": body.operation_name,
                "variables": &body.variables,
            })
        };
        let insecure = self.http.allows_insecure_http();
        self.query(build, |bytes| parse_answer(bytes, name, insecure))
            .await
    }

    /// Posts a GraphQL request; the answer's body and the registry's URL as messages show it.
    /// Transient failures are retried with backoff, honouring `Retry-After`.
    pub(crate) async fn send(
        &self,
        body: &impl serde::Serialize,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let url = http::redact(self.endpoint.as_str());
        let mut attempt = 0;
        loop {
            match self.ask(body, &url).await {
                Ok(bytes) => return Ok((bytes, url)),
                Err(e) if e.is_transient() && attempt < self.retries => {
                    attempt += 1;
                    let retry_after = match &e {
                        RegistryError::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = http::retry_delay(self.backoff, attempt, retry_after);
                    tracing::warn!("{e}; trying again in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The error with the token scrubbed from whatever text the registry sent back.
    pub(crate) fn scrubbed(&self, e: RegistryError) -> RegistryError {
        match (&self.token, e) {
            (Some(token), RegistryError::GraphQl { url, messages }) => RegistryError::GraphQl {
                url,
                messages: token.scrub(&messages),
            },
            (Some(token), RegistryError::Malformed { url, reason }) => RegistryError::Malformed {
                url,
                reason: token.scrub(&reason),
            },
            (_, e) => e,
        }
    }

    /// One request: the answer's body, at most [`MAX_ANSWER`] bytes.
    async fn ask(&self, body: &impl serde::Serialize, url: &str) -> Result<Vec<u8>, RegistryError> {
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            url: url.to_string(),
            reason: http::describe(&e),
        };
        let mut request = self.http.post(self.endpoint.as_str())?.json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                retry_after: http::retry_after(response.headers()),
            });
        }
        let too_big = || RegistryError::Malformed {
            url: url.to_string(),
            reason: format!("the answer is larger than {MAX_ANSWER} bytes"),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER as u64)
        {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

fn convert_package(
    name: &PackageName,
    package: answer::Package,
    allow_insecure_http: bool,
) -> Vec<Release> {
    let mut releases = Vec::new();
    for value in package.versions.into_iter().flatten().flatten() {
        let text = value
            .get("version")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let Ok(version) = parse_version(&text) else {
            tracing::warn!(
                "{name}: the registry lists version `{}`, which is not semver; ignored",
                clipped(&text)
            );
            continue;
        };
        let release = match serde_json::from_value::<answer::Version>(value) {
            Ok(v) => Release {
                name: name.clone(),
                version,
                archived: v.is_archived,
                published_at: v.created_at.as_deref().and_then(unix_time),
                publisher: v.published_by.and_then(|u| publisher(u.username)),
                v2: convert_node(WebcVersion::V2, v.v2, allow_insecure_http),
                v3: convert_node(WebcVersion::V3, v.v3, allow_insecure_http),
            },
            Err(e) => {
                let why = clipped(&format!(
                    "the version's fields do not match the schema: {e}"
                ));
                Release {
                    name: name.clone(),
                    version,
                    archived: false,
                    published_at: None,
                    publisher: None,
                    v2: Offer::Invalid(why.clone()),
                    v3: Offer::Invalid(why),
                }
            }
        };
        releases.push(release);
    }
    releases
}

/// A publisher's user name as the registry gives it: `None` when empty; control characters
/// dropped and at most 100 characters kept, as it reaches terminals and the lockfile.
fn publisher(username: Option<String>) -> Option<String> {
    let name: String = username?
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    (!name.trim().is_empty()).then_some(name)
}

/// An RFC 3339 time (`createdAt`: `2024-05-16T09:09:40.370046+00:00` from the real registry)
/// as Unix seconds; `None` for one that is not.
fn unix_time(text: &str) -> Option<i64> {
    crate::cooldown::parse_time(text).ok()
}

fn convert_node(webc: WebcVersion, node: Option<answer::Node>, allow_insecure_http: bool) -> Offer {
    let node = node.unwrap_or_default();
    let (url, hash) = match (node.pirita_download_url, node.pirita_sha256_hash) {
        (Some(url), Some(hash)) => (url, hash),
        (None, None) => return Offer::NotOffered,
        (None, Some(hash)) => {
            return Offer::Invalid(clipped(&format!(
                "the node has a hash (`{hash}`) but no download URL"
            )));
        }
        (Some(_), None) => return Offer::Invalid("the node has a URL but no SHA-256 hash".into()),
    };
    let claimed = match node.webc_version.as_deref() {
        None => None,
        Some("V2") => Some(WebcVersion::V2),
        Some("V3") => Some(WebcVersion::V3),
        Some(other) => {
            return Offer::Invalid(clipped(&format!("unknown webcVersion `{other}`")));
        }
    };
    let node = Node {
        url,
        hash,
        size: node.pirita_size,
        expires_in: node.pirita_expires_in_seconds,
        claimed,
        manifest: node.webc_manifest,
    };
    match node.into_distribution(webc, allow_insecure_http) {
        Ok(d) => Offer::Offered(d),
        Err(reason) => Offer::Invalid(clipped(&reason)),
    }
}

/// The fields of one node, before they are checked.
struct Node {
    url: String,
    hash: String,
    size: Option<i64>,
    expires_in: Option<i64>,
    claimed: Option<WebcVersion>,
    manifest: Option<serde_json::Value>,
}

impl Node {
    fn into_distribution(
        self,
        webc: WebcVersion,
        allow_insecure_http: bool,
    ) -> Result<Distribution, String> {
        http::check_url(&self.url, allow_insecure_http).map_err(|e| e.to_string())?;
        let sha256: Sha256Digest = self.hash.parse().map_err(|e: InputError| e.to_string())?;
        // No size is no reason to refuse the node: the SHA-256 proves the bytes, and the
        // download is bounded by `download.max_size` and the server's `Content-Length`.
        let size = match self.size {
            Some(n) => Some(u64::try_from(n).map_err(|_| format!("size {n} is negative"))?),
            None => None,
        };
        let (manifest, dependencies) = match self.manifest {
            None | Some(serde_json::Value::Null) => (None, Vec::new()),
            Some(value) => {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                let parsed: webc::metadata::Manifest = serde_json::from_str(&text)
                    .map_err(|e| format!("webcManifest does not parse: {e}"))?;
                let dependencies = dependencies_of(&parsed)?;
                (Some(text), dependencies)
            }
        };
        Ok(Distribution {
            webc,
            url: self.url,
            sha256,
            size,
            claimed: self.claimed,
            dependencies,
            manifest,
            // A negative lifetime says nothing useful; the URL is then treated as any other.
            expires_in: self.expires_in.and_then(|n| u64::try_from(n).ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str, hash: &str) -> serde_json::Value {
        serde_json::json!({
            "piritaDownloadUrl": url,
            "piritaSha256Hash": hash,
            "piritaSize": 10,
            "webcVersion": "V2",
            "webcManifest": "{\"use\": {\"dep\": \"test/dep@^1\"}}",
        })
    }

    fn parse_as(
        name: &str,
        answer: serde_json::Value,
    ) -> Result<Option<Vec<Release>>, AnswerError> {
        let name: PackageName = name.parse().unwrap();
        parse_answer(&serde_json::to_vec(&answer).unwrap(), &name, false)
    }

    fn parse(answer: serde_json::Value) -> Result<Option<Vec<Release>>, AnswerError> {
        parse_as("test/a", answer)
    }

    fn package(versions: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"data": {"getPackage": {"namespace": "test", "packageName": "a",
            "versions": versions}}})
    }

    #[test]
    fn answers_become_releases_with_checked_nodes() {
        let good = "ab".repeat(32);
        let none = serde_json::json!({"piritaDownloadUrl": null, "piritaSha256Hash": null,
            "piritaSize": null, "webcVersion": null, "webcManifest": null});
        let releases = parse(package(serde_json::json!([
            {"version": "1.0.0", "isArchived": false,
             "v2": node("http://127.0.0.1:1/a.webc", &good), "v3": none},
            {"version": "1.1.0", "isArchived": true,
             "v2": node("file:///etc/passwd", &good), "v3": node("https://x.io/b", "zz")},
            {"version": "not semver", "isArchived": false, "v2": none, "v3": none},
        ])))
        .unwrap()
        .unwrap();
        assert_eq!(
            releases.len(),
            2,
            "the version that is not semver is skipped"
        );
        let d = releases[0].v2.distribution().unwrap();
        assert_eq!(d.size, Some(10));
        assert_eq!(d.dependencies[0].spec.name.as_str(), "test/dep");
        assert_eq!(releases[0].v3, Offer::NotOffered);
        assert!(releases[1].archived);
        assert!(matches!(&releases[1].v2, Offer::Invalid(why) if why.contains("scheme `file`")));
        assert!(matches!(&releases[1].v3, Offer::Invalid(why) if why.contains("SHA-256")));

        assert_eq!(
            parse(serde_json::json!({"data": {"getPackage": null}})),
            Ok(None)
        );
        assert!(matches!(
            parse(serde_json::json!({"data": null, "errors": [{"message": "boom\nbang"}]})),
            Err(AnswerError::GraphQl(m)) if m == "boom bang"
        ));
        assert!(matches!(
            parse(package(serde_json::json!("x"))),
            Err(AnswerError::Malformed(_))
        ));
        assert!(matches!(
            parse(serde_json::json!({})),
            Err(AnswerError::Malformed(_))
        ));
        let long = "x".repeat(5000);
        let Err(AnswerError::GraphQl(m)) =
            parse(serde_json::json!({"errors": [{"message": long}]}))
        else {
            panic!("errors");
        };
        assert!(m.chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn null_and_missing_fields_leave_a_usable_node() {
        let good = "cd".repeat(32);
        let bare = serde_json::json!({"piritaDownloadUrl": "https://cdn.example/x.webc?sig=1",
            "piritaSha256Hash": good});
        let nulls = serde_json::json!({"piritaDownloadUrl": "https://cdn.example/x.webc",
            "piritaSha256Hash": good, "piritaSize": null, "webcVersion": null,
            "webcManifest": null, "piritaExpiresInSeconds": 300});
        let releases = parse(package(serde_json::json!([
            {"version": "1.0.0", "v2": bare, "v3": nulls},
        ])))
        .unwrap()
        .unwrap();
        let r = &releases[0];
        assert!(!r.archived, "a missing isArchived is false");
        let v2 = r.v2.distribution().unwrap();
        assert_eq!(v2.size, None);
        assert_eq!(v2.left_out(), ["piritaSize", "webcVersion", "webcManifest"]);
        assert_eq!(r.v3.distribution().unwrap().expires_in, Some(300));
        assert!(r.shared_file().is_some(), "one hash behind both nodes");
    }

    #[test]
    fn broken_versions_keep_their_reason_and_spoil_nothing_else() {
        let good = "ef".repeat(32);
        let releases = parse(package(serde_json::json!([
            {"version": "0.1.3", "v2": {"piritaDownloadUrl": "https://example.com/",
                "piritaSha256Hash": "1234asdf"}, "v3": {"piritaSha256Hash": good}},
            {"version": "0.1.4", "isArchived": "yes", "v2": null, "v3": null},
            {"version": "0.1.5", "v2": {"piritaDownloadUrl": "https://example.com/",
                "piritaSha256Hash": good, "piritaSize": -1}, "v3": {"webcVersion": "V9",
                "piritaDownloadUrl": "https://example.com/", "piritaSha256Hash": good}},
            {"version": "1.0.0", "v2": {"piritaDownloadUrl": "https://example.com/a.webc",
                "piritaSha256Hash": good}},
        ])))
        .unwrap()
        .unwrap();
        assert_eq!(releases.len(), 4);
        let formats = WebcVersion::ALL;
        let why = releases[0].unusable(&formats).unwrap();
        assert!(
            why.contains("`1234asdf`") && why.contains("no download URL"),
            "{why}"
        );
        let why = releases[1].unusable(&formats).unwrap();
        assert!(why.contains("do not match the schema"), "{why}");
        let why = releases[2].unusable(&formats).unwrap();
        assert!(why.contains("negative") && why.contains("V9"), "{why}");
        assert_eq!(releases[3].unusable(&formats), None);
        assert_eq!(releases[3].v3, Offer::NotOffered);
    }

    #[test]
    fn the_answer_must_be_about_the_package_asked_for() {
        let answer = serde_json::json!({"data": {"getPackage": {"namespace": "_",
            "packageName": "cowsay", "versions": []}}});
        assert_eq!(parse_as("cowsay", answer.clone()), Ok(Some(Vec::new())));
        assert_eq!(parse_as("_/CowSay", answer.clone()), Ok(Some(Vec::new())));
        assert!(matches!(
            parse_as("test/cowsay", answer),
            Err(AnswerError::Malformed(m)) if m.contains("`_/cowsay`")
        ));
    }

    #[test]
    fn recorded_answers_of_the_real_registry_parse() {
        let replay = |file: &str, name: &str| {
            let bytes = std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../tests/fixtures/wasmer-registry")
                    .join(file),
            )
            .unwrap();
            parse_answer(&bytes, &name.parse().unwrap(), false)
                .unwrap()
                .unwrap()
        };
        let releases = replay("wasmer-pack-cli.response.json", "wasmer/wasmer-pack-cli");
        assert_eq!(releases.len(), 8);
        for r in &releases {
            assert_eq!(r.unusable(&WebcVersion::ALL), None, "{}", r.version);
            assert!(r.shared_file().is_some(), "{}", r.version);
        }
        let releases = replay("cowsay-missing-fields.response.json", "cowsay");
        let usable: Vec<String> = releases
            .iter()
            .filter(|r| r.unusable(&WebcVersion::ALL).is_none())
            .map(|r| r.version.to_string())
            .collect();
        assert_eq!(usable, ["0.2.0"]);
        let releases = replay("wasmer-python-archived.response.json", "wasmer/python");
        let archived: Vec<bool> = releases.iter().map(|r| r.archived).collect();
        assert_eq!(archived, [true, false, true]);
    }
}
