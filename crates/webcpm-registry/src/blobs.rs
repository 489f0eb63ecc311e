//! Where the registry keeps package files: by default `DIR/blobs/<sha256>.webc` in the registry
//! root; with `--blobs oci://HOST/REPO`, blobs of an OCI distribution registry (such as the CNCF
//! `docker-registry`), content-addressed by the same SHA-256, which any number of replicas
//! share. Each published version also gets a tagged manifest there that lists its two files, so
//! that the registry's garbage collection keeps them.
//!
//! Downloads keep one URL, `{base}/blobs/{sha256}.webc`: from a directory the server sends the
//! file itself (with `Range`), from an OCI registry it redirects to the blob there, which serves
//! `Range` requests itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::oci::{self, Layer, OciError, OciRepo};
use crate::package::{PackageName, Sha256Digest};
use crate::uploads::Chunk;

pub use crate::oci::AUTH_ENV;

/// The media type of a package file in the OCI registry.
const WEBC_MEDIA_TYPE: &str = "application/webc";
/// The artifact type of a version's manifest.
const VERSION_ARTIFACT: &str = "application/vnd.webcpm.package.v1";

/// Why a blob could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("cannot write {path}: {source}; check the disk and its permissions")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Oci(#[from] OciError),
}

/// Where blobs go.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// `DIR/blobs`, written through `DIR/tmp`.
    Dir {
        root: PathBuf,
    },
    Oci(Arc<OciRepo>),
}

/// Where a blob is served from.
pub enum BlobSource {
    File(PathBuf),
    Redirect(String),
}

impl BlobStore {
    /// The store of the registry in `root`: `url` (`--blobs oci://...`) when given, with the
    /// credentials of [`AUTH_ENV`].
    pub fn new(root: &Path, url: Option<&str>) -> Result<BlobStore, OciError> {
        match url {
            None => Ok(BlobStore::Dir { root: root.into() }),
            Some(url) => {
                let auth = std::env::var(AUTH_ENV).ok().filter(|a| !a.is_empty());
                Ok(BlobStore::Oci(Arc::new(OciRepo::new(
                    url,
                    auth.as_deref(),
                )?)))
            }
        }
    }

    pub fn source(&self, digest: &Sha256Digest) -> BlobSource {
        match self {
            BlobStore::Dir { root } => {
                BlobSource::File(root.join("blobs").join(format!("{}.webc", digest.hex())))
            }
            BlobStore::Oci(repo) => BlobSource::Redirect(repo.blob_url(digest)),
        }
    }

    /// Stores a blob; blocking (call it off the async threads).
    pub fn put(&self, bytes: &Bytes) -> Result<Sha256Digest, BlobError> {
        match self {
            BlobStore::Dir { root } => write_file(root, bytes),
            BlobStore::Oci(repo) => Ok(oci::block_on(repo.push_blob(bytes.clone()))?),
        }
    }

    /// Records which blobs make up `name@version` (an OCI manifest tagged with the version);
    /// nothing to do in a directory.
    pub fn tag_version(
        &self,
        name: &PackageName,
        version: &semver::Version,
        files: &[(Sha256Digest, u64)],
    ) -> Result<(), BlobError> {
        let BlobStore::Oci(repo) = self else {
            return Ok(());
        };
        let layers: Vec<Layer> = files
            .iter()
            .map(|(digest, size)| Layer {
                digest: *digest,
                size: *size,
                media_type: WEBC_MEDIA_TYPE.into(),
            })
            .collect();
        let annotations = BTreeMap::from([
            ("org.opencontainers.image.title".into(), name.to_string()),
            (
                "org.opencontainers.image.version".into(),
                version.to_string(),
            ),
        ]);
        oci::block_on(repo.push_manifest(
            &version_tag(name, version),
            VERSION_ARTIFACT,
            &layers,
            annotations,
        ))?;
        Ok(())
    }
}

impl BlobStore {
    /// Stores one chunk of upload `id` (its bytes' SHA-256 is part of its name, so two requests
    /// racing for one offset never mix); blocking.
    pub(crate) fn put_chunk(
        &self,
        id: &str,
        chunk: &Chunk,
        bytes: &Bytes,
    ) -> Result<(), BlobError> {
        match self {
            BlobStore::Dir { root } => persist(root, &chunk_path(root, id, chunk), bytes),
            BlobStore::Oci(repo) => {
                oci::block_on(repo.push_blob(bytes.clone()))?;
                Ok(())
            }
        }
    }

    /// The bytes of a chunk of upload `id`, checked against its SHA-256; `None` when the store
    /// does not have them (or they changed); blocking.
    pub(crate) fn read_chunk(&self, id: &str, chunk: &Chunk) -> Result<Option<Bytes>, BlobError> {
        let bytes = match self {
            BlobStore::Dir { root } => {
                let path = chunk_path(root, id, chunk);
                match std::fs::read(&path) {
                    Ok(bytes) => Bytes::from(bytes),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io(&path)(e)),
                }
            }
            BlobStore::Oci(repo) => {
                let layer = Layer {
                    digest: chunk.sha256,
                    size: chunk.len,
                    media_type: "application/octet-stream".into(),
                };
                match oci::block_on(repo.pull_blob(&layer)) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) | Err(OciError::Mismatch { .. }) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let whole = bytes.len() as u64 == chunk.len && Sha256Digest::of(&bytes) == chunk.sha256;
        Ok(whole.then_some(bytes))
    }

    /// Removes the chunks of upload `id` from a directory store; an OCI registry's garbage
    /// collection removes blobs that no manifest names.
    pub(crate) fn drop_chunks(&self, id: &str, chunks: &[Chunk]) {
        if let BlobStore::Dir { root } = self {
            for chunk in chunks {
                let _ = std::fs::remove_file(chunk_path(root, id, chunk));
            }
        }
    }
}

/// `root/tmp/upload-{id}-{start}-{sha256}`.
fn chunk_path(root: &Path, id: &str, chunk: &Chunk) -> PathBuf {
    root.join("tmp").join(format!(
        "upload-{id}-{}-{}",
        chunk.start,
        chunk.sha256.hex()
    ))
}

/// A tag for `name@version`: `ns.name-1.2.3` (`+` becomes `_`; at most 128 characters).
fn version_tag(name: &PackageName, version: &semver::Version) -> String {
    let text = format!("{}-{version}", name.as_str().replace('/', "."));
    let tag: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tag = tag.trim_start_matches(['.', '-']).to_string();
    if tag.len() <= 128 {
        tag
    } else {
        // Long names keep their start and a hash of the whole, so that two never share a tag.
        let hash = Sha256Digest::of(text.as_bytes()).hex();
        format!("{}-{}", &tag[..128 - 17], &hash[..16])
    }
}

/// Writes a blob as `root/blobs/<sha256>.webc`: a temporary file in `root/tmp`, fsynced, then
/// renamed into place, then the directory fsynced.
fn write_file(root: &Path, bytes: &Bytes) -> Result<Sha256Digest, BlobError> {
    let sha256 = Sha256Digest::of(bytes);
    let blobs = root.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    persist(root, &blobs.join(format!("{}.webc", sha256.hex())), bytes)?;
    #[cfg(unix)]
    std::fs::File::open(&blobs)
        .and_then(|d| d.sync_all())
        .map_err(io(&blobs))?;
    Ok(sha256)
}

/// Writes `bytes` as `dest` whole: a temporary file in `root/tmp`, fsynced, then renamed.
fn persist(root: &Path, dest: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let mut file = tempfile::NamedTempFile::new_in(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(file.path()))?;
    file.as_file().sync_all().map_err(io(file.path()))?;
    file.persist(dest).map_err(|e| io(dest)(e.error))?;
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + use<> {
    let path = path.to_path_buf();
    move |source| BlobError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_are_valid_oci_tags() {
        let name: PackageName = "ns/pkg".parse().unwrap();
        let v = semver::Version::parse("1.2.3-rc.1+build.5").unwrap();
        assert_eq!(version_tag(&name, &v), "ns.pkg-1.2.3-rc.1_build.5");
        let long: PackageName = format!("ns/{}", "a".repeat(90)).parse().unwrap();
        let pre =
            |p: &str| semver::Version::parse(&format!("1.2.3-{p}.{}", "b".repeat(40))).unwrap();
        let tag = version_tag(&long, &pre("x"));
        assert_eq!(tag.len(), 128);
        assert_ne!(tag, version_tag(&long, &pre("y")));
    }
}
