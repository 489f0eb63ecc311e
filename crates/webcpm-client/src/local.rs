//! Running what is not installed, as `wasmer run` accepts it: a local `.webc` file, a `.wasm`
//! module, a package directory (with a `wasmer.toml`), or a URL of a `.webc`.
//!
//! Whatever the input, it becomes a WebC container that gets the same checks as a download (the
//! container is parsed and validated), enters the store as a blob named by its SHA-256 (so its
//! atoms share the precompile cache, keyed by content), and runs in the same sandbox as an
//! installed package. A `.wasm` module is wrapped in a one-command package named after the
//! file; a directory is built as `registry add` builds it; a WebC v1 file is rewritten as v3. A
//! URL is downloaded bounded by `download.max_size`; with an expected SHA-256 the bytes must
//! match it, and without one the caller warns that nothing vouches for them. Nothing is
//! recorded as an install: `list` does not show local runs, and `cache gc` removes their blobs.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::Digest;

use crate::container::{self, ContainerError, Format};
use crate::package::{InputError, PackageSpec, Sha256Digest, WebcVersion};
use crate::package_dir::{self, DirError};
use crate::store::{Store, StoreError};

/// What `run` was given: a package of the registry, a local path, or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Package(PackageSpec),
    Path(PathBuf),
    Url(String),
}

impl FromStr for Target {
    type Err = InputError;

    /// As Wasmer's `PackageSource`: text with `://` is a URL, text that starts with `.` or `/`
    /// is a path, anything else a package name.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains("://") {
            Ok(Target::Url(text.to_string()))
        } else if text.starts_with('.') || text.starts_with('/') {
            Ok(Target::Path(PathBuf::from(text)))
        } else {
            text.parse().map(Target::Package)
        }
    }
}

/// Why a local file or a URL cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source}; check the path")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Dir(#[from] DirError),
    #[error("{what} is not a runnable WebC container: {source}")]
    Container {
        what: String,
        #[source]
        source: ContainerError,
    },
    #[error(transparent)]
    Url(#[from] crate::http::UrlError),
    #[error("downloading {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("{url} is larger than download.max_size ({limit} bytes); raise the limit to run it")]
    TooLarge { url: String, limit: u64 },
    #[error("SHA-256 mismatch for {url}: expected {expected}, got {actual}; nothing was stored")]
    HashMismatch {
        url: String,
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The container a local path holds or makes.
pub fn read(path: &Path) -> Result<Bytes, LocalError> {
    if path.is_dir() {
        return Ok(package_dir::build(path)?.bytes);
    }
    let bytes = std::fs::read(path).map_err(|source| LocalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.starts_with(b"\0asm") {
        return wrap_module(path, &bytes);
    }
    Ok(Bytes::from(bytes))
}

/// A one-command WASI package around a module, named after the file.
fn wrap_module(path: &Path, wasm: &[u8]) -> Result<Bytes, LocalError> {
    let stem: String = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("module")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "module" } else { stem };
    let io = |source| LocalError::Read {
        path: path.to_path_buf(),
        source,
    };
    let dir = tempfile::tempdir().map_err(io)?;
    std::fs::write(dir.path().join("module.wasm"), wasm).map_err(io)?;
    let toml = format!(
        "[package]\nname = \"local/{stem}\"\nversion = \"0.0.0\"\n\n\
         [[module]]\nname = \"{stem}\"\nsource = \"module.wasm\"\nabi = \"wasi\"\n\n\
         [[command]]\nname = \"{stem}\"\nmodule = \"{stem}\"\nrunner = \"wasi\"\n"
    );
    std::fs::write(dir.path().join("wasmer.toml"), toml).map_err(io)?;
    Ok(package_dir::build(dir.path())?.bytes)
}

/// Checks a container as a download is checked and puts it in the store (once: its SHA-256
/// names it); returns that digest.
pub fn store_container(
    store: &Store,
    bytes: Bytes,
    what: &str,
) -> Result<Sha256Digest, LocalError> {
    let container_error = |source| LocalError::Container {
        what: what.to_string(),
        source,
    };
    let limits = |bytes: &Bytes| store.unpack_limits(bytes.len() as u64);
    let checked = container::open_with(bytes.clone(), limits(&bytes)).map_err(container_error)?;
    let (bytes, webc) = match checked.format {
        Format::Current(webc) => (bytes, webc),
        Format::V1 => {
            let v3 =
                container::convert(&bytes, &checked, WebcVersion::V3).map_err(container_error)?;
            container::open_with(v3.clone(), limits(&v3)).map_err(container_error)?;
            (v3, WebcVersion::V3)
        }
    };
    let digest = Sha256Digest(sha2::Sha256::digest(&bytes).into());
    if store.blob(&digest)?.is_some() {
        return Ok(digest);
    }
    let temp = store.temp_file()?;
    let path = temp.path().to_path_buf();
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(&path, &bytes).map_err(io)?;
    temp.handle()?.sync_all().map_err(io)?;
    store.commit_blob(temp, &digest, bytes.len() as u64, webc)?;
    Ok(digest)
}

/// Downloads a container, never more than `max_size` bytes; with `expected`, the bytes must
/// have that SHA-256.
pub async fn download(
    http: &crate::http::Client,
    url: &str,
    expected: Option<Sha256Digest>,
    max_size: u64,
) -> Result<Bytes, LocalError> {
    let shown = crate::http::redact(url);
    let failed = |reason: String| LocalError::Download {
        url: shown.clone(),
        reason,
    };
    let response = http
        .get(url)?
        .send()
        .await
        .map_err(|e| failed(crate::http::describe(&e)))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status().as_u16())));
    }
    let too_large = || LocalError::TooLarge {
        url: shown.clone(),
        limit: max_size,
    };
    if response.content_length().is_some_and(|n| n > max_size) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed(crate::http::describe(&e)))?;
        if (body.len() + chunk.len()) as u64 > max_size {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let actual = Sha256Digest(sha2::Sha256::digest(&body).into());
    match expected {
        Some(expected) if expected != actual => Err(LocalError::HashMismatch {
            url: shown,
            expected,
            actual,
        }),
        _ => Ok(Bytes::from(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_told_apart_as_wasmer_does() {
        assert_eq!(
            "./app.webc".parse::<Target>().unwrap(),
            Target::Path("./app.webc".into())
        );
        assert_eq!(
            "/abs/m.wasm".parse::<Target>().unwrap(),
            Target::Path("/abs/m.wasm".into())
        );
        assert_eq!(
            "https://h/p.webc".parse::<Target>().unwrap(),
            Target::Url("https://h/p.webc".into())
        );
        assert!(matches!(
            "ns/name@1".parse::<Target>().unwrap(),
            Target::Package(_)
        ));
    }
}
