//! How the package types sit in SQLite columns (feature `sql`, for the store's index and the
//! registry's database): each as the text it is written as everywhere else, read back with the
//! type's own `FromStr`, so that a column can never hand out a value its type would refuse. A
//! text that does not parse is a [`CorruptValue`] naming what the column should hold.

use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::package::{Abi, CandidateOutcome, PackageName, Sha256Digest, WebcVersion};

/// A value in a row that does not parse as what its column holds.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a valid {what}")]
pub struct CorruptValue {
    pub what: &'static str,
    pub value: String,
}

/// Reads a text column as a `T`, or a [`CorruptValue`] naming `what`.
pub fn parse<T: FromStr>(value: ValueRef<'_>, what: &'static str) -> FromSqlResult<T> {
    let text = value.as_str()?;
    text.parse().map_err(|_| {
        FromSqlError::other(CorruptValue {
            what,
            value: text.to_string(),
        })
    })
}

/// Stores `$ty` as the text `$text` gives, and reads it back with `$ty`'s `FromStr`; a text that
/// does not parse is a corrupt `$what`.
macro_rules! text_column {
    ($ty:ty, $what:literal, $text:expr) => {
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                parse(value, $what)
            }
        }

        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from($text(self)))
            }
        }
    };
}

text_column!(PackageName, "package name", PackageName::as_str);
text_column!(Sha256Digest, "digest", Sha256Digest::hex);
text_column!(WebcVersion, "format", |w: &WebcVersion| w.as_str());
text_column!(Abi, "ABI", |a: &Abi| a.as_str());
text_column!(
    CandidateOutcome,
    "candidate outcome",
    |o: &CandidateOutcome| o.as_str()
);
