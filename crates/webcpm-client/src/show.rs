//! What `webcpm show ns/name[@request]` tells of a package, from the registry's one answer:
//! every version with its publish time and whether it is yanked or held back by the cooldown,
//! and, for the version the request names (the latest by default), both formats with their
//! hashes and sizes, its commands and what they ask of the host. Commands and mounts are read
//! from the node's manifest; whether a command can use the network is read from its module's
//! imports, which only a stored copy has.

use crate::capabilities;
use crate::container;
use crate::cooldown::{Cooldown, rfc3339};
use crate::package::{Offer, Release, VersionRequest, WebcVersion};
use crate::resolver::select;
use crate::store::Store;

/// One version in the list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionLine {
    pub version: String,
    /// RFC 3339, when the registry gives it.
    pub published: Option<String>,
    /// Who published it, when the registry says.
    pub publisher: Option<String>,
    pub yanked: bool,
    /// Why the cooldown holds it back, if it does.
    pub held: Option<String>,
}

/// One format of the version shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FormatLine {
    pub webc: WebcVersion,
    pub url: String,
    pub sha256: String,
    pub size: Option<u64>,
}

/// One command, and what it asks for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandLine {
    pub name: String,
    /// The network imports of its module; `None`: not known (no stored copy to read).
    pub network: Option<Vec<String>>,
}

/// The version the request names, in detail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Detail {
    pub version: String,
    pub formats: Vec<FormatLine>,
    pub commands: Vec<CommandLine>,
    /// Where it mounts its own files, read-only.
    pub mounts: Vec<String>,
}

/// What `show` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Shown {
    pub package: String,
    /// Newest first.
    pub versions: Vec<VersionLine>,
    pub detail: Option<Detail>,
}

/// Describes `releases` (one package's, as the registry answered) for `request`.
pub fn describe(
    releases: &[Release],
    request: &VersionRequest,
    cooldown: &Cooldown,
    store: Option<&Store>,
) -> Shown {
    let mut sorted: Vec<&Release> = releases.iter().collect();
    sorted.sort_by(|a, b| b.version.cmp(&a.version));
    let versions = sorted
        .iter()
        .map(|r| VersionLine {
            version: r.version.to_string(),
            published: r.published_at.map(rfc3339),
            publisher: r.publisher.clone(),
            yanked: r.archived,
            held: cooldown.hold(r).map(|h| h.to_string()),
        })
        .collect();
    // Any version the request names, whatever the cooldown says: this is a look, not a choice.
    let chosen = select(releases, request, &WebcVersion::ALL, &Cooldown::default());
    Shown {
        package: releases
            .first()
            .map(|r| r.name.to_string())
            .unwrap_or_default(),
        versions,
        detail: chosen.map(|r| detail(r, store)),
    }
}

fn detail(release: &Release, store: Option<&Store>) -> Detail {
    let offered: Vec<_> = WebcVersion::ALL
        .iter()
        .filter_map(|w| match release.offer(*w) {
            Offer::Offered(d) => Some(d),
            _ => None,
        })
        .collect();
    let formats = offered
        .iter()
        .map(|d| FormatLine {
            webc: d.webc,
            url: d.url.clone(),
            sha256: d.sha256.hex(),
            size: d.size,
        })
        .collect();
    let manifest = offered
        .iter()
        .filter_map(|d| d.manifest.as_deref())
        .find_map(|text| serde_json::from_str::<webc::metadata::Manifest>(text).ok());
    // What a stored copy says of the network (any format: both hold the same modules).
    let stored = store.and_then(|store| {
        offered.iter().find_map(|d| {
            store.blob(&d.sha256).ok().flatten()?;
            capabilities::requests(store, &d.sha256).ok()
        })
    });
    let (commands, mounts) = match &manifest {
        Some(m) => (
            m.commands
                .keys()
                .map(|name| CommandLine {
                    name: name.clone(),
                    network: stored
                        .as_ref()
                        .filter(|s| !s.unknown.contains(name))
                        .map(|s| s.network.get(name).cloned().unwrap_or_default()),
                })
                .collect(),
            container::mounts(m).into_iter().map(|m| m.guest).collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Detail {
        version: release.version.to_string(),
        formats,
        commands,
        mounts,
    }
}
