//! How the package types sit in the index's columns, and what a value that does not parse
//! becomes.
//!
//! Every type is stored as the text it is written as everywhere else: a [`PackageName`] in its
//! lower-case form, a [`Sha256Digest`] as 64 lower-case hex digits, a [`WebcVersion`] as `v2` or
//! `v3`, a version as semver prints it. Reading parses that text with the type's own `FromStr`, so
//! a column can never hand out a value its type would refuse.
//!
//! A text that does not parse is a [`CorruptValue`] naming what the column should hold; the index
//! reports it as [`IndexError::Corrupt`](IndexError::Corrupt) (see [`index_error`]), or,
//! where a corrupt value has always been read as absent, [`lenient`] reads it as `None`. A value of
//! the wrong SQLite type stays an ordinary SQLite error, as it is for a `String` column.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlResult, ValueRef};

use webcpm_formats::sql::{CorruptValue, parse};

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the store's index {path} has schema version {found}, newer than this webcpm knows ({known}); upgrade webcpm or use another --home"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "index {path}: a row holds `{value}`, which is not a valid {what}; run `webcpm cache verify`"
    )]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A package version read from a column (`semver::Version` is not this crate's, so the
/// conversion lives on this wrapper); it is written as `version.to_string()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Semver(pub semver::Version);

impl FromSql for Semver {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        parse(value, "version").map(Semver)
    }
}

/// Reads column `idx` as a `T`, or `None` when it is NULL or does not parse: for the columns
/// whose corrupt values have always been read as absent (a distribution's claimed format, an
/// artifact's file digest). Any other failure is still an error.
pub(super) fn lenient<T: FromSql>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<T>>(idx) {
        Err(rusqlite::Error::FromSqlConversionFailure(_, _, e)) if e.is::<CorruptValue>() => {
            Ok(None)
        }
        read => read,
    }
}

/// What a failed read or write of the index at `path` is reported as: a corrupt value as
/// [`IndexError::Corrupt`], anything else as [`IndexError::Sqlite`].
pub(super) fn index_error(path: &Path, source: rusqlite::Error) -> IndexError {
    let source = match source {
        rusqlite::Error::FromSqlConversionFailure(idx, kind, e) => {
            match e.downcast::<CorruptValue>() {
                Ok(corrupt) => {
                    return IndexError::Corrupt {
                        path: path.to_path_buf(),
                        what: corrupt.what,
                        value: corrupt.value,
                    };
                }
                Err(e) => rusqlite::Error::FromSqlConversionFailure(idx, kind, e),
            }
        }
        source => source,
    };
    IndexError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use webcpm_formats::package::{PackageName, Sha256Digest, WebcVersion};

    fn select<T: FromSql>(text: &str) -> rusqlite::Result<T> {
        Connection::open_in_memory()
            .unwrap()
            .query_row("SELECT ?1", [text], |r| r.get(0))
    }

    #[test]
    fn values_are_stored_as_their_text_and_read_back() {
        let conn = Connection::open_in_memory().unwrap();
        let name: PackageName = "Ns/Pkg".parse().unwrap();
        let digest = Sha256Digest::of(b"abc");
        let version = semver::Version::new(1, 2, 3);
        let row: (String, String, String, String) = conn
            .query_row(
                "SELECT ?1, ?2, ?3, ?4",
                rusqlite::params![name, digest, WebcVersion::V3, version.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "ns/pkg".to_string(),
                digest.hex(),
                "v3".to_string(),
                "1.2.3".to_string()
            )
        );
        assert_eq!(select::<PackageName>("ns/pkg").unwrap(), name);
        assert_eq!(select::<Sha256Digest>(&digest.hex()).unwrap(), digest);
        assert_eq!(select::<WebcVersion>("v3").unwrap(), WebcVersion::V3);
        assert_eq!(select::<Semver>("1.2.3").unwrap().0, version);
    }

    #[test]
    fn a_corrupt_value_is_reported_with_what_it_should_be() {
        let err = select::<Sha256Digest>("not a digest").unwrap_err();
        match index_error(Path::new("index.sqlite"), err) {
            IndexError::Corrupt { what, value, .. } => {
                assert_eq!((what, value.as_str()), ("digest", "not a digest"));
            }
            other => panic!("{other:?}"),
        }
        let err = select::<Semver>("one").unwrap_err();
        assert!(matches!(
            index_error(Path::new("index.sqlite"), err),
            IndexError::Corrupt {
                what: "version",
                ..
            }
        ));
    }

    #[test]
    fn lenient_reads_corrupt_and_null_as_none_but_not_a_wrong_type() {
        let conn = Connection::open_in_memory().unwrap();
        let read = |sql: &str| conn.query_row(sql, [], |r| lenient::<WebcVersion>(r, 0));
        assert_eq!(read("SELECT 'v2'").unwrap(), Some(WebcVersion::V2));
        assert_eq!(read("SELECT 'v9'").unwrap(), None);
        assert_eq!(read("SELECT NULL").unwrap(), None);
        assert!(read("SELECT 2").is_err());
    }
}
