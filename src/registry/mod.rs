//! The registry client: one GraphQL query per package (`graphql/get_package.graphql`, compiled by
//! graphql_client against `schema/registry.graphql`) that returns every version with both of its
//! formats, `v2: distribution(version: V2)` and `v3: distribution(version: V3)`.
//!
//! The answer is untrusted. It is turned at once into [`Release`]s; the generated types never
//! leave this module. A node whose URL or hash is null is [`Offer::NotOffered`]; a node that is
//! present but wrong (a bad hash, a URL that is not http(s), a size that is negative, a manifest
//! that does not parse) is [`Offer::Invalid`] with the reason, so that the policy can fall back
//! to the other format. An answer that does not have the schema's shape is an error.
//!
//! The pure part, [`parse_answer`], turns an answer's bytes into [`Release`]s; property tests
//! feed it arbitrary input. Transient failures (unreachable, 5xx, 429) are retried with backoff,
//! honouring `Retry-After`; an answer larger than [`MAX_ANSWER`] is refused.
//!
//! The registry token is sent as a bearer token to the registry's own URL and nowhere else (the
//! downloader sends it to blob URLs on the same origin only); it is a [`http::Secret`], and is
//! scrubbed from any text the registry sends back into an error.

pub mod publish;

use graphql_client::GraphQLQuery;

use crate::http::{self, HttpOptions};
use crate::package::{
    Distribution, InputError, Offer, PackageName, Release, Sha256Digest, WebcVersion,
    dependencies_of, parse_version,
};

/// The scalar `JSONString`: the real registry sends a string holding JSON; some servers send the
/// JSON itself. Both are accepted.
type JSONString = serde_json::Value;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema/registry.graphql",
    query_path = "graphql/get_package.graphql",
    response_derives = "Debug"
)]
struct GetPackage;

/// The largest GraphQL answer read; a registry that sends more is refused.
pub const MAX_ANSWER: usize = 64 << 20;

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

/// One line of at most [`MAX_MESSAGE`] characters.
fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
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
/// [`Offer::Invalid`]; an answer without the schema's shape or with `errors` is an error.
pub fn parse_answer(
    bytes: &[u8],
    name: &PackageName,
    allow_insecure_http: bool,
) -> Result<Option<Vec<Release>>, AnswerError> {
    let answer: graphql_client::Response<get_package::ResponseData> = serde_json::from_slice(bytes)
        .map_err(|e| AnswerError::Malformed(one_line(&e.to_string())))?;
    if let Some(errors) = answer.errors.filter(|e| !e.is_empty()) {
        let messages = errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AnswerError::GraphQl(one_line(&messages)));
    }
    let data = answer
        .data
        .ok_or_else(|| AnswerError::Malformed("no `data` and no `errors`".into()))?;
    Ok(data
        .get_package
        .map(|p| convert_package(name, p, allow_insecure_http)))
}

/// A client for one registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    token: Option<http::Secret>,
    options: HttpOptions,
    retries: u32,
    backoff: std::time::Duration,
}

impl RegistryClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: &str,
        token: Option<String>,
        options: HttpOptions,
    ) -> Result<Self, RegistryError> {
        let endpoint = http::check_url(endpoint, options.allow_insecure_http)?;
        Ok(RegistryClient {
            http,
            endpoint,
            token: token.filter(|t| !t.is_empty()).map(http::Secret::new),
            options,
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
        let url = http::redact(self.endpoint.as_str());
        let mut attempt = 0;
        let bytes = loop {
            match self.ask(name, &url).await {
                Ok(bytes) => break bytes,
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
        };
        parse_answer(&bytes, name, self.options.allow_insecure_http).map_err(|e| {
            let e = e.at(url);
            match (&self.token, e) {
                (Some(token), RegistryError::GraphQl { url, messages }) => RegistryError::GraphQl {
                    url,
                    messages: token.scrub(&messages),
                },
                (Some(token), RegistryError::Malformed { url, reason }) => {
                    RegistryError::Malformed {
                        url,
                        reason: token.scrub(&reason),
                    }
                }
                (_, e) => e,
            }
        })
    }

    /// One request: the answer's body, at most [`MAX_ANSWER`] bytes.
    async fn ask(&self, name: &PackageName, url: &str) -> Result<Vec<u8>, RegistryError> {
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            url: url.to_string(),
            reason: http::describe(&e),
        };
        let body = GetPackage::build_query(get_package::Variables {
            name: name.to_string(),
        });
        let mut request = self.http.post(self.endpoint.clone()).json(&body);
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
    package: get_package::GetPackageGetPackage,
    allow_insecure_http: bool,
) -> Vec<Release> {
    let mut releases = Vec::new();
    for v in package.versions.into_iter().flatten().flatten() {
        let Ok(version) = parse_version(&v.version) else {
            tracing::warn!(
                "{name}: the registry lists version `{}`, which is not semver; ignored",
                v.version
            );
            continue;
        };
        releases.push(Release {
            name: name.clone(),
            version,
            archived: v.is_archived,
            v2: convert_node(WebcVersion::V2, v.v2, allow_insecure_http),
            v3: convert_node(WebcVersion::V3, v.v3, allow_insecure_http),
        });
    }
    releases
}

fn convert_node(webc: WebcVersion, node: get_package::Dist, allow_insecure_http: bool) -> Offer {
    let (Some(url), Some(hash)) = (node.pirita_download_url, node.pirita_sha256_hash) else {
        return Offer::NotOffered;
    };
    let claimed = match node.webc_version {
        None => None,
        Some(get_package::WebcVersion::V2) => Some(WebcVersion::V2),
        Some(get_package::WebcVersion::V3) => Some(WebcVersion::V3),
        Some(get_package::WebcVersion::Other(other)) => {
            return Offer::Invalid(format!("unknown webcVersion `{other}`"));
        }
    };
    let node = Node {
        url,
        hash,
        size: node.pirita_size,
        claimed,
        manifest: node.webc_manifest,
    };
    match node.into_distribution(webc, allow_insecure_http) {
        Ok(d) => Offer::Offered(d),
        Err(reason) => Offer::Invalid(reason),
    }
}

/// The fields of one node, before they are checked.
struct Node {
    url: String,
    hash: String,
    size: Option<i64>,
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
        let size = match self.size {
            Some(n) if n >= 0 => n as u64,
            Some(n) => return Err(format!("size {n} is negative")),
            None => return Err("the node gives no size".into()),
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

    fn parse(answer: serde_json::Value) -> Result<Option<Vec<Release>>, AnswerError> {
        let name: PackageName = "test/a".parse().unwrap();
        parse_answer(&serde_json::to_vec(&answer).unwrap(), &name, false)
    }

    #[test]
    fn answers_become_releases_with_checked_nodes() {
        let good = "ab".repeat(32);
        let none = serde_json::json!({"piritaDownloadUrl": null, "piritaSha256Hash": null,
            "piritaSize": null, "webcVersion": null, "webcManifest": null});
        let releases = parse(
            serde_json::json!({"data": {"getPackage": {"name": "test/a", "versions": [
                {"version": "1.0.0", "isArchived": false,
                 "v2": node("http://127.0.0.1:1/a.webc", &good), "v3": none},
                {"version": "1.1.0", "isArchived": true,
                 "v2": node("file:///etc/passwd", &good), "v3": node("https://x.io/b", "zz")},
                {"version": "not semver", "isArchived": false, "v2": none, "v3": none},
            ]}}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            releases.len(),
            2,
            "the version that is not semver is skipped"
        );
        let d = releases[0].v2.distribution().unwrap();
        assert_eq!(d.size, 10);
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
            parse(serde_json::json!({"data": {"getPackage": {"name": "test/a", "versions": "x"}}})),
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
}
