//! Compiled code shared across a fleet: `compile.shared = "oci://HOST/REPO"`. Before compiling
//! an atom, a client looks its artifact up in that OCI repository by (engine compatibility hash,
//! atom SHA-256) and pulls it; after compiling one itself, it pushes it (only with credentials,
//! [`crate::server::OCI_AUTH_ENV`]), annotated with both keys and the webcpm and engine versions.
//!
//! Each artifact is a manifest tagged `<engine-hash>-<atom-sha256>` that lists one blob. What is
//! pulled is checked like a local artifact and more: the blob's SHA-256 against the manifest, the
//! annotations against the keys asked for, then the engine's own header and compatibility checks
//! when it is loaded. Anything that fails is a miss: the atom is compiled here, and the shared
//! copy is not pushed over (someone should look at why it was wrong).
//!
//! Compiled code is native code: a client runs what the shared repository holds. Only the
//! repository named in the configuration is used, and whoever can push there can run code on
//! every machine that pulls from it, as the README says.

use std::collections::BTreeMap;

use crate::oci::{self, Layer, OciError, OciRepo};
use crate::package::Sha256Digest;

const ARTIFACT_TYPE: &str = "application/vnd.webcpm.compiled.v1";
const LAYER_TYPE: &str = "application/vnd.webcpm.compiled.artifact";
pub const ENGINE_KEY: &str = "dev.webcpm.engine-hash";
pub const ATOM_KEY: &str = "dev.webcpm.atom-sha256";
pub const VERSION_KEY: &str = "dev.webcpm.version";
pub const BACKEND_KEY: &str = "dev.webcpm.engine";

/// The shared repository of compiled code.
#[derive(Debug)]
pub struct SharedCache {
    repo: OciRepo,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The artifact's bytes, whose digest and keys match.
    Found(Vec<u8>),
    /// Nothing under this key.
    Missing,
    /// Something under this key that is not what it says; never trusted, never pushed over.
    Bad(String),
}

impl SharedCache {
    /// The repository `url`; `credentials` (`user:password` or a token) allow pushing.
    pub fn new(url: &str, credentials: Option<&str>) -> Result<SharedCache, OciError> {
        Ok(SharedCache {
            repo: OciRepo::new(url, credentials)?,
        })
    }

    pub fn url(&self) -> String {
        self.repo.url()
    }

    /// Whether this client pushes what it compiles (it has credentials).
    pub fn pushes(&self) -> bool {
        self.repo.has_credentials()
    }

    /// Looks up the artifact of `atom` for `engine`. Blocking.
    pub fn lookup(&self, engine: &str, atom: &Sha256Digest) -> Result<Lookup, OciError> {
        let Some(listing) = oci::block_on(self.repo.pull_manifest(&tag(engine, atom)))? else {
            return Ok(Lookup::Missing);
        };
        let says = |key: &str| listing.annotations.get(key).map(String::as_str);
        let atom_hex = atom.hex();
        if says(ENGINE_KEY) != Some(engine) || says(ATOM_KEY) != Some(atom_hex.as_str()) {
            return Ok(Lookup::Bad(
                "its annotations name another engine or atom".into(),
            ));
        }
        let [layer] = listing.layers.as_slice() else {
            return Ok(Lookup::Bad(format!(
                "it lists {} blobs, not one",
                listing.layers.len()
            )));
        };
        match oci::block_on(self.repo.pull_blob(layer)) {
            Ok(Some(bytes)) => Ok(Lookup::Found(bytes.to_vec())),
            Ok(None) => Ok(Lookup::Missing),
            Err(e @ OciError::Mismatch { .. }) => Ok(Lookup::Bad(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Pushes an artifact compiled here by `engine_name` (`wasmtime 48.0.8`). Blocking.
    pub fn push(
        &self,
        engine: &str,
        atom: &Sha256Digest,
        artifact: &[u8],
        engine_name: &str,
    ) -> Result<(), OciError> {
        let bytes = bytes::Bytes::copy_from_slice(artifact);
        let digest = oci::block_on(self.repo.push_blob(bytes))?;
        let layer = Layer {
            digest,
            size: artifact.len() as u64,
            media_type: LAYER_TYPE.into(),
        };
        let annotations = BTreeMap::from([
            (ENGINE_KEY.to_string(), engine.to_string()),
            (ATOM_KEY.to_string(), atom.hex()),
            (
                VERSION_KEY.to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (BACKEND_KEY.to_string(), engine_name.to_string()),
        ]);
        oci::block_on(self.repo.push_manifest(
            &tag(engine, atom),
            ARTIFACT_TYPE,
            &[layer],
            annotations,
        ))
    }
}

/// `<engine-hash>-<atom-sha256>`: 97 characters, a valid OCI tag.
pub fn tag(engine: &str, atom: &Sha256Digest) -> String {
    format!("{engine}-{}", atom.hex())
}
