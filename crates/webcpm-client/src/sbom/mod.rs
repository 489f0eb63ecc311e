//! `webcpm sbom`: a lockfile's packages as a software bill of materials, in CycloneDX 1.6 or
//! SPDX 2.3 JSON. Every locked package version is listed with who published it, both of its
//! distributions (URL, SHA-256, size) and, inside each, its atoms with their SHA-256 and ABI, and
//! what it depends on (each request followed to the locked version it matches, as `tree` does).
//!
//! The atoms are read from the distributions themselves: each is taken from the store, or
//! downloaded and verified against the lockfile's SHA-256 as an install would, so that the bill
//! lists what the files hold, not what a registry says they hold.

mod cyclonedx;
mod spdx;

use crate::container;
use crate::fetch::FetchError;
use crate::install::Installer;
use crate::lock_graph::{Graph, key};
use crate::lockfile::{LockError, Lockfile};
use crate::package::{Offer, WebcVersion};

pub use cyclonedx::cyclonedx;
pub use spdx::spdx;

/// Why a bill could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{label}: {source}")]
    Fetch {
        label: String,
        #[source]
        source: FetchError,
    },
    #[error(
        "{label}: the stored file cannot be read as WebC: {reason}; run `webcpm cache verify --repair`"
    )]
    Container { label: String, reason: String },
    #[error(
        "{0} is not in the store, and --offline downloads nothing; run without --offline, or `webcpm install --locked` first"
    )]
    NotStored(String),
}

/// Everything a bill lists, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// What the bill describes: the lockfile's name.
    pub subject: String,
    pub registry: String,
    /// When it was made, RFC 3339.
    pub created: String,
    /// The SHA-256 of the lockfile's text: what makes the document's identity.
    pub lockfile_sha256: String,
    /// The roots, as `ns/name@version` keys.
    pub roots: Vec<String>,
    pub packages: Vec<Entry>,
}

/// One locked package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `ns/name@version`.
    pub key: String,
    pub name: String,
    pub version: String,
    pub publisher: Option<String>,
    pub distributions: Vec<DistEntry>,
    /// Keys of the locked versions it depends on.
    pub dependencies: Vec<String>,
}

/// One distribution of a version, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEntry {
    pub webc: WebcVersion,
    pub url: String,
    pub sha256: String,
    pub size: u64,
    pub atoms: Vec<AtomEntry>,
}

/// One atom (a WebAssembly module) inside a distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomEntry {
    pub name: String,
    pub sha256: String,
    /// SPDX requires a SHA-1 of every file.
    pub sha1: String,
    pub size: u64,
    /// The system interface it imports (`preview1`, `wasix32`, ...).
    pub abi: &'static str,
}

/// What a bill is made of, besides the store.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The lockfile's name.
    pub name: &'a str,
    /// The lockfile's bytes, as read.
    pub bytes: &'a [u8],
    /// The bill's time (Unix seconds).
    pub created: i64,
    /// Take everything from the store; download nothing.
    pub offline: bool,
}

/// Reads every locked distribution (from the store, or, unless offline, downloaded and
/// verified) and lists what it holds.
pub async fn inventory(
    installer: &Installer,
    subject: Subject<'_>,
    lock: &Lockfile,
) -> Result<Inventory, SbomError> {
    let graph = Graph::of(lock);
    let mut packages = Vec::new();
    for release in lock.releases()? {
        let key = key(release.name.as_str(), &release.version.to_string());
        let mut distributions = Vec::new();
        for offer in [&release.v2, &release.v3] {
            let Offer::Offered(dist) = offer else {
                continue;
            };
            let label = format!("{key} {}", dist.webc);
            if subject.offline && !installer.store.blob_path(&dist.sha256).is_file() {
                return Err(SbomError::NotStored(label));
            }
            let fetched = installer
                .fetch_locked(dist, &label)
                .await
                .map_err(|source| SbomError::Fetch {
                    label: label.clone(),
                    source,
                })?;
            let path = installer.store.blob_path(&dist.sha256);
            distributions.push(DistEntry {
                webc: dist.webc,
                url: dist.url.clone(),
                sha256: dist.sha256.hex(),
                size: fetched.blob.size,
                atoms: atoms(&path, &label)?,
            });
        }
        packages.push(Entry {
            dependencies: graph.dependencies(&key).to_vec(),
            key,
            name: release.name.to_string(),
            version: release.version.to_string(),
            publisher: release.publisher.clone(),
            distributions,
        });
    }
    Ok(Inventory {
        subject: subject.name.to_string(),
        registry: lock.registry.clone(),
        created: crate::cooldown::rfc3339(subject.created),
        lockfile_sha256: crate::package::Sha256Digest::of(subject.bytes).hex(),
        roots: {
            // Two requests may lock the same package version.
            let mut roots = graph.roots().to_vec();
            roots.sort();
            roots.dedup();
            roots
        },
        packages,
    })
}

/// The atoms of a stored container, with their SHA-256 and ABI.
fn atoms(path: &std::path::Path, label: &str) -> Result<Vec<AtomEntry>, SbomError> {
    let bad = |reason: String| SbomError::Container {
        label: label.to_string(),
        reason,
    };
    let bytes = container::map_file(path).map_err(|e| bad(e.to_string()))?;
    // The file passed every check when it entered the store, and its SHA-256 was checked.
    let checked = container::open_stored(bytes).map_err(|e| bad(e.to_string()))?;
    let digests = checked.atoms();
    let modules = checked.container.atoms();
    Ok(digests
        .into_iter()
        .map(|(name, sha256, size)| {
            let bytes = modules.get(&name).map(|b| &b[..]).unwrap_or_default();
            AtomEntry {
                sha1: hex::encode(<sha1::Sha1 as sha1::Digest>::digest(bytes)),
                abi: crate::abi::abi_of(bytes).as_str(),
                name,
                sha256: sha256.hex(),
                size,
            }
        })
        .collect())
}

/// Text made safe for an identifier: letters, digits, `.` and `-` kept, anything else `-`.
fn ident(text: &str) -> String {
    text.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                true => c,
                false => '-',
            },
        )
        .collect()
}
