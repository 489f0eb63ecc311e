//! The registry's policy keys, in its key directory (the registry root unless
//! `--policy-keys DIR` names another, such as a secret mounted into every replica):
//!
//! ```text
//! DIR/policy-root-key          the root's ed25519 secret seed, hex (mode 0600); may be moved
//!                              offline and given back with --root-key FILE when needed
//! DIR/policy-root-key.pub      the root's public key, hex: what clients pin
//! DIR/policy-key               the signing key's secret seed, hex (mode 0600)
//! DIR/policy-key.endorsement   the root's endorsement of the signing key, with its expiry (JSON)
//! DIR/policy-key.revoked       the root's signed list of revoked signing keys (JSON)
//! DIR/policy-key.previous      after a rotation: the previous signing key, kept for the record
//! ```
//!
//! `keygen` makes a root and a signing key that the root endorses for `--valid-for` days (90);
//! clients pin the root. `keygen --rotate` makes a new signing key and endorses it (run it
//! before the endorsement expires: clients refuse policies signed under an expired one);
//! `keygen --revoke KEY` adds a signing key to the revocation list, which the registry serves
//! with every policy and clients keep. Both need the root's secret. A registry made before the
//! root existed had one key, which clients pinned: its first rotation makes that key the root,
//! so those clients keep following. Each file is written whole (a temporary file, fsynced,
//! renamed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;

use webcpm_formats::policy_document::{
    self as document, Endorsement, Revocations, SignedRevocations,
};

/// The file of the signing key's secret seed.
pub const KEY_FILE: &str = "policy-key";
const ROOT_FILE: &str = "policy-root-key";
const ROOT_PUBLIC: &str = "policy-root-key.pub";
const ENDORSEMENT: &str = "policy-key.endorsement";
const REVOKED: &str = "policy-key.revoked";
const PREVIOUS: &str = "policy-key.previous";

/// How long a signing key is endorsed by default.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(90 * 86_400);

/// Why a key could not be made, read or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the registry in {0} already has a policy key; pass --rotate to make a new signing key (clients pin the root, which stays)"
    )]
    Exists(PathBuf),
    #[error(
        "the registry in {0} has no policy key to rotate or revoke with; create one with `webcpm registry keygen`"
    )]
    Missing(PathBuf),
    #[error(
        "the root key's secret is not in {0}; give it with --root-key FILE (where it is kept offline)"
    )]
    NoRoot(PathBuf),
    #[error(
        "`{0}` is the key the registry signs with now; rotate first (`keygen --rotate`), then revoke it"
    )]
    RevokingCurrent(String),
    #[error("`{0}` is the root key, which clients pin: it cannot be revoked, only re-pinned")]
    RevokingRoot(String),
    #[error(
        "{path} holds the secret of key {found}, but this registry's root is {root}; give the file of the root's secret"
    )]
    WrongRoot {
        path: PathBuf,
        found: String,
        root: String,
    },
    #[error(
        "`{0}` is not a policy key (64 hex digits); copy it from `previous_key` of `keygen --json` or `signing_key` of `rollout status --json`"
    )]
    NotAKey(String),
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
    /// The root's public key: what clients pin (`rollout.policy_key`).
    pub public_key: String,
    /// The key policies are signed with now.
    pub signing_key: String,
    /// The signing key it replaced, on a rotation.
    pub previous_key: Option<String>,
    /// When the root's endorsement of the signing key ends (Unix time).
    pub endorsement_expires_at: i64,
}

/// What `keygen --revoke` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevokeReport {
    pub version: u64,
    pub revoked: Vec<String>,
}

/// What `keygen` is asked to do.
#[derive(Debug, Clone)]
pub struct KeygenOptions {
    pub rotate: bool,
    /// How long the signing key is endorsed.
    pub valid_for: Duration,
    /// Where the root's secret is, when not in the key directory.
    pub root_key: Option<PathBuf>,
}

/// The key that signs the policy, with what travels with it.
pub(super) struct Signer {
    pub key: SigningKey,
    pub endorsement: Option<Endorsement>,
    pub revocations: Option<SignedRevocations>,
    /// The root's public key, hex.
    pub root: String,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_secret(dir: &Path, name: &str, text: &str) -> Result<(), KeyError> {
    let target = dir.join(name);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    // tempfile creates files readable by the owner only.
    temp.write_all(text.as_bytes()).map_err(io(&target))?;
    temp.as_file().sync_all().map_err(io(&target))?;
    temp.persist(&target).map_err(|e| io(&target)(e.error))?;
    Ok(())
}

fn read_path(path: &Path) -> Result<Option<String>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn secret(path: &Path) -> Result<Option<SigningKey>, KeyError> {
    let Some(text) = read_path(path)? else {
        return Ok(None);
    };
    document::parse_secret(&text)
        .map(Some)
        .map_err(|e| KeyError::Damaged {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, KeyError> {
    let path = dir.join(name);
    let Some(text) = read_path(&path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| KeyError::Damaged {
            path,
            reason: e.to_string(),
        })
}

fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) -> Result<(), KeyError> {
    write_secret(
        dir,
        name,
        &serde_json::to_string(value).expect("plain data serializes"),
    )
}

/// The root's secret: `--root-key FILE`, else the key directory's; a registry from before the
/// root existed has only its signing key, which clients pinned, and which becomes the root.
fn root_secret(dir: &Path, root_key: Option<&Path>) -> Result<SigningKey, KeyError> {
    let path = root_key.map_or_else(|| dir.join(ROOT_FILE), Path::to_path_buf);
    if let Some(root) = secret(&path)? {
        let found = document::key_hex(&root.verifying_key());
        return match read_path(&dir.join(ROOT_PUBLIC))? {
            Some(known) if known != found => Err(KeyError::WrongRoot {
                path,
                found,
                root: known,
            }),
            _ => Ok(root),
        };
    }
    if read_path(&dir.join(ROOT_PUBLIC))?.is_none()
        && let Some(single) = secret(&dir.join(KEY_FILE))?
    {
        return Ok(single);
    }
    Err(KeyError::NoRoot(path))
}

/// Makes the registry's keys, or with `rotate` a new signing key endorsed by the root.
pub fn keygen(dir: &Path, options: &KeygenOptions, now: i64) -> Result<KeyReport, KeyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let old = secret(&dir.join(KEY_FILE))?;
    let root = match (&old, options.rotate) {
        (Some(_), false) => return Err(KeyError::Exists(dir.to_path_buf())),
        (None, true) => return Err(KeyError::Missing(dir.to_path_buf())),
        (Some(_), true) => {
            let root = root_secret(dir, options.root_key.as_deref())?;
            if options.root_key.is_none() && !dir.join(ROOT_FILE).exists() {
                // The single key of an older registry becomes the root.
                write_secret(dir, ROOT_FILE, &hex::encode(root.to_bytes()))?;
            }
            root
        }
        (None, false) => {
            let root = generate(dir)?;
            let path = options
                .root_key
                .clone()
                .unwrap_or_else(|| dir.join(ROOT_FILE));
            let parent = path.parent().unwrap_or(dir);
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(ROOT_FILE);
            write_secret(parent, name, &hex::encode(root.to_bytes()))?;
            root
        }
    };
    let root_public = document::key_hex(&root.verifying_key());
    let previous_key = match &old {
        Some(old) => {
            write_secret(dir, PREVIOUS, &hex::encode(old.to_bytes()))?;
            Some(document::key_hex(&old.verifying_key()))
        }
        None => None,
    };
    let new = generate(dir)?;
    let expires_at = now.saturating_add(options.valid_for.as_secs() as i64);
    let endorsement = document::endorse(&root, &new.verifying_key(), expires_at);
    write_secret(dir, ROOT_PUBLIC, &root_public)?;
    write_json(dir, ENDORSEMENT, &endorsement)?;
    write_secret(dir, KEY_FILE, &hex::encode(new.to_bytes()))?;
    Ok(KeyReport {
        public_key: root_public,
        signing_key: document::key_hex(&new.verifying_key()),
        previous_key,
        endorsement_expires_at: expires_at,
    })
}

fn generate(dir: &Path) -> Result<SigningKey, KeyError> {
    document::generate().map_err(|e| io(dir)(std::io::Error::other(e.to_string())))
}

/// Adds `key` (hex) to the root's revocation list.
pub fn revoke(
    dir: &Path,
    key: &str,
    root_key: Option<&Path>,
    now: i64,
) -> Result<RevokeReport, KeyError> {
    let current = signer(dir)?.ok_or_else(|| KeyError::Missing(dir.to_path_buf()))?;
    let key = key.trim().to_ascii_lowercase();
    if document::parse_key(&key).is_err() {
        return Err(KeyError::NotAKey(key));
    }
    if document::key_hex(&current.key.verifying_key()) == key {
        return Err(KeyError::RevokingCurrent(key));
    }
    if current.root == key {
        return Err(KeyError::RevokingRoot(key));
    }
    let root = root_secret(dir, root_key)?;
    let mut list: Revocations = current.revocations.map(|r| r.list).unwrap_or_default();
    list.version += 1;
    list.issued_at = now;
    list.keys.push(key);
    list.keys.sort();
    list.keys.dedup();
    let signed = document::sign_revocations(&root, list);
    write_json(dir, REVOKED, &signed)?;
    Ok(RevokeReport {
        version: signed.list.version,
        revoked: signed.list.keys,
    })
}

/// The registry's signer, or `None` when no key was made.
pub(super) fn signer(dir: &Path) -> Result<Option<Signer>, KeyError> {
    let Some(key) = secret(&dir.join(KEY_FILE))? else {
        return Ok(None);
    };
    let root = read_path(&dir.join(ROOT_PUBLIC))?
        .unwrap_or_else(|| document::key_hex(&key.verifying_key()));
    Ok(Some(Signer {
        endorsement: json(dir, ENDORSEMENT)?,
        revocations: json(dir, REVOKED)?,
        key,
        root,
    }))
}
