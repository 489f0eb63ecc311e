//! One repository of an OCI distribution registry (`oci://HOST[:PORT]/REPO`), through
//! oci-client: content-addressed blobs, and tagged manifests that list blobs with annotations.
//! The registry keeps its package files here (`registry serve --blobs`), and clients share
//! compiled code here (`compile.shared`).
//!
//! A loopback host is spoken to in plain HTTP; any other host in HTTPS. Credentials are a
//! `user:password` pair (HTTP Basic, as `docker-registry`'s htpasswd expects) or a bearer token;
//! without them, requests are anonymous.

use std::collections::BTreeMap;
use std::future::Future;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::package::Sha256Digest;

/// The largest blob read whole into memory (compiled code of the largest modules is a few
/// hundred MB).
/// The variable that holds the credentials (`user:password` or a token) for an OCI registry:
/// the registry's `--blobs` and the fleet's shared compiled code.
pub const AUTH_ENV: &str = "WEBCPM_OCI_AUTH";

const MAX_BLOB: u64 = 4 << 30;

/// How many times a manifest is pushed while the registry says that a blob it lists is unknown
/// (waiting 20 ms, then twice as long each time: 0.6 s in all).
const MANIFEST_ATTEMPTS: u32 = 6;

/// The media type of an empty config (the OCI image spec's "empty descriptor").
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// Why an OCI registry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("`{url}` is not an OCI repository ({reason}); write oci://HOST[:PORT]/REPOSITORY")]
    BadUrl { url: String, reason: String },
    #[error(
        "OCI registry {repo}: {message}; check that it runs and that the credentials allow this"
    )]
    Registry { repo: String, message: String },
    #[error("OCI registry {repo} sent blob {digest} with other bytes (SHA-256 {got})")]
    Mismatch {
        repo: String,
        digest: Sha256Digest,
        got: Sha256Digest,
    },
}

/// A blob a manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: Sha256Digest,
    pub size: u64,
    pub media_type: String,
}

/// A manifest as [`OciRepo::pull_manifest`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub layers: Vec<Layer>,
    pub annotations: BTreeMap<String, String>,
}

/// One repository, with its client.
pub struct OciRepo {
    registry: String,
    repository: String,
    client: Client,
    auth: RegistryAuth,
    plain_http: bool,
}

impl std::fmt::Debug for OciRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

impl OciRepo {
    /// Parses `oci://HOST[:PORT]/REPO`; `credentials` is `user:password` or a bearer token.
    pub fn new(url: &str, credentials: Option<&str>) -> Result<OciRepo, OciError> {
        let bad = |reason: &str| OciError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| bad("the scheme must be oci://"))?;
        let (registry, repository) = rest
            .split_once('/')
            .ok_or_else(|| bad("it names no repository"))?;
        let repository = repository.trim_end_matches('/');
        let valid_repo = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if registry.is_empty() || !valid_repo {
            return Err(bad("the host or the repository is empty or not lower-case"));
        }
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let plain_http = matches!(host, "localhost" | "127.0.0.1" | "[::1]")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        let auth = match credentials {
            None => RegistryAuth::Anonymous,
            Some(text) => match text.split_once(':') {
                Some((user, password)) => RegistryAuth::Basic(user.into(), password.into()),
                None => RegistryAuth::Bearer(text.into()),
            },
        };
        Ok(OciRepo {
            registry: registry.to_string(),
            repository: repository.to_string(),
            client: Client::new(config),
            auth,
            plain_http,
        })
    }

    /// `oci://HOST/REPO`.
    pub fn url(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }

    /// Whether requests carry credentials.
    pub fn has_credentials(&self) -> bool {
        !matches!(self.auth, RegistryAuth::Anonymous)
    }

    /// The HTTP URL of a blob (`GET` with `Range` works there), for clients that read anonymously.
    pub fn blob_url(&self, digest: &Sha256Digest) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!(
            "{scheme}://{}/v2/{}/blobs/sha256:{}",
            self.registry,
            self.repository,
            digest.hex()
        )
    }

    fn reference(&self, tag: &str) -> Reference {
        Reference::with_tag(self.registry.clone(), self.repository.clone(), tag.into())
    }

    fn failed(&self, e: impl std::error::Error + 'static) -> OciError {
        self.refused(crate::error_text::error_chain(&e))
    }

    fn refused(&self, message: String) -> OciError {
        OciError::Registry {
            repo: self.url(),
            message,
        }
    }

    async fn authenticate(&self, op: RegistryOperation) -> Result<(), OciError> {
        let image = self.reference("latest");
        if matches!(self.auth, RegistryAuth::Anonymous) {
            self.client
                .store_auth_if_needed(image.resolve_registry(), &self.auth)
                .await;
            return Ok(());
        }
        self.client
            .auth(&image, &self.auth, op)
            .await
            .map(drop)
            .map_err(|e| self.failed(e))
    }

    /// Whether the registry answers with these credentials: asks for a blob no one has.
    pub async fn ping(&self) -> Result<(), OciError> {
        self.authenticate(RegistryOperation::Pull).await?;
        let image = self.reference("latest");
        let nothing = format!("sha256:{}", "0".repeat(64));
        self.client
            .blob_exists(&image, &nothing)
            .await
            .map(drop)
            .map_err(|e| self.failed(e))
    }

    /// Stores `bytes` as a blob unless the registry has it already; returns its digest.
    pub async fn push_blob(&self, bytes: bytes::Bytes) -> Result<Sha256Digest, OciError> {
        self.authenticate(RegistryOperation::Push).await?;
        let digest = Sha256Digest::of(&bytes);
        let name = format!("sha256:{}", digest.hex());
        let image = self.reference("latest");
        let present = self
            .client
            .blob_exists(&image, &name)
            .await
            .unwrap_or(false);
        if !present {
            self.client
                .push_blob(&image, bytes, &name)
                .await
                .map_err(|e| self.failed(e))?;
        }
        Ok(digest)
    }

    /// Reads a whole blob and checks its SHA-256; `None` when the registry does not have it.
    pub async fn pull_blob(&self, layer: &Layer) -> Result<Option<bytes::Bytes>, OciError> {
        // The size is the manifest's word: reserve no more than a little of it up front.
        let bytes = Vec::with_capacity(usize::try_from(layer.size.min(64 << 20)).unwrap_or(0));
        Ok(self.pull_into(layer, bytes).await?.map(bytes::Bytes::from))
    }

    /// Streams a blob into `file`, so that nothing of it is held in memory; `false` when the
    /// registry does not have it. On an error, what `file` holds is to be thrown away.
    pub async fn pull_blob_to(
        &self,
        layer: &Layer,
        file: &mut std::fs::File,
    ) -> Result<bool, OciError> {
        Ok(self.pull_into(layer, file).await?.is_some())
    }

    /// Writes a blob to `out`, refusing bytes past the manifest's size as they come and
    /// checking the SHA-256 at the end; `out` back, or `None` when the registry does not have
    /// the blob.
    async fn pull_into<W: std::io::Write + Unpin>(
        &self,
        layer: &Layer,
        out: W,
    ) -> Result<Option<W>, OciError> {
        self.authenticate(RegistryOperation::Pull).await?;
        let image = self.reference("latest");
        if layer.size > MAX_BLOB {
            return Err(self.refused(format!(
                "blob {} is {} bytes, more than the {MAX_BLOB} this client reads",
                layer.digest, layer.size
            )));
        }
        let mut out = Bounded {
            out,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            written: 0,
            limit: layer.size,
        };
        match self
            .client
            .pull_blob(&image, &descriptor(layer), &mut out)
            .await
        {
            Ok(()) => {}
            Err(e) if is_unknown(&e) => return Ok(None),
            Err(e) => return Err(self.failed(e)),
        }
        let got = Sha256Digest(sha2::Digest::finalize(out.hasher).into());
        if got != layer.digest {
            return Err(OciError::Mismatch {
                repo: self.url(),
                digest: layer.digest,
                got,
            });
        }
        Ok(Some(out.out))
    }

    /// Tags a manifest that lists `layers` (blobs already pushed), with `annotations`.
    pub async fn push_manifest(
        &self,
        tag: &str,
        artifact_type: &str,
        layers: &[Layer],
        annotations: BTreeMap<String, String>,
    ) -> Result<(), OciError> {
        let config = bytes::Bytes::from_static(b"{}");
        let config_digest = self.push_blob(config.clone()).await?;
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.to_string()),
            config: descriptor(&Layer {
                digest: config_digest,
                size: config.len() as u64,
                media_type: EMPTY_CONFIG.into(),
            }),
            layers: layers.iter().map(descriptor).collect(),
            subject: None,
            artifact_type: Some(artifact_type.into()),
            annotations: Some(annotations),
        };
        let (reference, manifest) = (self.reference(tag), OciManifest::Image(manifest));
        let mut pause = std::time::Duration::from_millis(20);
        for attempt in 1.. {
            match self.client.push_manifest(&reference, &manifest).await {
                Ok(_) => break,
                // A blob pushed a moment ago can look unknown while another client pushes it
                // again: `docker-registry`'s filesystem storage rewrites the blob's link file in
                // place. Wait, make sure of the config, and push the manifest again.
                Err(e) if attempt < MANIFEST_ATTEMPTS && lists_unknown_blob(&e) => {
                    tracing::debug!("OCI registry {}: {e}; pushing {tag} again", self.url());
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    self.push_blob(config.clone()).await?;
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(())
    }

    /// The manifest tagged `tag`; `None` when there is none.
    pub async fn pull_manifest(&self, tag: &str) -> Result<Option<Listing>, OciError> {
        self.authenticate(RegistryOperation::Pull).await?;
        let manifest = match self
            .client
            .pull_manifest(&self.reference(tag), &self.auth)
            .await
        {
            Ok((OciManifest::Image(m), _)) => m,
            Ok((OciManifest::ImageIndex(_), _)) => {
                return Err(self.refused(format!("tag {tag} is an index, not a manifest")));
            }
            Err(e) if is_unknown(&e) => return Ok(None),
            Err(e) => return Err(self.failed(e)),
        };
        let layers = manifest
            .layers
            .iter()
            .map(|d| {
                let hex = d.digest.strip_prefix("sha256:").unwrap_or("");
                Ok(Layer {
                    digest: hex.parse().map_err(|_| {
                        self.refused(format!("tag {tag} lists a blob that is not SHA-256"))
                    })?,
                    size: u64::try_from(d.size).unwrap_or(0),
                    media_type: d.media_type.clone(),
                })
            })
            .collect::<Result<Vec<_>, OciError>>()?;
        Ok(Some(Listing {
            layers,
            annotations: manifest.annotations.unwrap_or_default(),
        }))
    }
}

/// A writer that hashes what passes through it and refuses bytes past `limit`: a registry
/// cannot make a client take more than the manifest announced. Writes go straight to `out`
/// (memory, or a file: a pull runs on a blocking caller's own runtime).
struct Bounded<W> {
    out: W,
    hasher: sha2::Sha256,
    written: u64,
    limit: u64,
}

impl<W: std::io::Write + Unpin> tokio::io::AsyncWrite for Bounded<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.written + buf.len() as u64 > self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the blob is longer than its manifest says",
            )));
        }
        let this = &mut *self;
        this.out.write_all(buf)?;
        sha2::Digest::update(&mut this.hasher, buf);
        this.written += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Whether the registry refused a manifest because a blob it lists is unknown (`docker-registry`
/// sends its error envelope with status 400, which the client reports as a server error).
fn lists_unknown_blob(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match e {
        E::ServerError { code, message, .. } => {
            *code == 400 && message.contains("MANIFEST_BLOB_UNKNOWN")
        }
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, C::ManifestBlobUnknown)),
        _ => false,
    }
}

/// Whether the registry answered that it does not have the blob, manifest or repository.
fn is_unknown(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match e {
        E::ImageManifestNotFoundError(_) => true,
        E::ServerError { code, .. } => *code == 404,
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                C::BlobUnknown | C::ManifestUnknown | C::NameUnknown | C::ManifestBlobUnknown
            )
        }),
        _ => false,
    }
}

fn descriptor(layer: &Layer) -> OciDescriptor {
    OciDescriptor {
        media_type: layer.media_type.clone(),
        digest: format!("sha256:{}", layer.digest.hex()),
        size: i64::try_from(layer.size).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    }
}

/// Runs an OCI call from synchronous code: on the current tokio runtime when there is one (the
/// caller must then be on a blocking thread), else on a small runtime of its own.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(future),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime builds")
            .block_on(future),
    }
}
