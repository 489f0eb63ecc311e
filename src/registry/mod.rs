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
//! The registry token is sent as a bearer token to the registry's own URL and nowhere else.

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

/// Why the registry could not be asked, or answered with something unusable.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the registry at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the registry at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
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

/// A client for one registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    token: Option<String>,
    options: HttpOptions,
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
            token,
            options,
        })
    }

    pub fn endpoint(&self) -> &reqwest::Url {
        &self.endpoint
    }

    /// Every version of `name` with both formats, or `None` when the registry does not know it.
    pub async fn package(&self, name: &PackageName) -> Result<Option<Vec<Release>>, RegistryError> {
        let url = http::redact(self.endpoint.as_str());
        let body = GetPackage::build_query(get_package::Variables {
            name: name.to_string(),
        });
        let mut request = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                url: url.clone(),
                reason: http::describe(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RegistryError::Unreachable {
                url: url.clone(),
                reason: http::describe(&e),
            })?;
        let answer: graphql_client::Response<get_package::ResponseData> =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Malformed {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if let Some(errors) = answer.errors.filter(|e| !e.is_empty()) {
            let messages = errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(RegistryError::GraphQl { url, messages });
        }
        let data = answer.data.ok_or_else(|| RegistryError::Malformed {
            url: url.clone(),
            reason: "no `data` and no `errors`".into(),
        })?;
        Ok(data
            .get_package
            .map(|p| convert_package(name, p, self.options.allow_insecure_http)))
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
