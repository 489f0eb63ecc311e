//! The HTTP client that the registry client and the downloader share: one `reqwest` client with
//! the user agent, timeouts, proxy variables and the system's CA roots, and the one place where
//! URLs are redacted before they reach a message. Every request webcpm makes (GraphQL,
//! downloads, `run URL`, the rollout policy, outcome reports, and whatever comes later) goes
//! through a [`Client`] built by [`client`], which checks each URL ([`check_url`]) before
//! anything is sent: plain http to a host that is not loopback is refused unless
//! `download.allow_insecure_http` (`--allow-insecure-http`) allows it. (OCI registries speak
//! plain http to loopback only, and https to every other host; see [`crate::oci`].)
//!
//! Networks as companies have them: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (or
//! their lower-case forms) are honoured for every request, as reqwest reads them: https URLs go
//! through `HTTPS_PROXY` with `CONNECT`, so the proxy sees host names, never the bytes or the
//! token; `NO_PROXY` lists hosts, domains (`.example.com`), IP addresses or networks that bypass
//! it, and `*` bypasses it for all. Loopback is not exempt unless `NO_PROXY` says so
//! (`NO_PROXY=localhost,127.0.0.1`), as with curl. Certificates are checked against the operating
//! system's trust store (rustls-platform-verifier), so a company CA installed there is trusted;
//! `registry.ca_file` (`WEBCPM_CA_FILE`) adds the CAs of a PEM file, for a TLS-inspecting proxy
//! (wasmer issue #5140, `UnknownIssuer`) or a private registry, without replacing the system's.
//!
//! Credentials never appear in output: [`redact`] drops a URL's user and password and the values
//! of its query parameters, which is where signed blob URLs carry their tokens; a registry token
//! is a [`Secret`], which prints as `***`, and is sent only to its registry's origin
//! ([`same_origin`]). Redirects are held to the same rules as the URLs a registry hands out
//! ([`check_url`]), and a redirect to another origin drops the `Authorization` header (reqwest).
//!
//! Retries share one schedule ([`retry_delay`]): exponential backoff with jitter, or the server's
//! `Retry-After` (seconds, capped at [`MAX_RETRY_AFTER`]) when it is longer.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How webcpm talks HTTP.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long a read may stall before the request counts as failed.
    pub read_timeout: Duration,
    /// Allow plain `http://` to hosts other than loopback.
    pub allow_insecure_http: bool,
    /// A PEM file of CA certificates trusted on top of the system's.
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            allow_insecure_http: false,
            ca_file: None,
        }
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot read the CA file {path} (registry.ca_file): {source}; check the path")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the CA file {path} (registry.ca_file) holds no usable PEM certificate: {reason}; give a file of `-----BEGIN CERTIFICATE-----` blocks"
    )]
    CaPem { path: PathBuf, reason: String },
    #[error("cannot set up HTTP: {0}")]
    Client(#[source] reqwest::Error),
}

/// The HTTP client: every request it sends is to a URL that [`check_url`] accepted.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
    allow_insecure_http: bool,
}

impl Client {
    /// Checks a URL as every request of this client is checked.
    pub fn check(&self, url: &str) -> Result<reqwest::Url, UrlError> {
        check_url(url, self.allow_insecure_http)
    }

    /// Whether plain http to hosts other than loopback is allowed.
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// A GET of `url`, once [`check_url`] accepts it.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlError> {
        self.request(reqwest::Method::GET, url)
    }

    /// A PUT to `url`, once [`check_url`] accepts it.
    pub fn put(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlError> {
        self.request(reqwest::Method::PUT, url)
    }

    /// A POST to `url`, once [`check_url`] accepts it.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlError> {
        self.request(reqwest::Method::POST, url)
    }

    /// Every request carries an `x-request-id` of its own, logged at debug level, which the
    /// registry keeps in its access log: one id finds a request on both sides.
    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, UrlError> {
        let url = self.check(url)?;
        let id = request_id();
        tracing::debug!("request id {id}: {method} {}", redacted(&url));
        Ok(self
            .inner
            .request(method, url)
            .header(REQUEST_ID, id.as_str()))
    }
}

/// The header that names a request on both sides.
pub const REQUEST_ID: &str = "x-request-id";

/// `{process}-{n}`: 16 hex digits drawn once per process, then a counter.
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let process = PROCESS.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    });
    format!("{process:016x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The URL without its query (signed download URLs carry their signature there).
fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// Builds the shared client: proxies from the environment (reqwest reads `HTTP_PROXY`,
/// `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` itself), the system's trust store plus
/// `ca_file`. A redirect is followed only to a URL that [`check_url`] accepts, at most 10 times.
pub fn client(options: &HttpOptions) -> Result<Client, HttpError> {
    let allow_insecure_http = options.allow_insecure_http;
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("more than 10 redirects");
        }
        match check_url(attempt.url().as_str(), allow_insecure_http) {
            Ok(_) => attempt.follow(),
            Err(e) => attempt.error(format!("refusing to follow a redirect: {e}")),
        }
    });
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("webcpm/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .redirect(redirects);
    if let Some(path) = &options.ca_file {
        builder = builder.tls_certs_merge(ca_certificates(path)?);
    }
    Ok(Client {
        inner: builder.build().map_err(HttpError::Client)?,
        allow_insecure_http,
    })
}

/// The certificates of a PEM file; at least one.
fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let pem = std::fs::read(path).map_err(|source| HttpError::CaFile {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| HttpError::CaPem {
        path: path.to_path_buf(),
        reason,
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

/// A credential: its `Debug` and `Display` print `***`, so that it cannot reach a message by
/// accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The longest `Retry-After` that is honoured; a server asking for more gets this much.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A `Retry-After` header in seconds (HTTP dates are not honoured), capped at
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// How long to wait before retry number `attempt` (1 for the first): `base` doubled each time,
/// plus up to 50% of jitter, or the server's `Retry-After` when that is longer.
pub fn retry_delay(base: Duration, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let backoff = exp + exp.mul_f64(f64::from(nanos % 500) / 1000.0);
    backoff.max(retry_after.unwrap_or_default())
}

/// Why a URL from a registry is refused before anything is sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("`{0}` uses the scheme `{1}`; only http and https are allowed")]
    Scheme(String, String),
    #[error(
        "`{0}` is plain http to a host that is not loopback, refused before connecting; use https, or pass --allow-insecure-http (or set WEBCPM_ALLOW_INSECURE_HTTP=1)"
    )]
    Insecure(String),
}

/// Checks a URL that came from outside: http or https only, plain http only to loopback unless
/// allowed.
pub fn check_url(text: &str, allow_insecure_http: bool) -> Result<reqwest::Url, UrlError> {
    let url = reqwest::Url::parse(text).map_err(|_| UrlError::Invalid(redact(text)))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(UrlError::Insecure(redact(text))),
        other => Err(UrlError::Scheme(redact(text), other.to_string())),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether two URLs name the same origin (scheme, host, port): a token meant for one is sent to
/// the other only then.
pub fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL fit for a message: no user, no password, no query values.
pub fn redact(text: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(text) else {
        // Not a URL: cut anything that looks like a query string.
        return text.split('?').next().unwrap_or_default().to_string();
    };
    if !url.username().is_empty() {
        let _ = url.set_username("***");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        for k in keys {
            pairs.append_pair(&k, "***");
        }
    }
    url.to_string()
}

/// A transport error in words, with its causes (reqwest's own Display hides them).
pub fn describe(error: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else if error.is_body() || error.is_decode() {
        "the connection broke off".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        text.push_str(
            " (if a proxy inspects TLS, or the server has a private CA, add that CA with registry.ca_file or WEBCPM_CA_FILE)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_credentials() {
        let r = redact("https://user:secret@example.com/a.webc?sig=abc&x=1");
        assert!(!r.contains("secret") && !r.contains("abc") && !r.contains("user"));
        assert!(r.starts_with("https://"));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("tok-123");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.scrub("a tok-123 b"), "a *** b");
        assert_eq!(s.expose(), "tok-123");
    }

    #[test]
    fn retry_delays_grow_and_honour_retry_after() {
        let base = Duration::from_millis(100);
        for attempt in 1..5 {
            let d = retry_delay(base, attempt, None);
            let exp = base * (1 << (attempt - 1));
            assert!(d >= exp && d <= exp.mul_f64(1.5), "{attempt}: {d:?}");
        }
        let long = Some(Duration::from_secs(2));
        assert_eq!(retry_delay(base, 1, long), Duration::from_secs(2));
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(reqwest::header::RETRY_AFTER, "99999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(same_origin(
            &u("http://127.0.0.1:8080/graphql"),
            &u("http://127.0.0.1:8080/blobs/x.webc")
        ));
        assert!(same_origin(
            &u("https://a.io/graphql"),
            &u("https://a.io:443/b")
        ));
        for other in [
            "http://localhost:8080/b",
            "http://127.0.0.1:8081/b",
            "https://127.0.0.1:8080/b",
        ] {
            assert!(
                !same_origin(&u("http://127.0.0.1:8080/graphql"), &u(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn the_client_refuses_plain_http_to_other_hosts_before_sending() {
        let strict = client(&HttpOptions::default()).unwrap();
        for url in [
            "http://192.0.2.1/x.webc",
            "http://[2001:db8::1]/x",
            "http://127.0.0.1.example/x",
        ] {
            let err = strict.get(url).unwrap_err();
            assert!(matches!(err, UrlError::Insecure(_)), "{url}: {err}");
            assert!(err.to_string().contains("--allow-insecure-http"), "{err}");
            assert!(strict.post(url).is_err(), "{url}");
        }
        for url in [
            "http://127.0.0.1:1/x",
            "http://127.8.9.10/x",
            "http://[::1]:8080/x",
            "http://LOCALHOST/x",
            "https://192.0.2.1/x",
        ] {
            assert!(strict.get(url).is_ok(), "{url}");
        }
        let allowed = client(&HttpOptions {
            allow_insecure_http: true,
            ..HttpOptions::default()
        })
        .unwrap();
        assert!(allowed.get("http://192.0.2.1/x.webc").is_ok());
        assert!(allowed.get("file:///etc/passwd").is_err());
    }

    #[test]
    fn only_http_and_https() {
        assert!(check_url("http://127.0.0.1:1/x", false).is_ok());
        assert!(check_url("http://localhost/x", false).is_ok());
        assert!(matches!(
            check_url("http://example.com/x", false),
            Err(UrlError::Insecure(_))
        ));
        assert!(check_url("http://example.com/x", true).is_ok());
        assert!(matches!(
            check_url("file:///etc/passwd", true),
            Err(UrlError::Scheme(..))
        ));
        assert!(matches!(
            check_url("not a url", true),
            Err(UrlError::Invalid(_))
        ));
    }
}
