//! What every part of the container module shares: why a container is refused, its format,
//! a container that passed the checks, the guard around the `webc` crate's panics, and the
//! names of paths inside volumes and of the directories volumes are unpacked into.

use std::panic::AssertUnwindSafe;

use webc::Container;
use webc::metadata::Manifest;

use crate::package::{Sha256Digest, WebcVersion};

/// Why a container was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("not a WebC file (its first bytes are not the WebC magic)")]
    NotWebc,
    #[error("WebC version `{0}` is not supported (expected 001, 002 or 003)")]
    UnsupportedVersion(String),
    #[error("malformed WebC {format}: {reason}")]
    Malformed { format: String, reason: String },
    #[error("unsafe path in volume `{volume}`: `{path}` ({reason})")]
    UnsafePath {
        volume: String,
        path: String,
        reason: &'static str,
    },
    #[error("unsafe {field} `{value}` in the manifest ({reason})")]
    UnsafeField {
        field: String,
        value: String,
        reason: &'static str,
    },
    #[error(
        "the package would unpack to more than {limit} {what}; if it is genuine, raise store.unpack_ratio"
    )]
    TooLarge { what: &'static str, limit: u64 },
    #[error("command `{command}` names atom `{atom}`, which the package does not contain")]
    MissingAtom { command: String, atom: String },
    #[error("could not convert to WebC {target}: {reason}")]
    Convert { target: WebcVersion, reason: String },
    #[error("the package has no command named `{requested}`; it has: {}", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    UnknownCommand {
        requested: String,
        available: Vec<String>,
    },
    #[error("the package has {} commands and no entrypoint; pick one with --command: {}", available.len(), available.join(", "))]
    AmbiguousCommand { available: Vec<String> },
    #[error("the package has no commands to run")]
    NoCommand,
    #[error(
        "command `{command}` uses runner `{runner}`, which webcpm cannot run (it runs WASI commands)"
    )]
    UnsupportedRunner { command: String, runner: String },
    #[error("cannot unpack `{path}`: {source}")]
    Unpack {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The format of a WebC file as its magic bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V1,
    Current(WebcVersion),
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::V1 => f.write_str("v1"),
            Format::Current(v) => v.fmt(f),
        }
    }
}

/// A parsed container that passed every check in this module.
#[derive(Debug, Clone)]
pub struct Checked {
    pub format: Format,
    pub container: Container,
}

impl Checked {
    pub fn manifest(&self) -> &Manifest {
        self.container.manifest()
    }

    /// The atoms with their SHA-256, in name order. The digest is the manifest's signature of
    /// the atom when it has one ([`open`] checked that it matches); only atoms without one are
    /// hashed here.
    pub fn atoms(&self) -> Vec<(String, Sha256Digest, u64)> {
        let manifest = self.container.manifest();
        self.container
            .atoms()
            .into_iter()
            .map(|(name, bytes)| {
                let signed = match manifest.atom_signature(&name) {
                    Ok(sig) => <[u8; 32]>::try_from(sig.as_bytes()).ok(),
                    Err(_) => None,
                };
                let digest = match signed {
                    Some(d) if self.format != Format::V1 => Sha256Digest(d),
                    _ => Sha256Digest::of(&bytes),
                };
                (name, digest, bytes.len() as u64)
            })
            .collect()
    }
}

thread_local! {
    /// Set while [`catch`] runs: a panic then is an expected outcome, not a crash to report.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs the `webc` crate's code, turning its panics into errors. The panic hook stays silent
/// for them (a hostile file must not print a crash report); other panics are reported as usual.
pub(super) fn catch<T>(what: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    let outer = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(what));
    CATCHING.with(|c| c.set(outer));
    result.map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        match text {
            Some(text) => format!("the WebC reader gave up on this file ({text})"),
            None => "the WebC reader gave up on this file".to_string(),
        }
    })
}

/// The absolute path inside a volume for a list of components (`/` for none: the `webc` crate
/// reads an empty path as no path at all).
pub(super) fn volume_path(components: &[String]) -> String {
    format!("/{}", components.join("/"))
}

/// Whether a volume entry's name is one plain path component.
pub(super) fn safe_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']))
}

/// The directory a volume is unpacked into, under a blob's volume directory: a name that no
/// volume name can turn into a path.
pub fn volume_dir_name(volume: &str) -> String {
    format!("v-{}", hex::encode(volume.as_bytes()))
}
