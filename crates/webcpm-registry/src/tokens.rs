//! Publish tokens: `webcpm-registry token create --root DIR --namespace NS` makes a token that may
//! publish into the namespace `NS` of that registry, and `registry serve` checks the bearer token
//! of every publish against them.
//!
//! A token is `wcpm_` and 64 hex digits from the system's random source. The registry keeps only
//! the SHA-256 of its text (table `tokens`, see [`super::db`]), so that a copy of the registry's
//! directory gives no one the right to publish; the token is shown once, when it is made.
//!
//! Report tokens (`token create --reports --name NAME`, `wcpr_` and 64 hex digits, table
//! `report_tokens`) let clients post outcome reports (see [`crate::fleet`]); a fleet, a site or a
//! team each get one. `token revoke TOKEN_OR_SHA256` removes either kind; revoking a report
//! token also removes every report that came with it, so a leaked token's forgeries stop
//! counting at once.

use std::path::PathBuf;

use serde::Serialize;

use super::db::sql::args;
use super::db::{Db, DbError, unix_now};
use super::storage::Storage;
use crate::package::{PackageName, Sha256Digest};

/// What every token starts with, so that a leaked one is easy to recognise.
const PREFIX: &str = "wcpm_";
/// What every report token starts with.
const REPORT_PREFIX: &str = "wcpr_";

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
    #[error(
        "this registry has no token `{0}`; give the token's text or its sha256 as `token create` printed it"
    )]
    Unknown(String),
    #[error("`{0}` is not a user name; use 1 to 64 letters, digits, `-`, `_` and `.`")]
    BadUser(String),
    #[error("a report token needs a name (--name), such as the fleet or site it is for")]
    NoName,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A report token just made.
#[derive(Debug, Clone, Serialize)]
pub struct NewReportToken {
    pub token: String,
    pub name: String,
    pub sha256: Sha256Digest,
}

/// What `token revoke` removed.
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    pub sha256: Sha256Digest,
    /// `publish` or `reports`.
    pub kind: &'static str,
    /// The reports that came with it, now gone.
    pub reports_removed: u64,
}

/// A token just made: the only time its text is known.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    pub token: String,
    pub namespace: String,
    /// Who publishes with it: the `publishedBy` of what it publishes.
    pub user: String,
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

/// A user name: what `publishedBy { username }` says of the versions a token publishes.
pub(crate) fn check_user(user: &str) -> Result<String, TokenError> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(user.to_string()),
        false => Err(TokenError::BadUser(user.to_string())),
    }
}

/// Makes a token for `namespace` in the registry at `root` (created when missing) and stores
/// its hash. `user` is who publishes with it (by default the namespace).
pub fn create(
    storage: &Storage,
    namespace: &str,
    user: Option<&str>,
) -> Result<NewToken, TokenError> {
    let namespace = check_namespace(namespace)?;
    let user = check_user(user.unwrap_or(&namespace))?;
    let (token, sha256, mut db) = new_token(storage, PREFIX)?;
    let sql = db.sql();
    db.conn()
        .execute(
            "INSERT INTO tokens (sha256, namespace, created_at, user_name) VALUES ($1, $2, $3, $4)",
            args![sha256.hex(), namespace.as_str(), unix_now(), user.as_str()],
        )
        .map_err(sql)?;
    Ok(NewToken {
        token,
        namespace,
        user,
        sha256,
    })
}

/// A fresh token's text and hash, and the registry's database (created when missing).
fn new_token(storage: &Storage, prefix: &str) -> Result<(String, Sha256Digest, Db), TokenError> {
    let root = &storage.root;
    std::fs::create_dir_all(root).map_err(|source| TokenError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{prefix}{}", hex::encode(bytes));
    let sha256 = Sha256Digest::of(token.as_bytes());
    Ok((token, sha256, Db::open(&storage.database)?))
}

/// Makes a report token named `name` (a fleet, a site) and stores its hash.
pub fn create_report_token(storage: &Storage, name: &str) -> Result<NewReportToken, TokenError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(TokenError::NoName);
    }
    let (token, sha256, mut db) = new_token(storage, REPORT_PREFIX)?;
    let sql = db.sql();
    db.conn()
        .execute(
            "INSERT INTO report_tokens (sha256, name, created_at) VALUES ($1, $2, $3)",
            args![sha256.hex(), name, unix_now()],
        )
        .map_err(sql)?;
    Ok(NewReportToken {
        token,
        name: name.to_string(),
        sha256,
    })
}

/// The SHA-256 (hex) of a report token the registry knows; `None` for any other text.
pub(crate) fn report_token(db: &mut Db, token: &str) -> Result<Option<String>, DbError> {
    if !token.starts_with(REPORT_PREFIX) {
        return Ok(None);
    }
    let sha256 = Sha256Digest::of(token.as_bytes()).hex();
    let sql = db.sql();
    let row = db
        .conn()
        .query_opt(
            "SELECT sha256 FROM report_tokens WHERE sha256 = $1",
            args![sha256.as_str()],
        )
        .map_err(&sql)?;
    Ok(row.map(|_| sha256))
}

/// Removes a token of either kind, given as its text or its SHA-256 (hex), and the reports
/// that came with a report token.
pub fn revoke(storage: &Storage, token: &str) -> Result<Revoked, TokenError> {
    let text = token.trim();
    let sha256 = match text.parse::<Sha256Digest>() {
        Ok(digest) => digest,
        Err(_) => Sha256Digest::of(text.as_bytes()),
    };
    let mut db = Db::open(&storage.database)?;
    let sql = db.sql();
    let hex = sha256.hex();
    db.conn()
        .transaction(|tx| {
            if tx.execute("DELETE FROM tokens WHERE sha256 = $1", args![hex.as_str()])? > 0 {
                return Ok(Some(("publish", 0)));
            }
            if tx.execute(
                "DELETE FROM report_tokens WHERE sha256 = $1",
                args![hex.as_str()],
            )? == 0
            {
                return Ok(None);
            }
            let removed =
                tx.execute("DELETE FROM reports WHERE token = $1", args![hex.as_str()])?;
            Ok(Some(("reports", removed)))
        })
        .map_err(sql)?
        .map(|(kind, reports_removed)| Revoked {
            sha256,
            kind,
            reports_removed,
        })
        .ok_or_else(|| TokenError::Unknown(text.chars().take(12).collect()))
}

/// Who holds a publish token: the namespace it may publish into and the user it publishes as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub namespace: String,
    pub user: String,
}

/// The holder of a publish token; `None` for a token the registry does not know. A token made
/// before tokens named their user publishes as its namespace.
pub(crate) fn holder(db: &mut Db, token: &str) -> Result<Option<Holder>, DbError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let sha256 = Sha256Digest::of(token.as_bytes());
    let sql = db.sql();
    let row = db
        .conn()
        .query_opt(
            "SELECT namespace, COALESCE(user_name, namespace) FROM tokens WHERE sha256 = $1",
            args![sha256.hex()],
        )
        .map_err(&sql)?;
    let Some(row) = row else { return Ok(None) };
    let text = |i| row.text(i).map_err(|e| sql(e.into()));
    Ok(Some(Holder {
        namespace: text(0)?,
        user: text(1)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_kept_and_it_names_the_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("registry");
        let storage = Storage::local(&root);
        let made = create(&storage, "Acme", None).unwrap();
        assert_eq!(
            (made.namespace.as_str(), made.user.as_str()),
            ("acme", "acme")
        );
        assert!(made.token.starts_with(PREFIX) && made.token.len() == PREFIX.len() + 64);
        let other = create(&storage, "acme", Some("alice")).unwrap();
        assert_ne!(made.token, other.token);

        let file = std::fs::read(root.join(super::super::db::DB_FILE)).unwrap();
        let text = String::from_utf8_lossy(&file);
        assert!(
            !text.contains(&made.token[PREFIX.len()..]),
            "the token is stored"
        );

        let mut db = Db::open(&storage.database).unwrap();
        let of = |db: &mut Db, token: &str| holder(db, token).unwrap();
        let alice = of(&mut db, &other.token).unwrap();
        assert_eq!(
            (alice.namespace.as_str(), alice.user.as_str()),
            ("acme", "alice")
        );
        assert_eq!(of(&mut db, &made.token).unwrap().user, "acme");
        let forged = format!("{PREFIX}{}", "0".repeat(64));
        assert_eq!(of(&mut db, &forged), None);
        assert_eq!(of(&mut db, ""), None);
        assert!(matches!(
            create(&storage, "acme", Some("a b")),
            Err(TokenError::BadUser(_))
        ));

        for bad in ["", "a/b", "with space", "ü"] {
            assert!(
                matches!(
                    create(&storage, bad, None),
                    Err(TokenError::BadNamespace(_))
                ),
                "{bad}"
            );
        }
    }
}
