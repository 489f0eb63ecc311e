//! What a command ends with: an [`ExitStatus`], or a [`Failure`] rendered once with its hints.
//! Every exit code webcpm returns is decided here, in [`ExitStatus::code`], and every library
//! error is turned into a failure kind here, by the `From` impls below.
//!
//! Exit codes: 0 success; the program's own code for `run` (130 after Ctrl-C, 134 after a trap);
//! 1 a package, resolution or integrity failure; 2 a usage, network, store or internal failure.

use crate::artifacts::PrepareError;
use crate::fetch::FetchError;
use crate::install::InstallError;
use crate::registry::RegistryError;
use crate::registry::publish::PublishClientError;
use crate::resolver::ResolveError;
use crate::run::LaunchError;
use crate::settings::SettingsError;
use crate::store::{IndexError, StoreError};

/// What went wrong, in the words of `--json`'s `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FailureKind {
    Usage,
    Network,
    Store,
    Internal,
    Package,
    Resolution,
    Integrity,
}

/// How webcpm exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExitStatus {
    Success,
    /// A command that did its job but found something wrong (e.g. `cache verify`).
    Failed(FailureKind),
    /// The program that `run` ran exited with this code.
    Program(i32),
    /// The program was stopped by Ctrl-C.
    Interrupted,
    /// The program trapped or ran out of time (as a process killed by SIGABRT).
    Trapped,
}

impl ExitStatus {
    /// The process's exit code.
    pub(super) fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed(kind) => match kind {
                FailureKind::Package | FailureKind::Resolution | FailureKind::Integrity => 1,
                FailureKind::Usage
                | FailureKind::Network
                | FailureKind::Store
                | FailureKind::Internal => 2,
            },
            ExitStatus::Program(code) => code,
            ExitStatus::Interrupted => 130,
            ExitStatus::Trapped => 134,
        }
    }
}

/// A failure rendered for the user.
#[derive(Debug)]
pub(super) struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub hints: Vec<String>,
    pub status: ExitStatus,
}

impl Failure {
    pub(super) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            hints: Vec::new(),
            status: ExitStatus::Failed(kind),
        }
    }

    pub(super) fn usage(message: impl Into<String>) -> Self {
        Failure::new(FailureKind::Usage, message)
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Failure::new(FailureKind::Internal, message)
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Ends with another status than its kind's (a trapped program).
    pub(super) fn with_status(mut self, status: ExitStatus) -> Self {
        self.status = status;
        self
    }

    /// Prints the failure on stderr, and as JSON on stdout with `--json`.
    pub(super) fn render(&self, json: bool) {
        webcpm_cli_common::render_failure(json, &self.message, &self.kind, &self.hints);
    }
}

const WRITABLE: &str = "check that the store's directory (--home) is writable and has space";
const DISK_FULL: &str = "the disk is full or a file-size limit was reached: free some space (`webcpm cache gc` removes what no install uses) and run it again; nothing partial was kept";

impl From<SettingsError> for Failure {
    fn from(e: SettingsError) -> Self {
        Failure::usage(e.to_string())
            .hint("`webcpm config show` prints every setting and where it came from")
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let failure = Failure::new(FailureKind::Store, e.to_string());
        match e {
            StoreError::Index(IndexError::TooNew { .. }) => failure,
            _ => failure.hint(WRITABLE),
        }
    }
}

impl From<IndexError> for Failure {
    fn from(e: IndexError) -> Self {
        StoreError::from(e).into()
    }
}

/// The kind of an install failure.
fn install_kind(e: &InstallError) -> FailureKind {
    match e {
        InstallError::Fetch { source, .. } => match **source {
            FetchError::Transport { .. } | FetchError::Status { .. } => FailureKind::Network,
            FetchError::Store(_) => FailureKind::Store,
            _ => FailureKind::Integrity,
        },
        InstallError::Registry(r) if r.is_transient() => FailureKind::Network,
        InstallError::Registry(RegistryError::Url(_)) => FailureKind::Usage,
        InstallError::Registry(_) => FailureKind::Resolution,
        InstallError::Store(_) => FailureKind::Store,
        InstallError::Prepare(PrepareError::Container { .. }) => FailureKind::Integrity,
        InstallError::Prepare(_) => FailureKind::Store,
        InstallError::Input(_) => FailureKind::Usage,
        InstallError::Resolve(_) | InstallError::Offline(_) => FailureKind::Resolution,
    }
}

/// The store error inside an install error, if that is what it is.
fn install_store_error(e: &InstallError) -> Option<&StoreError> {
    match e {
        InstallError::Store(s) | InstallError::Prepare(PrepareError::Store(s)) => Some(s),
        InstallError::Fetch { source, .. } => match &**source {
            FetchError::Store(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// The hint for an install failure, if there is one.
fn install_hint(e: &InstallError) -> Option<&'static str> {
    Some(match e {
        InstallError::Fetch { source, .. } => match **source {
            FetchError::HashMismatch { .. }
            | FetchError::SizeMismatch { .. }
            | FetchError::WrongFormat { .. }
            | FetchError::ServesOther { .. }
            | FetchError::TooLong { .. }
            | FetchError::Container { .. } => {
                "the registry's file is not what it advertises; nothing was stored. Report it to the registry, or allow the other format (drop --no-fallback / --webc)"
            }
            FetchError::Transport { .. } | FetchError::Status { .. } => {
                "check the network and try again"
            }
            FetchError::TooLarge { .. } | FetchError::OverLimit { .. } => {
                "raise download.max_size (WEBCPM_MAX_SIZE) if the package is meant to be this large"
            }
            _ => return None,
        },
        InstallError::Resolve(ResolveError::NotFound(_)) => {
            "check the name, and the registry it was asked of (--registry or WEBCPM_REGISTRY)"
        }
        InstallError::Offline(_) => "run it again without --offline",
        InstallError::Registry(r) if r.is_transient() => {
            "check the registry URL (--registry or WEBCPM_REGISTRY) and the network"
        }
        InstallError::Store(_) => WRITABLE,
        _ => return None,
    })
}

impl From<InstallError> for Failure {
    fn from(e: InstallError) -> Self {
        if install_store_error(&e).is_some_and(StoreError::is_disk_full) {
            return Failure::new(FailureKind::Store, e.to_string()).hint(DISK_FULL);
        }
        let failure = Failure::new(install_kind(&e), e.to_string());
        match install_hint(&e) {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }
}

impl From<LaunchError> for Failure {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::NotInstalled(ref p) => Failure::new(FailureKind::Package, e.to_string())
                .hint(format!("install it with `webcpm install {p}`")),
            LaunchError::NoWorkingDirectory { .. } | LaunchError::UsesNeedWasix { .. } => {
                Failure::new(FailureKind::Usage, e.to_string())
            }
            LaunchError::UnsafeMount { .. } => Failure::new(FailureKind::Integrity, e.to_string()),
            LaunchError::Store(_) | LaunchError::Prepare(PrepareError::Store(_)) => {
                Failure::new(FailureKind::Store, e.to_string())
                    .hint("run `webcpm cache verify` to check the store")
            }
            _ => Failure::new(FailureKind::Package, e.to_string()),
        }
    }
}

/// Bad input to the local registry is a package failure (exit 1); its disk, a store failure.
/// A package the registry will not take is a package failure (exit 1); a refused token, the
/// network or the settings, exit 2.
impl From<PublishClientError> for Failure {
    fn from(e: PublishClientError) -> Self {
        let hint = match &e {
            PublishClientError::Unauthorized { .. } => Some(
                "give a token of this registry: WEBCPM_TOKEN, `webcpm login`, or registry.credential_process; `webcpm registry token create --root DIR --namespace NS` makes one for a local registry",
            ),
            PublishClientError::Forbidden { .. } => {
                Some("use a token made for the package's namespace")
            }
            PublishClientError::Exists { .. } => {
                Some("raise the version in wasmer.toml and publish again")
            }
            PublishClientError::Url(_) => {
                Some("set the registry with --registry URL or WEBCPM_REGISTRY")
            }
            _ => None,
        };
        let kind = match &e {
            _ if e.is_package() => FailureKind::Package,
            PublishClientError::Url(_)
            | PublishClientError::Unauthorized { .. }
            | PublishClientError::Forbidden { .. } => FailureKind::Usage,
            _ => FailureKind::Network,
        };
        let failure = Failure::new(kind, e.to_string());
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }
}

/// A bad namespace is a usage failure; the registry's disk, a store failure.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_codes() {
        use FailureKind::*;
        for (kind, code) in [
            (Usage, 2),
            (Network, 2),
            (Store, 2),
            (Internal, 2),
            (Package, 1),
            (Resolution, 1),
            (Integrity, 1),
        ] {
            assert_eq!(ExitStatus::Failed(kind).code(), code, "{kind:?}");
            assert_eq!(Failure::new(kind, "x").status.code(), code);
        }
        assert_eq!(ExitStatus::Interrupted.code(), 130);
        assert_eq!(ExitStatus::Trapped.code(), 134);
        assert_eq!(ExitStatus::Program(7).code(), 7);
        assert_eq!(
            serde_json::to_value(FailureKind::Resolution).unwrap(),
            "resolution"
        );
    }
}
