//! Compiled code shared across a fleet: `compile.shared = "oci://HOST/REPO"`. Before compiling
//! an atom, a client looks its artifact up in that OCI repository by (engine compatibility hash,
//! atom SHA-256) and pulls it; after compiling one itself, it pushes it (only with credentials,
//! [`crate::oci::AUTH_ENV`], and the fleet's signing key), annotated with both keys, the
//! webcpm and engine versions, and its signature ([`signing`]).
//!
//! Each artifact is a manifest tagged `<engine-hash>-<atom-sha256>` that lists one blob. Compiled
//! code is native code, so a pulled artifact is trusted only when the fleet's key that this
//! client pinned (`compile.shared_key`) signed exactly this (engine, atom, artifact SHA-256):
//! the signature is checked against the manifest before the blob is read, the blob's bytes
//! against the signed SHA-256, and then the engine's own header and compatibility checks run
//! when it is loaded. Anything that fails is a miss: the atom is compiled here, and the shared
//! copy is not pushed over (someone should look at why it was wrong). Being able to push to the
//! repository is not enough to run code on the fleet's machines; holding the signing key is.

pub mod signing;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::fleet::document::key_hex;
use crate::oci::{self, Layer, OciError, OciRepo};
use crate::package::Sha256Digest;
use signing::{Claim, SignatureError};

pub const ARTIFACT_TYPE: &str = "application/vnd.webcpm.compiled.v1";
pub const LAYER_TYPE: &str = "application/vnd.webcpm.compiled.artifact";
pub const ENGINE_KEY: &str = "dev.webcpm.engine-hash";
pub const ATOM_KEY: &str = "dev.webcpm.atom-sha256";
pub(crate) const VERSION_KEY: &str = "dev.webcpm.version";
pub(crate) const BACKEND_KEY: &str = "dev.webcpm.engine";

/// The shared repository of compiled code, the key its artifacts must be signed with, and, on
/// the machines that push, the secret half of that key.
#[derive(Debug)]
pub struct SharedCache {
    repo: OciRepo,
    pinned: VerifyingKey,
    signer: Option<SigningKey>,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The artifact, signed by the pinned key, whose digest and keys match, is in the file
    /// given to [`SharedCache::lookup`]: its size and SHA-256 (the signed digest, checked).
    Found { size: u64, sha256: Sha256Digest },
    /// Nothing under this key.
    Missing,
    /// Something under this key that is not what it says, or that the pinned key does not vouch
    /// for; never trusted, never pushed over.
    Bad(Distrust),
}

/// Why a shared artifact is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum Distrust {
    #[error("its annotations name another engine or atom")]
    Annotations,
    #[error("it lists {0} blobs, not one")]
    Blobs(usize),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("its bytes are not the signed ones: {0}")]
    Bytes(OciError),
}

/// Why the shared cache cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(
        "the signing key (compile.shared_signing_key) is the secret of public key {signer}, but the pinned key (compile.shared_key) is {pinned}: every client would refuse what this machine pushes; pin {signer}, or use the fleet's signing key"
    )]
    SignerNotPinned { signer: String, pinned: String },
}

impl SharedCache {
    /// The repository `url`, trusting artifacts signed by `pinned`. `credentials` (`user:password`
    /// or a token) and `signer` (the secret of `pinned`) together allow pushing.
    pub fn new(
        url: &str,
        credentials: Option<&str>,
        pinned: VerifyingKey,
        signer: Option<SigningKey>,
    ) -> Result<SharedCache, SharedError> {
        if let Some(key) = &signer
            && key.verifying_key() != pinned
        {
            return Err(SharedError::SignerNotPinned {
                signer: key_hex(&key.verifying_key()),
                pinned: key_hex(&pinned),
            });
        }
        let repo = OciRepo::new(url, credentials)?;
        if signer.is_none() {
            tracing::debug!(
                "{}: no signing key (compile.shared_signing_key), so what is compiled here is not pushed",
                repo.url()
            );
        } else if !repo.has_credentials() {
            tracing::debug!(
                "{}: no credentials ({}), so what is compiled here is not pushed",
                repo.url(),
                crate::oci::AUTH_ENV
            );
        }
        Ok(SharedCache {
            repo,
            pinned,
            signer,
        })
    }

    pub fn url(&self) -> String {
        self.repo.url()
    }

    /// Whether this client pushes what it compiles (it has credentials and the signing key).
    pub fn pushes(&self) -> bool {
        self.repo.has_credentials() && self.signer.is_some()
    }

    /// Looks up the artifact of `atom` for `engine`, checks its signature, then streams its
    /// bytes into `into` (checked against the signed digest; nothing of it is held in memory).
    /// Unless the answer is [`Lookup::Found`], what `into` holds is to be thrown away. Blocking.
    pub fn lookup(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        into: &mut std::fs::File,
    ) -> Result<Lookup, OciError> {
        let Some(listing) = oci::block_on(self.repo.pull_manifest(&tag(engine, atom)))? else {
            return Ok(Lookup::Missing);
        };
        let says = |key: &str| listing.annotations.get(key).map(String::as_str);
        let atom_hex = atom.hex();
        if says(ENGINE_KEY) != Some(engine) || says(ATOM_KEY) != Some(atom_hex.as_str()) {
            return Ok(Lookup::Bad(Distrust::Annotations));
        }
        let [layer] = listing.layers.as_slice() else {
            return Ok(Lookup::Bad(Distrust::Blobs(listing.layers.len())));
        };
        let verified = Claim::new(engine, atom, &layer.digest)
            .and_then(|claim| claim.verify(&listing.annotations, &self.pinned));
        if let Err(why) = verified {
            return Ok(Lookup::Bad(why.into()));
        }
        // The blob's bytes are checked against the layer's digest: the signed one.
        match oci::block_on(self.repo.pull_blob_to(layer, into)) {
            Ok(true) => Ok(Lookup::Found {
                size: layer.size,
                sha256: layer.digest,
            }),
            Ok(false) => Ok(Lookup::Missing),
            Err(e @ OciError::Mismatch { .. }) => Ok(Lookup::Bad(Distrust::Bytes(e))),
            Err(e) => Err(e),
        }
    }

    /// Signs and pushes an artifact compiled here by `engine_name` (`wasmtime 48.0.8`); does
    /// nothing without the signing key. Blocking.
    pub fn push(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        artifact: &[u8],
        engine_name: &str,
    ) -> Result<(), SharedPushError> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let digest = Sha256Digest::of(artifact);
        let mut annotations = Claim::new(engine, atom, &digest)?.sign(signer);
        annotations.extend([
            (ENGINE_KEY.to_string(), engine.to_string()),
            (ATOM_KEY.to_string(), atom.hex()),
            (
                VERSION_KEY.to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (BACKEND_KEY.to_string(), engine_name.to_string()),
        ]);
        let pushed = oci::block_on(self.repo.push_blob(bytes::Bytes::copy_from_slice(artifact)))?;
        let layer = Layer {
            digest: pushed,
            size: artifact.len() as u64,
            media_type: LAYER_TYPE.into(),
        };
        oci::block_on(self.repo.push_manifest(
            &tag(engine, atom),
            ARTIFACT_TYPE,
            &[layer],
            annotations,
        ))?;
        Ok(())
    }
}

/// Why an artifact could not be shared.
#[derive(Debug, thiserror::Error)]
pub enum SharedPushError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// `<engine-hash>-<atom-sha256>`: 97 characters, a valid OCI tag.
pub fn tag(engine: &str, atom: &Sha256Digest) -> String {
    format!("{engine}-{}", atom.hex())
}
