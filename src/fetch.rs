//! Downloads: one distribution at a time, streamed into the store's `tmp/` while its SHA-256 and
//! length are computed, and handed to the store only once it is proven to be what the registry
//! promised.
//!
//! A download is accepted only when, in this order: the declared size is within the limit; the
//! body is no longer than declared; its length and SHA-256 equal the node's; its magic bytes are
//! WebC of the format the node was asked for; and the `webc` crate parses and validates it
//! (including the volume path checks of [`crate::container`]). Anything else is a [`FetchError`]
//! and the temporary file is removed. Transient failures (connection errors, resets, 5xx, 429,
//! timeouts) are retried with exponential backoff and jitter; integrity failures are not retried
//! against the same URL.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

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
    Status { url: String, status: u16 },
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
    fn is_transient(&self) -> bool {
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
}

impl Fetcher {
    pub fn new(http: reqwest::Client, options: FetchOptions, progress: Arc<dyn Progress>) -> Self {
        Fetcher {
            http,
            options,
            progress,
        }
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
        let mut temp = store.temp_file()?;
        let mut bar = self.progress.start(label, dist.size);
        let mut attempt = 0;
        let digest = loop {
            match self
                .download(&url, &shown, dist, &mut temp, bar.as_mut())
                .await
            {
                Ok(digest) => break digest,
                Err(e) if e.is_transient() && attempt < self.options.retries => {
                    attempt += 1;
                    let wait = backoff(self.options.backoff, attempt);
                    tracing::warn!("{e}; trying again in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                    temp.truncate()?;
                    bar.restart();
                }
                Err(e) => return Err(e),
            }
        };
        bar.finish();
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
            let bytes = std::fs::read(&path).map_err(CheckFailure::Io)?;
            let format = container::detect(&bytes).map_err(CheckFailure::Container)?;
            if format != Format::Current(expected) {
                return Err(CheckFailure::Format(format));
            }
            container::open(bytes::Bytes::from(bytes)).map_err(CheckFailure::Container)?;
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

    /// One attempt: streams the body into `temp` and returns its digest.
    async fn download(
        &self,
        url: &reqwest::Url,
        shown: &str,
        dist: &Distribution,
        temp: &mut crate::store::TempFile,
        bar: &mut dyn ProgressBar,
    ) -> Result<Sha256Digest, FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: shown.to_string(),
            reason: http::describe(&e),
        };
        let response = self.http.get(url.clone()).send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: shown.to_string(),
                status: status.as_u16(),
            });
        }
        if let Some(len) = response.content_length()
            && len > dist.size
        {
            return Err(FetchError::TooLong {
                url: shown.to_string(),
                expected: dist.size,
            });
        }
        let mut file = tokio::fs::File::from_std(temp.handle()?);
        let mut hasher = sha2::Sha256::new();
        let mut received: u64 = 0;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(transport)?;
            received += chunk.len() as u64;
            if received > dist.size {
                return Err(FetchError::TooLong {
                    url: shown.to_string(),
                    expected: dist.size,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|source| StoreError::Io {
                    path: temp.path().to_path_buf(),
                    source,
                })?;
            bar.advance(chunk.len() as u64);
        }
        file.flush().await.map_err(|source| StoreError::Io {
            path: temp.path().to_path_buf(),
            source,
        })?;
        if received != dist.size {
            return Err(FetchError::SizeMismatch {
                url: shown.to_string(),
                expected: dist.size,
                actual: received,
            });
        }
        Ok(Sha256Digest(hasher.finalize().into()))
    }
}

enum CheckFailure {
    Io(std::io::Error),
    Format(Format),
    Container(container::ContainerError),
}

/// Exponential backoff with up to 50% jitter.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.min(10));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = exp.mul_f64((nanos % 500) as f64 / 1000.0);
    exp + jitter
}
