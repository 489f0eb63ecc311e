//! The registry's policy signing key, in the registry root:
//!
//! ```text
//! DIR/policy-key               the ed25519 secret seed, hex (mode 0600)
//! DIR/policy-key.endorsement   after a rotation: the previous key's signature over this key
//! DIR/policy-key.previous      after a rotation: the previous secret seed, kept for the record
//! ```
//!
//! `keygen` creates the key once; `keygen --rotate` moves the current key to `.previous`, makes
//! a new one, and signs it with the old one: clients that pinned the old key accept policies
//! signed by the new key while the registry serves that endorsement, until their operators
//! re-pin the new key. Each file is written whole (a temporary file, fsynced, renamed).

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use webcpm_formats::policy_document as document;

/// The file of the secret seed, in the directory `keygen` is given.
pub const KEY_FILE: &str = "policy-key";
const ENDORSEMENT: &str = "policy-key.endorsement";
const PREVIOUS: &str = "policy-key.previous";

/// Why the signing key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the registry in {0} already has a policy key; pass --rotate to replace it (clients that pinned the old key keep trusting the new one through its endorsement)"
    )]
    Exists(PathBuf),
    #[error(
        "the registry in {0} has no policy key to rotate; create one with `webcpm registry keygen`"
    )]
    Missing(PathBuf),
    #[error("cannot use the policy key file {path}: {source}; check the file and its permissions")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy key file {path} is damaged: {reason}; restore it from a backup")]
    Damaged { path: PathBuf, reason: String },
}

/// What `keygen` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyReport {
    pub public_key: String,
    /// The key it replaced, on a rotation.
    pub previous_key: Option<String>,
}

/// The key that signs the policy, with its endorsement after a rotation.
pub(super) struct Signer {
    pub key: SigningKey,
    pub endorsement: Option<String>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_secret(root: &Path, name: &str, text: &str) -> Result<(), KeyError> {
    let target = root.join(name);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempfile_in(root)
        .map_err(io(root))?;
    // tempfile creates files readable by the owner only.
    temp.write_all(text.as_bytes()).map_err(io(&target))?;
    temp.as_file().sync_all().map_err(io(&target))?;
    temp.persist(&target).map_err(|e| io(&target)(e.error))?;
    Ok(())
}

fn read(root: &Path, name: &str) -> Result<Option<String>, KeyError> {
    let path = root.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Creates the registry's key (or, with `rotate`, replaces it with one the old key endorses).
pub fn keygen(root: &Path, rotate: bool) -> Result<KeyReport, KeyError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let old = signer(root)?;
    match (&old, rotate) {
        (Some(_), false) => return Err(KeyError::Exists(root.to_path_buf())),
        (None, true) => return Err(KeyError::Missing(root.to_path_buf())),
        _ => {}
    }
    let new = document::generate().map_err(|e| io(root)(std::io::Error::other(e.to_string())))?;
    let public = new.verifying_key();
    let previous_key = match &old {
        Some(old) => {
            write_secret(root, PREVIOUS, &hex::encode(old.key.to_bytes()))?;
            write_secret(root, ENDORSEMENT, &document::endorse(&old.key, &public))?;
            Some(document::key_hex(&old.key.verifying_key()))
        }
        None => {
            let _ = std::fs::remove_file(root.join(ENDORSEMENT));
            None
        }
    };
    write_secret(root, KEY_FILE, &hex::encode(new.to_bytes()))?;
    Ok(KeyReport {
        public_key: document::key_hex(&public),
        previous_key,
    })
}

/// The registry's signer, or `None` when no key was made.
pub(super) fn signer(root: &Path) -> Result<Option<Signer>, KeyError> {
    let Some(text) = read(root, KEY_FILE)? else {
        return Ok(None);
    };
    let key = document::parse_secret(&text).map_err(|e| KeyError::Damaged {
        path: root.join(KEY_FILE),
        reason: e.to_string(),
    })?;
    Ok(Some(Signer {
        key,
        endorsement: read(root, ENDORSEMENT)?,
    }))
}
