//! Downloads: one distribution at a time, streamed into the store's `tmp/` while its SHA-256 and
//! length are computed, and handed to the store only once it is proven to be what the registry
//! promised.
//!
//! A download is accepted only when, in this order: the URL is http(s) (plain http only to
//! loopback unless allowed); the declared size is within the limit; the body is no longer than
//! declared; its length and SHA-256 equal the node's; its magic bytes are WebC of the format the
//! node was asked for; and the `webc` crate parses and validates it (including the volume path
//! and command checks of [`crate::container`]; the atoms' signatures are checked against digests
//! computed as the bytes were written, [`container::AtomStream`], so that nothing is hashed
//! twice). Anything else is a [`FetchError`] and the
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
//!
//! Nodes of the real registry are often incomplete. Without a size (`piritaSize: null`), the
//! download is bounded by `download.max_size` and by the `Content-Length` of the answer when the
//! server sends one, and the size learned is the size stored; the SHA-256 is the proof.
//! Download URLs are often signed CDN URLs that expire (`piritaExpiresInSeconds`): redirects are
//! followed (the token never goes to another origin), and an answer `403` or `410`, even in the
//! middle of a resumed download, makes the fetcher ask the caller's [`Renew`] for a fresh URL
//! once, then go on where it stopped.
//!
//! One file behind both nodes: for versions published before WebC v3 existed, the real
//! registry answers the v3 node with the v2 file. When the caller says that the bytes may be of
//! another format ([`Request::other`], given when the other node names the same file), bytes
//! that prove to be that format are checked and kept as that format, and the fetch fails with
//! [`FetchError::ServesOther`]; the installer then falls back, and finds the file in the store.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::Digest as _;

use crate::container::{self, Format};
use crate::http;
use crate::package::{Distribution, Sha256Digest, WebcVersion};
use crate::store::{BlobRow, Store, StoreError, TempFile};
use crate::write_behind::{PendingAtoms, WriteBehind};

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The largest download accepted, in bytes.
    pub max_size: u64,
    /// How many times a transient failure is tried again.
    pub retries: u32,
    /// The first backoff; it doubles each time.
    pub backoff: Duration,
    /// How many times its size a package may unpack to (`store.unpack_ratio`).
    pub unpack_ratio: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_size: 2 << 30,
            retries: 3,
            backoff: Duration::from_millis(200),
            unpack_ratio: container::UnpackLimits::DEFAULT_RATIO,
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
    #[error(
        "{url} sent more than the limit of {limit} bytes (download.max_size), and the registry gave no size"
    )]
    OverLimit { url: String, limit: u64 },
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
    /// The bytes are the other format and are kept as such (see [`Request::other`]).
    #[error(
        "the {expected} node serves WebC {actual}: {url} was offered as WebC {expected} but its bytes are WebC {actual}, the file of the {actual} node"
    )]
    ServesOther {
        url: String,
        expected: WebcVersion,
        actual: WebcVersion,
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

    /// An answer that a signed URL gives once it has expired: worth a fresh URL.
    fn may_have_expired(&self) -> bool {
        matches!(
            self,
            FetchError::Status {
                status: 403 | 410,
                ..
            }
        )
    }
}

/// Asks the registry again for a fresh download URL for a distribution whose URL stopped
/// working (a signed URL that expired). Implemented by the installer, which knows the registry:
/// the fetcher does not.
pub trait Renew: Send + Sync {
    /// A fresh URL for the same file (`dist.sha256`), or why there is none.
    fn renew<'a>(
        &'a self,
        dist: &'a Distribution,
    ) -> futures_util::future::BoxFuture<'a, Result<String, String>>;
}

/// One download to make.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub dist: &'a Distribution,
    /// What the progress bar says.
    pub label: &'a str,
    /// Where to get a fresh URL when this one has expired.
    pub renew: Option<&'a dyn Renew>,
    /// The other format, when its node names the same file: bytes that prove to be of that
    /// format are kept as it ([`FetchError::ServesOther`]) instead of thrown away.
    pub other: Option<WebcVersion>,
}

impl<'a> Request<'a> {
    pub fn new(dist: &'a Distribution, label: &'a str) -> Self {
        Request {
            dist,
            label,
            renew: None,
            other: None,
        }
    }
}

/// Reports download progress; the CLI draws bars, tests and `--json` draw nothing.
pub trait Progress: Send + Sync {
    fn start(&self, label: &str, total: u64) -> Box<dyn ProgressBar>;
}

/// One download's progress.
pub trait ProgressBar: Send {
    /// The length, learned from the server when the registry gave no size.
    fn set_total(&mut self, _total: u64) {}
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
    http: http::Client,
    options: FetchOptions,
    progress: Arc<dyn Progress>,
    /// The registry's endpoint and token: the token goes to blob URLs of that origin only.
    credentials: Option<(reqwest::Url, http::Secret)>,
}

/// What one download has written so far: the running hash covers exactly the file's bytes.
struct Partial {
    /// Written by its own thread, with write-back started as it goes.
    file: WriteBehind,
    hasher: sha2::Sha256,
    received: u64,
    /// The strong `ETag` of a server that accepts byte ranges: a resume may ask for the rest.
    etag: Option<String>,
    /// The file's length: the registry's size, else the first whole answer's `Content-Length`.
    total: Option<u64>,
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
        self.file.restart().await.map_err(io)?;
        self.hasher = sha2::Sha256::new();
        self.received = 0;
        self.etag = None;
        self.total = None;
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
    pub fn new(http: http::Client, options: FetchOptions, progress: Arc<dyn Progress>) -> Self {
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
        self.fetch_request(store, Request::new(dist, label)).await
    }

    /// [`Fetcher::fetch`], with a way to renew an expired URL and the format the bytes may
    /// turn out to be.
    pub async fn fetch_request(
        &self,
        store: &Store,
        request: Request<'_>,
    ) -> Result<Fetched, FetchError> {
        let dist = request.dist;
        let shown = http::redact(&dist.url);
        if let Some(fetched) = already_stored(store, &request, &shown)? {
            return Ok(fetched);
        }
        let url = self.check_url(&dist.url)?;
        if let Some(size) = dist.size.filter(|&size| size > self.options.max_size) {
            return Err(FetchError::TooLarge {
                url: shown,
                size,
                limit: self.options.max_size,
            });
        }
        let temp = store.temp_file()?;
        let mut bar = self.progress.start(request.label, dist.size.unwrap_or(0));
        let mut partial = Partial {
            file: WriteBehind::new(temp.handle()?).map_err(|source| StoreError::Io {
                path: temp.path().to_path_buf(),
                source,
            })?,
            hasher: sha2::Sha256::new(),
            received: 0,
            etag: None,
            total: dist.size,
        };
        self.download(
            url,
            &shown,
            &request,
            &mut partial,
            temp.path(),
            bar.as_mut(),
        )
        .await?;
        bar.finish();
        let digest = Sha256Digest(partial.hasher.finalize().into());
        let size = partial.received;
        let io = |source| StoreError::Io {
            path: temp.path().to_path_buf(),
            source,
        };
        let streamed = partial.file.finish().await.map_err(io)?;
        if digest != dist.sha256 {
            return Err(FetchError::HashMismatch {
                url: shown,
                expected: dist.sha256,
                actual: digest,
            });
        }
        let webc = check_while_syncing(
            &temp,
            &shown,
            (dist.webc, request.other),
            self.options.unpack_ratio,
            streamed,
        )
        .await?;
        store.commit_blob(temp, &digest, size, webc)?;
        if webc != dist.webc {
            return Err(FetchError::ServesOther {
                url: shown,
                expected: dist.webc,
                actual: webc,
            });
        }
        Ok(Fetched {
            blob: BlobRow {
                sha256: digest,
                size,
                webc,
            },
            cached: false,
        })
    }

    fn check_url(&self, text: &str) -> Result<reqwest::Url, FetchError> {
        self.http.check(text).map_err(|source| FetchError::Url {
            url: http::redact(text),
            source,
        })
    }

    /// Attempts until the whole file is in `partial`: transient failures are retried with
    /// backoff (resuming where the server allows it), and a URL that may have expired is
    /// renewed once through the registry.
    async fn download(
        &self,
        mut url: reqwest::Url,
        shown: &str,
        request: &Request<'_>,
        partial: &mut Partial,
        path: &std::path::Path,
        bar: &mut dyn ProgressBar,
    ) -> Result<(), FetchError> {
        let dist = request.dist;
        let (mut attempt, mut renewed) = (0, false);
        loop {
            let result = self.attempt(&url, shown, dist, partial, path, bar).await;
            // Every write handed to the file has landed before anything else happens to it.
            partial
                .file
                .flush()
                .await
                .map_err(|source| StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            let how = || {
                if partial.received > 0 && partial.etag.is_some() {
                    format!("resuming at byte {}", partial.received)
                } else {
                    "starting over".to_string()
                }
            };
            match (result, request.renew) {
                (Ok(()), _) => return Ok(()),
                (Err(e), Some(renew)) if e.may_have_expired() && !renewed => {
                    renewed = true;
                    let fresh = match renew.renew(dist).await {
                        Ok(fresh) => fresh,
                        Err(why) => {
                            tracing::warn!("{shown}: no fresh URL from the registry: {why}");
                            return Err(e);
                        }
                    };
                    tracing::info!(
                        "{shown}: {}; the URL may have expired: asked the registry for a fresh one, {}",
                        status_text(&e),
                        how()
                    );
                    url = self.check_url(&fresh)?;
                }
                (Err(e), _) if e.is_transient() && attempt < self.options.retries => {
                    attempt += 1;
                    let wait = http::retry_delay(self.options.backoff, attempt, e.retry_after());
                    tracing::warn!(
                        "{e}; {} in {} ms (retry {attempt} of {})",
                        how(),
                        wait.as_millis(),
                        self.options.retries
                    );
                    tokio::time::sleep(wait).await;
                }
                (Err(e), _) => return Err(e),
            }
        }
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
        if partial.received > 0 && partial.etag.is_none() {
            partial.restart(path, bar).await?;
        }
        let mut request = self
            .http
            .get(url.as_str())
            .map_err(|source| FetchError::Url {
                url: shown.to_string(),
                source,
            })?;
        if let Some(token) = self.token_for(url) {
            request = request.bearer_auth(token.expose());
        }
        let resuming = partial.etag.clone().filter(|_| partial.received > 0);
        if let Some(etag) = &resuming {
            request = request
                .header(header::RANGE, format!("bytes={}-", partial.received))
                .header(header::IF_RANGE, etag.as_str());
        }
        let response = request.send().await.map_err(|e| transport(shown, &e))?;
        self.accept(
            &response,
            shown,
            dist,
            resuming.is_some(),
            partial,
            path,
            bar,
        )
        .await?;
        self.stream_body(response, shown, partial, path, bar).await
    }

    /// Decides what an answer means for `partial`: a resume that continues it, a whole file
    /// that starts it over, or a failure.
    #[allow(clippy::too_many_arguments)]
    async fn accept(
        &self,
        response: &reqwest::Response,
        shown: &str,
        dist: &Distribution,
        resuming: bool,
        partial: &mut Partial,
        path: &std::path::Path,
        bar: &mut dyn ProgressBar,
    ) -> Result<(), FetchError> {
        let status = response.status();
        let continues = partial
            .total
            .is_some_and(|total| range_continues(response.headers(), partial.received, total));
        if status == StatusCode::PARTIAL_CONTENT && resuming && continues {
            tracing::info!("{shown}: resuming at byte {}", partial.received);
            return Ok(());
        }
        if status != StatusCode::OK {
            let error = FetchError::Status {
                url: shown.to_string(),
                status: status.as_u16(),
                retry_after: http::retry_after(response.headers()),
            };
            if !resuming
                || (error.is_transient() && status.as_u16() != 206)
                || error.may_have_expired()
            {
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
        if partial.received > 0 {
            tracing::info!("{shown}: the server sent the whole file; starting over");
            partial.restart(path, bar).await?;
        }
        partial.total = dist.size.or(response.content_length());
        if let (None, Some(total)) = (dist.size, partial.total) {
            bar.set_total(total);
            if total > self.options.max_size {
                return Err(FetchError::TooLarge {
                    url: shown.to_string(),
                    size: total,
                    limit: self.options.max_size,
                });
            }
        }
        // A resume needs to know where the file ends.
        partial.etag = partial
            .total
            .and_then(|_| resume_validator(response.headers()));
        Ok(())
    }

    /// Streams the body into `partial`, never past the file's size (or, without one, the
    /// limit), and checks that the file is whole.
    async fn stream_body(
        &self,
        response: reqwest::Response,
        shown: &str,
        partial: &mut Partial,
        path: &std::path::Path,
        bar: &mut dyn ProgressBar,
    ) -> Result<(), FetchError> {
        let too_much = || match partial.total {
            Some(expected) => FetchError::TooLong {
                url: shown.to_string(),
                expected,
            },
            None => FetchError::OverLimit {
                url: shown.to_string(),
                limit: self.options.max_size,
            },
        };
        // Without any size, the limit bounds the file.
        let limit = partial.total.unwrap_or(self.options.max_size);
        let remaining = limit.saturating_sub(partial.received);
        if response.content_length().is_some_and(|len| len > remaining) {
            return Err(too_much());
        }
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| transport(shown, &e))?;
            if partial.received + chunk.len() as u64 > limit {
                return Err(too_much());
            }
            let len = chunk.len() as u64;
            partial.hasher.update(&chunk);
            partial.file.write(chunk).await.map_err(io)?;
            partial.received += len;
            bar.advance(len);
        }
        match partial.total {
            Some(expected) if partial.received != expected => Err(FetchError::SizeMismatch {
                url: shown.to_string(),
                expected,
                actual: partial.received,
            }),
            _ => Ok(()),
        }
    }
}

fn transport(shown: &str, e: &reqwest::Error) -> FetchError {
    FetchError::Transport {
        url: shown.to_string(),
        reason: http::describe(e),
    }
}

/// The blob when the store already holds the file: in the format asked for, or (as a
/// [`FetchError::ServesOther`]) in the other format the request allows.
fn already_stored(
    store: &Store,
    request: &Request<'_>,
    shown: &str,
) -> Result<Option<Fetched>, FetchError> {
    let dist = request.dist;
    let Some(blob) = store.blob(&dist.sha256)? else {
        return Ok(None);
    };
    if blob.webc == dist.webc {
        return Ok(Some(Fetched { blob, cached: true }));
    }
    if request.other == Some(blob.webc) {
        return Err(FetchError::ServesOther {
            url: shown.to_string(),
            expected: dist.webc,
            actual: blob.webc,
        });
    }
    Err(FetchError::WrongFormat {
        url: shown.to_string(),
        expected: dist.webc,
        actual: blob.webc.to_string(),
    })
}

/// Checks the container's structure ([`check_container`]) while the disk finishes writing the
/// file (`fdatasync` on another thread): the commit's own fsync then has nothing left to wait
/// for.
async fn check_while_syncing(
    temp: &TempFile,
    shown: &str,
    (expected, other): (WebcVersion, Option<WebcVersion>),
    unpack_ratio: u64,
    streamed: PendingAtoms,
) -> Result<WebcVersion, FetchError> {
    let durable = {
        let file = temp.handle()?;
        tokio::task::spawn_blocking(move || file.sync_data())
    };
    let webc = check_container(
        temp.path(),
        shown,
        (expected, other),
        unpack_ratio,
        streamed,
    )
    .await;
    let synced = durable
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let webc = webc?;
    synced.map_err(|source| StoreError::Io {
        path: temp.path().to_path_buf(),
        source,
    })?;
    Ok(webc)
}

/// Parses and checks the whole downloaded container, off the async runtime (it may be large):
/// its format must be the one expected or the other one the request allows. The atoms' digests
/// computed as it was written, if any, stand in for hashing them again.
async fn check_container(
    path: &std::path::Path,
    shown: &str,
    (expected, other): (WebcVersion, Option<WebcVersion>),
    unpack_ratio: u64,
    streamed: PendingAtoms,
) -> Result<WebcVersion, FetchError> {
    let owned = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || -> Result<_, CheckFailure> {
        let bytes = container::map_file(&owned).map_err(CheckFailure::Io)?;
        let format = container::detect(&bytes).map_err(CheckFailure::Container)?;
        let webc = match format {
            Format::Current(webc) if webc == expected || Some(webc) == other => webc,
            _ => return Err(CheckFailure::Format(format)),
        };
        let limits = container::UnpackLimits::for_size(bytes.len() as u64, unpack_ratio);
        let from_stream = match &streamed.wait() {
            Some(streamed) => container::open_streamed(bytes, limits, streamed).map(|(_, n)| n),
            None => container::open_with(bytes, limits).map(|_| 0),
        }
        .map_err(CheckFailure::Container)?;
        Ok((webc, from_stream))
    })
    .await
    .map_err(|e| FetchError::Transport {
        url: shown.to_string(),
        reason: format!("checking the download failed: {e}"),
    })?;
    let (webc, from_stream) = checked.map_err(|failure| match failure {
        CheckFailure::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
        .into(),
        CheckFailure::Format(actual) => FetchError::WrongFormat {
            url: shown.to_string(),
            expected,
            actual: actual.to_string(),
        },
        CheckFailure::Container(source) => FetchError::Container {
            url: shown.to_string(),
            source,
        },
    })?;
    tracing::info!(
        "{shown}: checked; the signatures of {from_stream} atoms against digests computed as it arrived"
    );
    Ok(webc)
}

/// `HTTP 403` for a status failure, the error otherwise.
fn status_text(e: &FetchError) -> String {
    match e {
        FetchError::Status { status, .. } => format!("HTTP {status}"),
        other => other.to_string(),
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
        assert!(status(403).may_have_expired() && status(410).may_have_expired());
        assert!(!status(404).may_have_expired() && !status(500).may_have_expired());
    }
}
