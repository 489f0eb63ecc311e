//! Publish tokens: `webcpm registry token create --root DIR --namespace NS` makes a token that may
//! publish into the namespace `NS` of that registry, and `registry serve` checks the bearer token
//! of every publish against them.
//!
//! A token is `wcpm_` and 64 hex digits from the system's random source. The registry keeps only
//! the SHA-256 of its text (table `tokens`, see [`super::db`]), so that a copy of the registry's
//! directory gives no one the right to publish; the token is shown once, when it is made.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::db::{Db, DbError, unix_now};
use crate::package::{PackageName, Sha256Digest};

/// What every token starts with, so that a leaked one is easy to recognise.
const PREFIX: &str = "wcpm_";

/// Why a token could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "`{0}` is not a namespace; use letters, digits, `-`, `_` and `.`, as in the `ns` of `ns/name`"
    )]
    BadNamespace(String),
    #[error("cannot create the registry directory {path}: {source}; check the path")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw random bytes for a token: {0}; try again")]
    Random(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A token just made: the only time its text is known.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    pub token: String,
    pub namespace: String,
    /// The SHA-256 of the token's text: what the registry keeps.
    pub sha256: Sha256Digest,
}

/// The namespace part of `ns/name` rules, checked on its own.
fn check_namespace(namespace: &str) -> Result<String, TokenError> {
    let probe: PackageName = format!("{namespace}/x")
        .parse()
        .map_err(|_| TokenError::BadNamespace(namespace.to_string()))?;
    Ok(probe.namespace().to_string())
}

/// Makes a token for `namespace` in the registry at `root` (created when missing) and stores
/// its hash.
pub fn create(root: &Path, namespace: &str) -> Result<NewToken, TokenError> {
    let namespace = check_namespace(namespace)?;
    std::fs::create_dir_all(root).map_err(|source| TokenError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let sha256 = Sha256Digest::of(token.as_bytes());
    let db = Db::open(root)?;
    db.conn_ref()
        .execute(
            "INSERT INTO tokens (sha256, namespace, created_at) VALUES (?1, ?2, ?3)",
            params![sha256.hex(), namespace, unix_now()],
        )
        .map_err(db.sql())?;
    Ok(NewToken {
        token,
        namespace,
        sha256,
    })
}

/// The namespace a token may publish into; `None` for a token the registry does not know.
pub fn namespace_of(db: &Db, token: &str) -> Result<Option<String>, DbError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let sha256 = Sha256Digest::of(token.as_bytes());
    db.conn_ref()
        .query_row(
            "SELECT namespace FROM tokens WHERE sha256 = ?1",
            params![sha256.hex()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db.sql())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_kept_and_it_names_the_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("registry");
        let made = create(&root, "Acme").unwrap();
        assert_eq!(made.namespace, "acme");
        assert!(made.token.starts_with(PREFIX) && made.token.len() == PREFIX.len() + 64);
        let other = create(&root, "acme").unwrap();
        assert_ne!(made.token, other.token);

        let file = std::fs::read(root.join(super::super::db::DB_FILE)).unwrap();
        let text = String::from_utf8_lossy(&file);
        assert!(
            !text.contains(&made.token[PREFIX.len()..]),
            "the token is stored"
        );

        let db = Db::open(&root).unwrap();
        assert_eq!(
            namespace_of(&db, &made.token).unwrap().as_deref(),
            Some("acme")
        );
        let forged = format!("{PREFIX}{}", "0".repeat(64));
        assert_eq!(namespace_of(&db, &forged).unwrap(), None);
        assert_eq!(namespace_of(&db, "").unwrap(), None);

        for bad in ["", "a/b", "with space", "ü"] {
            assert!(
                matches!(create(&root, bad), Err(TokenError::BadNamespace(_))),
                "{bad}"
            );
        }
    }
}
