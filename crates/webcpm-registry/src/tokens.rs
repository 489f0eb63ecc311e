//! Publish tokens: `webcpm-registry token create --root DIR --namespace NS` makes a token that may
//! publish into the namespace `NS` of that registry, and `registry serve` checks the bearer token
//! of every publish against them.
//!
//! A token is `wcpm_` and 64 hex digits from the system's random source. The registry keeps only
//! the SHA-256 of its text (table `tokens`, see [`super::db`]), so that a copy of the registry's
//! directory gives no one the right to publish; the token is shown once, when it is made.

use std::path::PathBuf;

use serde::Serialize;

use super::db::sql::args;
use super::db::{Db, DbError, unix_now};
use super::storage::Storage;
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
pub fn create(storage: &Storage, namespace: &str) -> Result<NewToken, TokenError> {
    let namespace = check_namespace(namespace)?;
    let root = &storage.root;
    std::fs::create_dir_all(root).map_err(|source| TokenError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let sha256 = Sha256Digest::of(token.as_bytes());
    let mut db = Db::open(&storage.database)?;
    let sql = db.sql();
    db.conn()
        .execute(
            "INSERT INTO tokens (sha256, namespace, created_at) VALUES ($1, $2, $3)",
            args![sha256.hex(), namespace.as_str(), unix_now()],
        )
        .map_err(sql)?;
    Ok(NewToken {
        token,
        namespace,
        sha256,
    })
}

/// The namespace a token may publish into; `None` for a token the registry does not know.
pub(crate) fn namespace_of(db: &mut Db, token: &str) -> Result<Option<String>, DbError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let sha256 = Sha256Digest::of(token.as_bytes());
    let sql = db.sql();
    let row = db
        .conn()
        .query_opt(
            "SELECT namespace FROM tokens WHERE sha256 = $1",
            args![sha256.hex()],
        )
        .map_err(&sql)?;
    row.map(|r| r.text(0))
        .transpose()
        .map_err(|e| sql(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_kept_and_it_names_the_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("registry");
        let storage = Storage::local(&root);
        let made = create(&storage, "Acme").unwrap();
        assert_eq!(made.namespace, "acme");
        assert!(made.token.starts_with(PREFIX) && made.token.len() == PREFIX.len() + 64);
        let other = create(&storage, "acme").unwrap();
        assert_ne!(made.token, other.token);

        let file = std::fs::read(root.join(super::super::db::DB_FILE)).unwrap();
        let text = String::from_utf8_lossy(&file);
        assert!(
            !text.contains(&made.token[PREFIX.len()..]),
            "the token is stored"
        );

        let mut db = Db::open(&storage.database).unwrap();
        assert_eq!(
            namespace_of(&mut db, &made.token).unwrap().as_deref(),
            Some("acme")
        );
        let forged = format!("{PREFIX}{}", "0".repeat(64));
        assert_eq!(namespace_of(&mut db, &forged).unwrap(), None);
        assert_eq!(namespace_of(&mut db, "").unwrap(), None);

        for bad in ["", "a/b", "with space", "ü"] {
            assert!(
                matches!(create(&storage, bad), Err(TokenError::BadNamespace(_))),
                "{bad}"
            );
        }
    }
}
