//! `webcpm.lock`: a resolved set of package trees, so that a fleet installs exactly the same
//! bytes everywhere.
//!
//! The file is TOML. It names the registry, one `[[root]]` per request (with the version and
//! format the policy chose when it was written, and why), and one `[[package]]` per package
//! version of every tree, with **both** distributions (URL, SHA-256, size, WebC version, and the
//! dependencies each format declares):
//!
//! ```toml
//! version = 1
//! registry = "https://registry.example/graphql"
//!
//! [[root]]
//! request = "ns/app@^1"
//! package = "ns/app"
//! version = "1.2.0"
//! webc = "v3"
//! rule = "default priority"
//! reason = "first in order"
//!
//! [[package]]
//! name = "ns/app"
//! version = "1.2.0"
//! publisher = "alice"
//! [package.v3]
//! url = "https://cdn.example/app-1.2.0.webc"
//! sha256 = "…"
//! size = 12345
//! dependencies = [{ alias = "lib", request = "ns/lib@^2" }]
//! [package.v2]
//! …
//! ```
//!
//! Installing from it needs no resolution against the registry: the locked releases are the
//! only ones the resolver sees, and the hashes checked are the lockfile's. Both formats are kept,
//! so a rollout or rollback re-points locked installs without asking the registry. This module
//! only turns text into typed values and back; the CLI reads and writes the file.

use std::collections::BTreeMap;

use crate::package::{
    Dependency, Distribution, InputError, Offer, PackageName, PackageSpec, Release, Sha256Digest,
    WebcVersion,
};
use crate::resolver::{Lookup, PackageSource, Resolution};

/// The format version this webcpm writes and reads.
pub(crate) const VERSION: u32 = 1;

/// Why a lockfile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the lockfile is not valid TOML: {0}")]
    Toml(String),
    #[error("the lockfile has format version {0}; this webcpm reads version {VERSION}")]
    Version(u32),
    #[error("the lockfile's {field} is `{value}`: {reason}")]
    Field {
        field: String,
        value: String,
        reason: String,
    },
    #[error("the lockfile has no entry for {0}, which its trees need; run `webcpm lock` again")]
    Missing(String),
}

/// The file, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lockfile {
    pub version: u32,
    pub registry: String,
    #[serde(rename = "root", default)]
    pub roots: Vec<LockedRoot>,
    #[serde(rename = "package", default)]
    pub packages: Vec<LockedPackage>,
}

/// One request and what the policy chose for it when the file was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockedRoot {
    pub request: String,
    pub package: String,
    pub version: String,
    pub webc: WebcVersion,
    pub rule: String,
    pub reason: String,
}

/// One package version of a tree, with both formats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// Who published it, as the registry said when the file was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<LockedDist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v3: Option<LockedDist>,
}

/// One distribution: where it is and what its bytes must be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockedDist {
    pub url: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<LockedDependency>,
}

/// A dependency a format declares: the alias the package uses, and the request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockedDependency {
    pub alias: String,
    pub request: String,
}

fn locked_dist(offer: &Offer) -> Option<LockedDist> {
    let d = offer.distribution()?;
    Some(LockedDist {
        url: d.url.clone(),
        sha256: d.sha256.hex(),
        size: d.size,
        dependencies: d
            .dependencies
            .iter()
            .map(|dep| LockedDependency {
                alias: dep.alias.clone(),
                request: dep.spec.to_string(),
            })
            .collect(),
    })
}

impl Lockfile {
    /// A lockfile of these resolutions, each with the request it answers.
    pub fn new(registry: &str, resolved: &[(PackageSpec, Resolution)]) -> Lockfile {
        let mut packages: BTreeMap<(String, semver::Version), LockedPackage> = BTreeMap::new();
        let mut roots = Vec::new();
        for (spec, resolution) in resolved {
            let root = resolution.root();
            let chosen = resolution.viable[0];
            roots.push(LockedRoot {
                request: spec.to_string(),
                package: root.name.to_string(),
                version: root.version.to_string(),
                webc: chosen,
                rule: resolution.rule.clone(),
                reason: resolution
                    .candidates
                    .iter()
                    .find(|c| c.webc == chosen)
                    .map(|c| c.reason.clone())
                    .unwrap_or_default(),
            });
            for member in &resolution.members {
                let r = &member.release;
                packages
                    .entry((r.name.to_string(), r.version.clone()))
                    .or_insert_with(|| LockedPackage {
                        name: r.name.to_string(),
                        version: r.version.to_string(),
                        publisher: r.publisher.clone(),
                        v2: locked_dist(&r.v2),
                        v3: locked_dist(&r.v3),
                    });
            }
        }
        Lockfile {
            version: VERSION,
            registry: registry.to_string(),
            roots,
            packages: packages.into_values().collect(),
        }
    }

    /// Parses the text of a lockfile and checks every value.
    pub fn parse(text: &str) -> Result<Lockfile, LockError> {
        let lock: Lockfile = toml::from_str(text).map_err(|e| LockError::Toml(e.to_string()))?;
        if lock.version != VERSION {
            return Err(LockError::Version(lock.version));
        }
        lock.releases()?;
        lock.requests()?;
        Ok(lock)
    }

    /// The text of the file.
    pub fn to_text(&self) -> String {
        let body = toml::to_string_pretty(self).expect("plain data serializes");
        format!("# Written by `webcpm lock`: the exact packages to install. Do not edit.\n{body}")
    }

    /// Whether `new` locks what this file locks: the same, but that a package this file
    /// records no publisher for may have one in `new` (a file written before webcpm recorded
    /// publishers is not out of date for that alone).
    pub fn same_as(&self, new: &Lockfile) -> bool {
        let mut new = new.clone();
        for p in &mut new.packages {
            let old = self
                .packages
                .iter()
                .find(|o| o.name == p.name && o.version == p.version);
            if old.is_some_and(|o| o.publisher.is_none()) {
                p.publisher = None;
            }
        }
        *self == new
    }

    /// The requests of the roots, parsed.
    pub fn requests(&self) -> Result<Vec<PackageSpec>, LockError> {
        self.roots
            .iter()
            .map(|r| {
                r.request.parse().map_err(|e: InputError| LockError::Field {
                    field: "root.request".into(),
                    value: r.request.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Every locked package version as a release with both its offers.
    pub fn releases(&self) -> Result<Vec<Release>, LockError> {
        self.packages.iter().map(LockedPackage::release).collect()
    }
}

impl LockedPackage {
    fn release(&self) -> Result<Release, LockError> {
        let bad = |field: &str, value: &str, reason: String| LockError::Field {
            field: format!("package {}@{}: {field}", self.name, self.version),
            value: value.to_string(),
            reason,
        };
        let name: PackageName = self
            .name
            .parse()
            .map_err(|e: InputError| bad("name", &self.name, e.to_string()))?;
        let version = semver::Version::parse(&self.version)
            .map_err(|e| bad("version", &self.version, e.to_string()))?;
        let offer = |webc: WebcVersion, dist: &Option<LockedDist>| -> Result<Offer, LockError> {
            let Some(d) = dist else {
                return Ok(Offer::NotOffered);
            };
            let field = |f: &str| format!("{webc}.{f}");
            let sha256: Sha256Digest = d
                .sha256
                .parse()
                .map_err(|e: InputError| bad(&field("sha256"), &d.sha256, e.to_string()))?;
            let dependencies = d
                .dependencies
                .iter()
                .map(|dep| {
                    Ok(Dependency {
                        alias: dep.alias.clone(),
                        spec: dep.request.parse().map_err(|e: InputError| {
                            bad(&field("dependencies"), &dep.request, e.to_string())
                        })?,
                    })
                })
                .collect::<Result<Vec<_>, LockError>>()?;
            Ok(Offer::Offered(Distribution {
                webc,
                url: d.url.clone(),
                sha256,
                size: d.size,
                claimed: None,
                dependencies,
                manifest: None,
                expires_in: None,
            }))
        };
        Ok(Release {
            name,
            version,
            archived: false,
            published_at: None,
            publisher: self.publisher.clone(),
            v2: offer(WebcVersion::V2, &self.v2)?,
            v3: offer(WebcVersion::V3, &self.v3)?,
        })
    }
}

/// The locked releases as the resolver's only source: one version per package, no registry.
pub struct LockedSource(BTreeMap<PackageName, Vec<Release>>);

impl LockedSource {
    pub fn new(lock: &Lockfile) -> Result<LockedSource, LockError> {
        let mut map: BTreeMap<PackageName, Vec<Release>> = BTreeMap::new();
        for release in lock.releases()? {
            map.entry(release.name.clone()).or_default().push(release);
        }
        Ok(LockedSource(map))
    }
}

impl PackageSource for LockedSource {
    fn lookup(&self, name: &PackageName) -> Lookup<'_> {
        match self.0.get(name) {
            Some(releases) => Lookup::Found(releases),
            None => Lookup::NotFound,
        }
    }
}

/// What differs between two lockfiles, one line each, naming the package and the field: what
/// `lock --locked` says when the lockfile would change.
pub fn changes(old: &Lockfile, new: &Lockfile) -> Vec<String> {
    let mut out = Vec::new();
    if old.registry != new.registry {
        out.push(format!("registry: {} -> {}", old.registry, new.registry));
    }
    let key = |r: &LockedRoot| r.request.clone();
    let old_roots: BTreeMap<String, &LockedRoot> = old.roots.iter().map(|r| (key(r), r)).collect();
    let new_roots: BTreeMap<String, &LockedRoot> = new.roots.iter().map(|r| (key(r), r)).collect();
    for (request, root) in &new_roots {
        match old_roots.get(request) {
            None => out.push(format!("+ root {request}")),
            Some(was) if was.version != root.version => out.push(format!(
                "root {request}: version {} -> {}",
                was.version, root.version
            )),
            Some(was) if was.webc != root.webc => out.push(format!(
                "root {request}: webc {} -> {}",
                was.webc, root.webc
            )),
            Some(_) => {}
        }
    }
    for request in old_roots.keys().filter(|r| !new_roots.contains_key(*r)) {
        out.push(format!("- root {request}"));
    }
    let id = |p: &LockedPackage| format!("{}@{}", p.name, p.version);
    let old_packages: BTreeMap<String, &LockedPackage> =
        old.packages.iter().map(|p| (id(p), p)).collect();
    let new_packages: BTreeMap<String, &LockedPackage> =
        new.packages.iter().map(|p| (id(p), p)).collect();
    for (name, package) in &new_packages {
        match old_packages.get(name) {
            None => out.push(format!("+ package {name}")),
            Some(was) => {
                // A lockfile written before publishers were recorded is not out of date for it.
                if was.publisher.is_some() && was.publisher != package.publisher {
                    let by = |p: &Option<String>| p.clone().unwrap_or_else(|| "(not said)".into());
                    out.push(format!(
                        "{name} publisher: {} -> {}",
                        by(&was.publisher),
                        by(&package.publisher)
                    ));
                }
                for (webc, a, b) in [("v2", &was.v2, &package.v2), ("v3", &was.v3, &package.v3)] {
                    out.extend(dist_changes(&format!("{name} {webc}"), a, b));
                }
            }
        }
    }
    for name in old_packages
        .keys()
        .filter(|n| !new_packages.contains_key(*n))
    {
        out.push(format!("- package {name}"));
    }
    out
}

fn dist_changes(what: &str, old: &Option<LockedDist>, new: &Option<LockedDist>) -> Vec<String> {
    match (old, new) {
        (None, None) => Vec::new(),
        (None, Some(_)) => vec![format!("{what}: now offered")],
        (Some(_), None) => vec![format!("{what}: no longer offered")],
        (Some(a), Some(b)) => {
            let mut out = Vec::new();
            if a.sha256 != b.sha256 {
                out.push(format!("{what}.sha256: {} -> {}", a.sha256, b.sha256));
            }
            if a.size != b.size {
                out.push(format!("{what}.size: {:?} -> {:?}", a.size, b.size));
            }
            if a.url != b.url {
                out.push(format!("{what}.url changed"));
            }
            if a.dependencies != b.dependencies {
                out.push(format!("{what}.dependencies changed"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_text() -> String {
        let sha = "ab".repeat(32);
        format!(
            r#"version = 1
registry = "http://127.0.0.1:1/graphql"

[[root]]
request = "ns/app@^1"
package = "ns/app"
version = "1.0.0"
webc = "v3"
rule = "default priority"
reason = "first in order"

[[package]]
name = "ns/app"
version = "1.0.0"

[package.v3]
url = "http://127.0.0.1:1/blobs/a.webc"
sha256 = "{sha}"
size = 10
dependencies = [{{ alias = "lib", request = "ns/lib@^2" }}]
"#
        )
    }

    #[test]
    fn a_lockfile_round_trips_and_becomes_releases() {
        let lock = Lockfile::parse(&lock_text()).unwrap();
        assert_eq!(Lockfile::parse(&lock.to_text()).unwrap(), lock);
        let releases = lock.releases().unwrap();
        assert_eq!(releases.len(), 1);
        assert!(matches!(releases[0].v2, Offer::NotOffered));
        let d = releases[0].v3.distribution().unwrap();
        assert_eq!(d.size, Some(10));
        assert_eq!(d.dependencies[0].spec.to_string(), "ns/lib@^2");
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let text = lock_text().replace(&"ab".repeat(32), "1234asdf");
        let err = Lockfile::parse(&text).unwrap_err().to_string();
        assert!(err.contains("package ns/app@1.0.0: v3.sha256"), "{err}");
        assert!(err.contains("1234asdf"), "{err}");
        let err = Lockfile::parse(&lock_text().replace("version = 1\n", "version = 9\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 9"), "{err}");
    }

    #[test]
    fn changes_name_the_package_and_the_field() {
        let a = Lockfile::parse(&lock_text()).unwrap();
        assert!(changes(&a, &a).is_empty());
        let b =
            Lockfile::parse(&lock_text().replace("ab", "cd").replace("1.0.0", "1.1.0")).unwrap();
        let text = changes(&a, &b).join("\n");
        assert!(
            text.contains("root ns/app@^1: version 1.0.0 -> 1.1.0"),
            "{text}"
        );
        assert!(text.contains("+ package ns/app@1.1.0"), "{text}");
        assert!(text.contains("- package ns/app@1.0.0"), "{text}");
        let c = Lockfile::parse(&lock_text().replace("ab", "cd")).unwrap();
        let text = changes(&a, &c).join("\n");
        assert!(text.contains("ns/app@1.0.0 v3.sha256: abab"), "{text}");
    }
}
