//! Downloads: one distribution at a time, streamed into the store's `tmp/` while its SHA-256 and
//! length are computed, and handed to the store only once it is proven to be what the registry
//! promised.
//!
//! A download is accepted only when, in this order: the URL is http(s) (plain http only to
//! loopback unless allowed); the declared size is within the limit; the body is no longer than
//! declared; its length and SHA-256 equal the node's; its magic bytes are WebC of the format the
//! node was asked for; and the `webc` crate parses and validates it (including the volume path
//! and command checks of [`crate::container`]). Anything else is a [`FetchError`] and the
//! temporary file is removed.
//!
//! Transient failures (connection errors, resets, 5xx, 429, timeouts, a body that stalls longer
//! than the read timeout) are retried with exponential backoff and jitter, or after the server's
//! `Retry-After` when it is longer ([`http::retry_delay`]). A download that broke off resumes
//! where it stopped: when the first answer carried a strong `ETag` and `Accept-Ranges: bytes`,
//! the next request asks `Range: bytes=N-` with `If-Range: <ETag>`; a `206` whose
//! `Content-Range` starts at `N` continues the same file and the same running SHA-256, and any
//! other answer starts over (an empty file, a new hash). The bytes are hashed once, as they
//! arrive; the file is never read back to hash it. Integrity failures are not retried against
//! the same URL: the installer falls back to the other format per the policy.
//!
//! The registry's token goes with a download only when the blob URL has the registry's origin
//! ([`http::same_origin`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::Digest as _;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::container::{self, Format};
use crate::http;
use crate::package::{Distribution, Sha256Digest, WebcVersion};
use crate::store::{BlobRow, Store, StoreError};

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The largest download accepted, in bytes.
    pub max_size: u64,
    /// How many times a transient failure is tried again.
    pub retries: u32,
    /// The first backoff; it doubles each time.
    pub backoff: Duration,
    pub allow_insecure_http: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_size: 2 << 30,
            retries: 3,
            backoff: Duration::from_millis(200),
            allow_insecure_http: false,
        }
    }
}

/// Why a download was refused. Every variant but [`FetchError::Store`] is a reason to fall back
/// to the other format.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {source}")]
    Url {
        url: String,
        #[source]
        source: http::UrlError,
    },
    #[error(
        "{url} declares {size} bytes, more than the limit of {limit} bytes (download.max_size)"
    )]
    TooLarge { url: String, size: u64, limit: u64 },
    #[error("downloading {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("downloading {url} failed: HTTP {status}")]
    Status {
        url: String,
        status: u16,
        /// The server's `Retry-After`, capped.
        retry_after: Option<Duration>,
    },
    #[error("{url} sent more than the {expected} bytes the registry declared")]
    TooLong { url: String, expected: u64 },
    #[error("{url} sent {actual} bytes, but the registry declared {expected}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("SHA-256 mismatch for {url}: expected {expected}, got {actual}")]
    HashMismatch {
        url: String,
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error("{url} was offered as WebC {expected} but its bytes are WebC {actual}")]
    WrongFormat {
        url: String,
        expected: WebcVersion,
        actual: String,
    },
    #[error("{url}: {source}")]
    Container {
        url: String,
        #[source]
        source: container::ContainerError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FetchError {
    /// A failure of the network or the server, worth trying again.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Transport { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Whether the policy may fall back to the other format after this failure.
    pub fn allows_fallback(&self) -> bool {
        !matches!(self, FetchError::Store(_))
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Reports download progress; the CLI draws bars, tests and `--json` draw nothing.
pub trait Progress: Send + Sync {
    fn start(&self, label: &str, total: u64) -> Box<dyn ProgressBar>;
}

/// One download's progress.
pub trait ProgressBar: Send {
    fn advance(&mut self, bytes: u64);
    fn restart(&mut self);
    fn finish(&mut self);
}

/// Shows nothing.
pub struct Silent;

struct NoBar;

impl ProgressBar for NoBar {
    fn advance(&mut self, _: u64) {}
    fn restart(&mut self) {}
    fn finish(&mut self) {}
}

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) -> Box<dyn ProgressBar> {
        Box::new(NoBar)
    }
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub blob: BlobRow,
    /// Whether the blob was already in the store.
    pub cached: bool,
}

/// Downloads distributions into a store.
#[derive(Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    options: FetchOptions,
    progress: Arc<dyn Progress>,
    /// The registry's endpoint and token: the token goes to blob URLs of that origin only.
    credentials: Option<(reqwest::Url, http::Secret)>,
}

/// What one download has written so far: the running hash covers exactly the file's bytes.
struct Partial {
    file: tokio::fs::File,
    hasher: sha2::Sha256,
    received: u64,
    /// The strong `ETag` of a server that accepts byte ranges: a resume may ask for the rest.
    etag: Option<String>,
}

impl Partial {
    /// Empties the file and the hash, to start over.
    async fn restart(
        &mut self,
        path: &std::path::Path,
        bar: &mut dyn ProgressBar,
    ) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        self.file.flush().await.map_err(io)?;
        self.file.set_len(0).await.map_err(io)?;
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(io)?;
        self.hasher = sha2::Sha256::new();
        self.received = 0;
        self.etag = None;
        bar.restart();
        Ok(())
    }
}

/// The strong `ETag` of an answer that says it accepts byte ranges.
fn resume_validator(headers: &HeaderMap) -> Option<String> {
    let ranges = headers
        .get(header::ACCEPT_RANGES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|u| u.trim().eq_ignore_ascii_case("bytes")));
    let etag = headers.get(header::ETAG)?.to_str().ok()?.trim();
    (ranges && etag.starts_with('"') && etag.len() >= 2 && etag.ends_with('"'))
        .then(|| etag.to_string())
}

/// Whether a `Content-Range` answers `bytes=start-` of a file of `size` bytes.
fn range_continues(headers: &HeaderMap, start: u64, size: u64) -> bool {
    let Some(text) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(spec) = text.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((range, total)) = spec.split_once('/') else {
        return false;
    };
    let Some((first, last)) = range.split_once('-') else {
        return false;
    };
    let total_ok = total.trim() == "*" || total.trim().parse::<u64>().ok() == Some(size);
    first.trim().parse::<u64>().ok() == Some(start)
        && last.trim().parse::<u64>().ok() == Some(size.saturating_sub(1))
        && total_ok
}

impl Fetcher {
    pub fn new(http: reqwest::Client, options: FetchOptions, progress: Arc<dyn Progress>) -> Self {
        Fetcher {
            http,
            options,
            progress,
            credentials: None,
        }
    }

    /// Sends `registry`'s token with downloads from the registry's own origin (and nowhere
    /// else). `None`, or a registry without a token: no credentials.
    pub fn with_registry(mut self, registry: Option<&crate::registry::RegistryClient>) -> Self {
        self.credentials = registry
            .and_then(|r| r.credentials())
            .map(|(url, token)| (url.clone(), token.clone()));
        self
    }

    /// The token for `url`, if it is on the registry's origin.
    fn token_for(&self, url: &reqwest::Url) -> Option<&http::Secret> {
        self.credentials
            .as_ref()
            .filter(|(origin, _)| http::same_origin(origin, url))
            .map(|(_, token)| token)
    }

    /// Makes `dist` present in `store`, downloading it unless a verified copy is there.
    pub async fn fetch(
        &self,
        store: &Store,
        dist: &Distribution,
        label: &str,
    ) -> Result<Fetched, FetchError> {
        let shown = http::redact(&dist.url);
        if let Some(blob) = store.blob(&dist.sha256)? {
            if blob.webc != dist.webc {
                return Err(FetchError::WrongFormat {
                    url: shown,
                    expected: dist.webc,
                    actual: blob.webc.to_string(),
                });
            }
            return Ok(Fetched { blob, cached: true });
        }
        let url =
            http::check_url(&dist.url, self.options.allow_insecure_http).map_err(|source| {
                FetchError::Url {
                    url: shown.clone(),
                    source,
                }
            })?;
        if dist.size > self.options.max_size {
            return Err(FetchError::TooLarge {
                url: shown,
                size: dist.size,
                limit: self.options.max_size,
            });
        }
        let temp = store.temp_file()?;
        let mut bar = self.progress.start(label, dist.size);
        let mut partial = Partial {
            file: tokio::fs::File::from_std(temp.handle()?),
            hasher: sha2::Sha256::new(),
            received: 0,
            etag: None,
        };
        let mut attempt = 0;
        loop {
            let result = self
                .attempt(&url, &shown, dist, &mut partial, temp.path(), bar.as_mut())
                .await;
            // Every write handed to the file has landed before anything else happens to it.
            partial
                .file
                .flush()
                .await
                .map_err(|source| StoreError::Io {
                    path: temp.path().to_path_buf(),
                    source,
                })?;
            match result {
                Ok(()) => break,
                Err(e) if e.is_transient() && attempt < self.options.retries => {
                    attempt += 1;
                    let wait = http::retry_delay(self.options.backoff, attempt, e.retry_after());
                    let how = if partial.received > 0 && partial.etag.is_some() {
                        format!("resuming at byte {}", partial.received)
                    } else {
                        "starting over".to_string()
                    };
                    tracing::warn!(
                        "{e}; {how} in {} ms (retry {attempt} of {})",
                        wait.as_millis(),
                        self.options.retries
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
        bar.finish();
        let digest = Sha256Digest(partial.hasher.finalize().into());
        drop(partial.file);
        if digest != dist.sha256 {
            return Err(FetchError::HashMismatch {
                url: shown,
                expected: dist.sha256,
                actual: digest,
            });
        }
        // Parse and check the whole container off the async runtime: it may be large.
        let path = temp.path().to_path_buf();
        let expected = dist.webc;
        let checked = tokio::task::spawn_blocking(move || -> Result<Format, CheckFailure> {
            let bytes = container::map_file(&path).map_err(CheckFailure::Io)?;
            let format = container::detect(&bytes).map_err(CheckFailure::Container)?;
            if format != Format::Current(expected) {
                return Err(CheckFailure::Format(format));
            }
            container::open(bytes).map_err(CheckFailure::Container)?;
            Ok(format)
        })
        .await
        .map_err(|e| FetchError::Transport {
            url: shown.clone(),
            reason: format!("checking the download failed: {e}"),
        })?;
        match checked {
            Ok(_) => {}
            Err(CheckFailure::Io(source)) => {
                return Err(StoreError::Io {
                    path: temp.path().to_path_buf(),
                    source,
                }
                .into());
            }
            Err(CheckFailure::Format(actual)) => {
                return Err(FetchError::WrongFormat {
                    url: shown,
                    expected,
                    actual: actual.to_string(),
                });
            }
            Err(CheckFailure::Container(source)) => {
                return Err(FetchError::Container { url: shown, source });
            }
        }
        store.commit_blob(temp, &digest, dist.size, dist.webc)?;
        Ok(Fetched {
            blob: BlobRow {
                sha256: digest,
                size: dist.size,
                webc: dist.webc,
            },
            cached: false,
        })
    }

    /// One request: resumes `partial` when it can, else starts over, and streams the body
    /// into it. The caller flushes the file whatever the outcome.
    async fn attempt(
        &self,
        url: &reqwest::Url,
        shown: &str,
        dist: &Distribution,
        partial: &mut Partial,
        path: &std::path::Path,
        bar: &mut dyn ProgressBar,
    ) -> Result<(), FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: shown.to_string(),
            reason: http::describe(&e),
        };
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        if partial.received > 0 && partial.etag.is_none() {
            partial.restart(path, bar).await?;
        }
        let mut request = self.http.get(url.clone());
        if let Some(token) = self.token_for(url) {
            request = request.bearer_auth(token.expose());
        }
        let resuming = partial.etag.clone().filter(|_| partial.received > 0);
        if let Some(etag) = &resuming {
            request = request
                .header(header::RANGE, format!("bytes={}-", partial.received))
                .header(header::IF_RANGE, etag.as_str());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT
                if resuming.is_some()
                    && range_continues(response.headers(), partial.received, dist.size) =>
            {
                tracing::info!("{shown}: resuming at byte {}", partial.received);
            }
            StatusCode::OK => {
                if partial.received > 0 {
                    tracing::info!("{shown}: the server sent the whole file; starting over");
                    partial.restart(path, bar).await?;
                }
                partial.etag = resume_validator(response.headers());
            }
            _ => {
                let error = FetchError::Status {
                    url: shown.to_string(),
                    status: status.as_u16(),
                    retry_after: http::retry_after(response.headers()),
                };
                if resuming.is_none() || (error.is_transient() && status.as_u16() != 206) {
                    return Err(error);
                }
                // A range the server would not or could not honour: the next try starts over.
                partial.restart(path, bar).await?;
                let reason = if status == StatusCode::PARTIAL_CONTENT {
                    "the server answered another range than the one asked for".to_string()
                } else {
                    format!("the server would not resume the download (HTTP {status})")
                };
                return Err(FetchError::Transport {
                    url: shown.to_string(),
                    reason,
                });
            }
        }
        let remaining = dist.size - partial.received;
        if response.content_length().is_some_and(|len| len > remaining) {
            return Err(FetchError::TooLong {
                url: shown.to_string(),
                expected: dist.size,
            });
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(transport)?;
            if partial.received + chunk.len() as u64 > dist.size {
                return Err(FetchError::TooLong {
                    url: shown.to_string(),
                    expected: dist.size,
                });
            }
            partial.file.write_all(&chunk).await.map_err(io)?;
            partial.hasher.update(&chunk);
            partial.received += chunk.len() as u64;
            bar.advance(chunk.len() as u64);
        }
        if partial.received != dist.size {
            return Err(FetchError::SizeMismatch {
                url: shown.to_string(),
                expected: dist.size,
                actual: partial.received,
            });
        }
        Ok(())
    }
}

enum CheckFailure {
    Io(std::io::Error),
    Format(Format),
    Container(container::ContainerError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn resume_needs_a_strong_etag_and_byte_ranges() {
        let ok = headers(&[("etag", "\"abc\""), ("accept-ranges", "bytes")]);
        assert_eq!(resume_validator(&ok).as_deref(), Some("\"abc\""));
        for bad in [
            headers(&[("etag", "\"abc\"")]),
            headers(&[("etag", "W/\"abc\""), ("accept-ranges", "bytes")]),
            headers(&[("etag", "\"abc\""), ("accept-ranges", "none")]),
            headers(&[("accept-ranges", "bytes")]),
        ] {
            assert_eq!(resume_validator(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_partial_answer_must_continue_where_the_file_stops() {
        let h = |v: &str| headers(&[("content-range", v)]);
        assert!(range_continues(&h("bytes 100-999/1000"), 100, 1000));
        assert!(range_continues(&h("bytes 100-999/*"), 100, 1000));
        for bad in [
            "bytes 0-999/1000",
            "bytes 100-998/1000",
            "bytes 100-999/2000",
            "bytes */1000",
            "items 100-999/1000",
            "",
        ] {
            assert!(!range_continues(&h(bad), 100, 1000), "{bad}");
        }
        assert!(!range_continues(&HeaderMap::new(), 100, 1000));
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |status| FetchError::Status {
            url: String::new(),
            status,
            retry_after: None,
        };
        assert!(status(500).is_transient() && status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient() && !status(403).is_transient());
        let mismatch = FetchError::HashMismatch {
            url: String::new(),
            expected: Sha256Digest::of(b"a"),
            actual: Sha256Digest::of(b"b"),
        };
        assert!(!mismatch.is_transient() && mismatch.allows_fallback());
    }
}
