//! The HTTP client that the registry client and the downloader share: one `reqwest` client with
//! the user agent, timeouts, proxy variables and the system's CA roots, and the one place where
//! URLs are redacted before they reach a message.
//!
//! Credentials never appear in output: [`redact`] drops a URL's user and password and the values
//! of its query parameters, which is where signed blob URLs carry their tokens.

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
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            allow_insecure_http: false,
        }
    }
}

/// Builds the shared client. reqwest reads `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` itself.
pub fn client(options: &HttpOptions) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("webcpm/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .build()
}

/// Why a URL from a registry is refused before anything is sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("`{0}` uses the scheme `{1}`; only http and https are allowed")]
    Scheme(String, String),
    #[error(
        "`{0}` is plain http to a host that is not loopback; use https, or pass --allow-insecure-http"
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
