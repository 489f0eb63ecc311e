//! What a registry command ends with: an [`ExitStatus`], or a [`Failure`] rendered once with its
//! hints, in the same codes and `--json` shape as `webcpm`'s: 0 success; 1 a package the
//! registry refuses; 2 a usage, store or internal failure.

use crate::fleet::{FleetError, KeyError};
use crate::{PublishError, StorageError, TokenError};

/// What went wrong, in the words of `--json`'s `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FailureKind {
    Usage,
    Store,
    Internal,
    Package,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    Success,
    Failed(FailureKind),
}

impl ExitStatus {
    /// The process's exit code.
    pub(crate) fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed(FailureKind::Package) => 1,
            ExitStatus::Failed(_) => 2,
        }
    }
}

/// A failure rendered for the operator.
#[derive(Debug)]
pub(crate) struct Failure {
    kind: FailureKind,
    message: String,
    hints: Vec<String>,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::new(FailureKind::Usage, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Failure::new(FailureKind::Internal, message)
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub(crate) fn status(&self) -> ExitStatus {
        ExitStatus::Failed(self.kind)
    }

    /// Prints the failure on stderr, and as JSON on stdout with `--json`.
    pub(crate) fn render(&self, json: bool) {
        webcpm_cli_common::render_failure(json, &self.message, &self.kind, &self.hints);
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::usage(e.to_string())
    }
}

impl From<FleetError> for Failure {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::Refused(why) => Failure::usage(why),
            e => Failure::new(FailureKind::Store, e.to_string())
                .hint("check the registry root (--root) and its permissions"),
        }
    }
}

impl From<KeyError> for Failure {
    fn from(e: KeyError) -> Self {
        Failure::usage(e.to_string())
    }
}

/// A package the registry will not take is a package failure (exit 1); its storage, exit 2.
impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        let kind = if e.is_input() {
            FailureKind::Package
        } else {
            FailureKind::Store
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::BadNamespace(_)
            | TokenError::BadUser(_)
            | TokenError::Unknown(_)
            | TokenError::NoName => Failure::usage(e.to_string()),
            _ => Failure::new(FailureKind::Store, e.to_string()),
        }
    }
}
