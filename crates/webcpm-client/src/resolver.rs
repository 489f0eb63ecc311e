//! The resolver: from a request (`ns/name@^1`) to a whole dependency tree and the WebC format it
//! will be installed in. It does no IO: it asks a [`PackageSource`] for the releases of each
//! package, and when the source has not loaded one yet it answers [`Resolve::Needs`] so that the
//! caller can load those packages (from the registry or the index) and ask again.
//!
//! Rules:
//! - the highest version that matches, is not archived (yanked: unless the request pins exactly
//!   that version) and is usable wins. A version is usable
//!   when at least one of its nodes is (whatever the policy: forcing a format never changes the
//!   version chosen, it only refuses it with the reason): versions whose hash is not a SHA-256
//!   or whose node lacks a URL are skipped with their reason, as Wasmer's resolver skips them
//!   (wasmer issue #3946), so that one broken old version never blocks a package. A request
//!   that only such versions match fails with the reason ([`ResolveError::Unusable`]);
//! - dependencies are read from the chosen version's manifest (the node of the first format the
//!   policy would try) and resolved the same way; each package appears once in a tree;
//! - a tree is installed in one format: the first format, in the policy's order, that every
//!   member offers. Formats before it are `skipped` with the member that lacks them, those after
//!   it are kept as fallbacks for the installer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::cooldown::{Cooldown, Hold};
use crate::package::{
    CandidateOutcome, Dependency, Distribution, Offer, PackageName, PackageSpec, Release,
    VersionRequest, WebcVersion,
};
use crate::policy::Policy;

/// What a source knows of a package.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Every release the registry lists.
    Found(&'a [Release]),
    /// The registry does not know the package.
    NotFound,
    /// Not loaded yet: ask the caller to load it.
    Pending,
}

/// Where the resolver gets releases from.
pub trait PackageSource {
    fn lookup(&self, name: &PackageName) -> Lookup<'_>;
}

/// Why a request cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("package {0} was not found in the registry")]
    NotFound(PackageName),
    #[error("package {needed_by} depends on {name}, which was not found in the registry")]
    DependencyNotFound {
        name: PackageName,
        needed_by: PackageName,
    },
    #[error("no version of {name} matches `{request}`{}; versions: {}", needed_by.as_ref().map(|p| format!(" (needed by {p})")).unwrap_or_default(), if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NoMatchingVersion {
        name: PackageName,
        request: String,
        needed_by: Option<PackageName>,
        available: Vec<String>,
    },
    #[error(
        "{name} is needed as `{first}` and as `{second}` in one tree; webcpm installs one version of a package per tree"
    )]
    Conflict {
        name: PackageName,
        first: String,
        second: String,
    },
    #[error("{name}@{version} cannot be installed in any allowed format: {}", reasons.join("; "))]
    NoFormat {
        name: PackageName,
        version: semver::Version,
        reasons: Vec<String>,
    },
    #[error("{name}@{version} cannot be used: {reason}")]
    Unusable {
        name: PackageName,
        version: semver::Version,
        reason: String,
    },
    #[error("{name}@{version}: {reason}")]
    BadDependency {
        name: PackageName,
        version: semver::Version,
        reason: String,
    },
}

/// One package of a resolved tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub release: Release,
    pub depth: u32,
    pub needed_by: Option<PackageName>,
}

/// A candidate format and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub webc: WebcVersion,
    /// Chosen, skipped or not tried (never failed: nothing is downloaded here).
    pub outcome: CandidateOutcome,
    pub reason: String,
}

/// A resolved tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Root first, then by depth.
    pub members: Vec<Member>,
    /// Every format the policy allows, in order, with its outcome.
    pub candidates: Vec<Candidate>,
    /// Formats that every member offers, in the policy's order: the first is chosen, the rest are
    /// the fallbacks.
    pub viable: Vec<WebcVersion>,
    /// The rule that ordered the formats.
    pub rule: String,
    /// Versions higher than the one chosen that matched the request but were skipped as
    /// unusable, with the reason.
    pub skipped: Vec<Skipped>,
    /// Versions higher than the one chosen that matched the request but are held back by the
    /// cooldown, highest first.
    pub held: Vec<Held>,
}

/// A version the cooldown held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: PackageName,
    pub version: semver::Version,
    pub hold: Hold,
}

/// A version passed over because none of its allowed formats can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: PackageName,
    pub version: semver::Version,
    pub reason: String,
}

impl Resolution {
    pub fn root(&self) -> &Release {
        &self.members[0].release
    }

    /// The distribution of every member in `webc`, root first. Only for viable formats.
    pub fn distributions(&self, webc: WebcVersion) -> Vec<&Distribution> {
        self.members
            .iter()
            .filter_map(|m| m.release.offer(webc).distribution())
            .collect()
    }
}

/// The resolver's answer.
#[derive(Debug)]
pub enum Resolve {
    Done(Resolution),
    /// Load the packages `names` into the source and ask again. `picked`: the releases chosen
    /// so far (their versions are settled; the format is chosen for the whole tree at the end),
    /// whose downloads may start while the rest loads.
    Needs {
        names: Vec<PackageName>,
        picked: Vec<Release>,
    },
}

/// Picks the highest matching release that is usable in one of `formats`, not archived (yanked)
/// and not held back by the cooldown, unless the request pins it exactly.
pub fn select<'a>(
    releases: &'a [Release],
    request: &VersionRequest,
    formats: &[WebcVersion],
    cooldown: &Cooldown,
) -> Option<&'a Release> {
    releases
        .iter()
        .filter(|r| request.matches(&r.version))
        .filter(|r| request.pins(&r.version) || (!r.archived && cooldown.hold(r).is_none()))
        .filter(|r| r.unusable(formats).is_none())
        .max_by(|a, b| a.version.cmp(&b.version))
}

/// The matching, non-archived releases above `chosen` (all of them when `None`) that are not
/// usable, highest first, with the reason.
fn unusable_above(
    releases: &[Release],
    request: &VersionRequest,
    formats: &[WebcVersion],
    chosen: Option<&semver::Version>,
) -> Vec<Skipped> {
    above(releases, request, chosen)
        .filter_map(|r| {
            Some(Skipped {
                name: r.name.clone(),
                version: r.version.clone(),
                reason: r.unusable(formats)?,
            })
        })
        .collect()
}

/// The matching, non-archived releases above `chosen` (all of them when `None`), highest first:
/// what a choice passed over, for [`unusable_above`] and [`held_above`] to say why.
fn above<'a>(
    releases: &'a [Release],
    request: &VersionRequest,
    chosen: Option<&semver::Version>,
) -> impl Iterator<Item = &'a Release> {
    let mut passed: Vec<&Release> = releases
        .iter()
        .filter(|r| !r.archived && request.matches(&r.version))
        .filter(|r| chosen.is_none_or(|c| r.version > *c))
        .collect();
    passed.sort_by(|a, b| b.version.cmp(&a.version));
    passed.into_iter()
}

fn version_list(releases: &[Release], formats: &[WebcVersion], cooldown: &Cooldown) -> Vec<String> {
    let mut sorted: Vec<&Release> = releases.iter().collect();
    sorted.sort_by(|a, b| a.version.cmp(&b.version));
    sorted.dedup_by(|a, b| a.version == b.version);
    sorted
        .iter()
        .map(|r| {
            if r.archived {
                format!("{} (archived)", r.version)
            } else if r.unusable(formats).is_some() {
                format!("{} (unusable)", r.version)
            } else if let Some(hold) = cooldown.hold(r) {
                format!("{} ({hold})", r.version)
            } else {
                r.version.to_string()
            }
        })
        .collect()
}

/// The dependencies a release declares, read from the first node the policy would use.
fn dependencies(release: &Release, order: &[WebcVersion]) -> Vec<Dependency> {
    order
        .iter()
        .chain(WebcVersion::ALL.iter())
        .find_map(|w| release.offer(*w).distribution())
        .map(|d| d.dependencies.clone())
        .unwrap_or_default()
}

/// The matching, non-archived releases above `chosen` that the cooldown holds back, highest
/// first.
fn held_above(
    releases: &[Release],
    request: &VersionRequest,
    cooldown: &Cooldown,
    chosen: &semver::Version,
) -> Vec<Held> {
    above(releases, request, Some(chosen))
        .filter_map(|r| {
            Some(Held {
                name: r.name.clone(),
                version: r.version.clone(),
                hold: cooldown.hold(r)?,
            })
        })
        .collect()
}

/// Resolves `spec` and, unless `no_deps`, its dependencies.
pub fn resolve(
    spec: &PackageSpec,
    policy: &Policy,
    cooldown: &Cooldown,
    source: &dyn PackageSource,
    no_deps: bool,
) -> Result<Resolve, ResolveError> {
    let order = policy.order(&spec.name);
    let usable_in = &WebcVersion::ALL;
    let mut members: Vec<Member> = Vec::new();
    let mut chosen: BTreeMap<PackageName, (String, semver::Version)> = BTreeMap::new();
    let mut pending: BTreeSet<PackageName> = BTreeSet::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut held: Vec<Held> = Vec::new();
    let mut queue: VecDeque<(PackageSpec, u32, Option<PackageName>)> = VecDeque::new();
    queue.push_back((spec.clone(), 0, None));

    while let Some((want, depth, needed_by)) = queue.pop_front() {
        if let Some((first, version)) = chosen.get(&want.name) {
            if want.version.matches(version) || want.version == VersionRequest::Latest {
                continue;
            }
            return Err(ResolveError::Conflict {
                name: want.name.clone(),
                first: first.clone(),
                second: want.to_string(),
            });
        }
        let releases = match source.lookup(&want.name) {
            Lookup::Pending => {
                pending.insert(want.name.clone());
                continue;
            }
            Lookup::NotFound => {
                return Err(match needed_by {
                    None => ResolveError::NotFound(want.name.clone()),
                    Some(parent) => ResolveError::DependencyNotFound {
                        name: want.name.clone(),
                        needed_by: parent,
                    },
                });
            }
            Lookup::Found(releases) => releases,
        };
        let release = pick(releases, &want, needed_by.as_ref(), usable_in, cooldown)?;
        held.extend(held_above(
            releases,
            &want.version,
            cooldown,
            &release.version,
        ));
        skipped.extend(unusable_above(
            releases,
            &want.version,
            usable_in,
            Some(&release.version),
        ));
        chosen.insert(
            want.name.clone(),
            (want.to_string(), release.version.clone()),
        );
        if !no_deps {
            for dep in dependencies(release, &order.formats) {
                queue.push_back((dep.spec, depth + 1, Some(want.name.clone())));
            }
        }
        members.push(Member {
            release: release.clone(),
            depth,
            needed_by,
        });
    }
    if !pending.is_empty() {
        return Ok(Resolve::Needs {
            names: pending.into_iter().collect(),
            picked: members.into_iter().map(|m| m.release).collect(),
        });
    }
    choose_format(members, &order.formats, order.rule, skipped, held)
}

/// The release a request selects among the usable ones or, when none matches, why: the best
/// unusable release it names, or the versions there are.
fn pick<'a>(
    releases: &'a [Release],
    want: &PackageSpec,
    needed_by: Option<&PackageName>,
    usable_in: &[WebcVersion],
    cooldown: &Cooldown,
) -> Result<&'a Release, ResolveError> {
    if let Some(release) = select(releases, &want.version, usable_in, cooldown) {
        return Ok(release);
    }
    if let Some(best) = unusable_above(releases, &want.version, usable_in, None)
        .into_iter()
        .next()
    {
        return Err(ResolveError::Unusable {
            name: best.name,
            version: best.version,
            reason: best.reason,
        });
    }
    Err(ResolveError::NoMatchingVersion {
        name: want.name.clone(),
        request: want.version.to_string(),
        needed_by: needed_by.cloned(),
        available: version_list(releases, usable_in, cooldown),
    })
}

/// Why the tree cannot be had in `webc`: the first member that does not offer it usably.
fn why_not(members: &[Member], webc: WebcVersion) -> Option<String> {
    let why = members.iter().find_map(|m| match m.release.offer(webc) {
        Offer::Offered(_) => None,
        Offer::NotOffered => Some(format!(
            "{}@{} is not offered as {webc}",
            m.release.name, m.release.version
        )),
        Offer::Invalid(why) => Some(format!(
            "{}@{} has an unusable {webc} node: {why}",
            m.release.name, m.release.version
        )),
    })?;
    if members.len() > 1 && !why.starts_with(members[0].release.name.as_str()) {
        Some(format!("{why}, so the whole tree cannot be {webc}"))
    } else {
        Some(why)
    }
}

/// The candidate formats in the policy's order, each with its outcome and reason, and the
/// viable ones (offered by every member).
fn choose_format(
    members: Vec<Member>,
    formats: &[WebcVersion],
    rule: String,
    skipped: Vec<Skipped>,
    held: Vec<Held>,
) -> Result<Resolve, ResolveError> {
    let mut candidates = Vec::new();
    let mut viable = Vec::new();
    let mut reasons = Vec::new();
    for &webc in formats {
        match why_not(&members, webc) {
            Some(why) => {
                reasons.push(why.clone());
                candidates.push(Candidate {
                    webc,
                    outcome: CandidateOutcome::Skipped,
                    reason: why,
                });
            }
            None if viable.is_empty() => {
                viable.push(webc);
                candidates.push(Candidate {
                    webc,
                    outcome: CandidateOutcome::Chosen,
                    reason: if candidates.is_empty() {
                        "first in order".to_string()
                    } else {
                        format!("fallback: {}", reasons.join("; "))
                    },
                });
            }
            None => {
                viable.push(webc);
                candidates.push(Candidate {
                    webc,
                    outcome: CandidateOutcome::NotTried,
                    reason: format!("kept as fallback after {}", viable[0]),
                });
            }
        }
    }
    for webc in WebcVersion::ALL {
        if !formats.contains(&webc) {
            candidates.push(Candidate {
                webc,
                outcome: CandidateOutcome::NotTried,
                reason: format!("not allowed ({rule})"),
            });
        }
    }
    if viable.is_empty() {
        let root = &members[0].release;
        return Err(ResolveError::NoFormat {
            name: root.name.clone(),
            version: root.version.clone(),
            reasons,
        });
    }
    Ok(Resolve::Done(Resolution {
        members,
        candidates,
        viable,
        rule,
        skipped,
        held,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Sha256Digest;

    struct Map(BTreeMap<PackageName, Vec<Release>>);

    impl PackageSource for Map {
        fn lookup(&self, name: &PackageName) -> Lookup<'_> {
            match self.0.get(name) {
                Some(r) => Lookup::Found(r),
                None => Lookup::NotFound,
            }
        }
    }

    fn dist(webc: WebcVersion, deps: &[&str]) -> Offer {
        Offer::Offered(Distribution {
            webc,
            url: "http://127.0.0.1/x".into(),
            sha256: Sha256Digest([1; 32]),
            size: Some(1),
            claimed: Some(webc),
            expires_in: None,
            dependencies: deps
                .iter()
                .map(|d| Dependency {
                    alias: d.to_string(),
                    spec: d.parse().unwrap(),
                })
                .collect(),
            manifest: None,
        })
    }

    fn release(name: &str, version: &str, archived: bool, v3: bool, deps: &[&str]) -> Release {
        Release {
            name: name.parse().unwrap(),
            version: version.parse().unwrap(),
            archived,
            published_at: Some(1_000),
            publisher: None,
            v2: dist(WebcVersion::V2, deps),
            v3: if v3 {
                dist(WebcVersion::V3, deps)
            } else {
                Offer::NotOffered
            },
        }
    }

    fn source(releases: Vec<Release>) -> Map {
        let mut map: BTreeMap<PackageName, Vec<Release>> = BTreeMap::new();
        for r in releases {
            map.entry(r.name.clone()).or_default().push(r);
        }
        Map(map)
    }

    fn done(r: Result<Resolve, ResolveError>) -> Resolution {
        match r.unwrap() {
            Resolve::Done(r) => r,
            Resolve::Needs { names, .. } => panic!("needs {names:?}"),
        }
    }

    #[test]
    fn highest_matching_unarchived_version_wins() {
        let src = source(vec![
            release("a/b", "1.0.0", false, true, &[]),
            release("a/b", "1.2.0", false, true, &[]),
            release("a/b", "1.3.0", true, true, &[]),
            release("a/b", "2.0.0", false, true, &[]),
        ]);
        let p = Policy::default();
        let spec = |s: &str| s.parse::<PackageSpec>().unwrap();
        let v = |s| {
            done(resolve(&spec(s), &p, &Cooldown::default(), &src, false))
                .root()
                .version
                .to_string()
        };
        assert_eq!(v("a/b@^1"), "1.2.0");
        assert_eq!(v("a/b"), "2.0.0");
        assert_eq!(v("a/b@=1.0.0"), "1.0.0");
        // A yanked version is taken only when pinned exactly.
        assert_eq!(v("a/b@1.3.0"), "1.3.0");
        assert_eq!(v("a/b@=1.3.0"), "1.3.0");
        for not_a_pin in ["a/b@~1.3", "a/b@=1.3", "a/b@>=1.3.0, <1.4.0"] {
            assert!(
                resolve(&spec(not_a_pin), &p, &Cooldown::default(), &src, false).is_err(),
                "{not_a_pin}"
            );
        }
        let err = resolve(&spec("a/b@^3"), &p, &Cooldown::default(), &src, false).unwrap_err();
        assert!(err.to_string().contains("1.3.0 (archived)"), "{err}");
    }

    #[test]
    fn unusable_versions_are_skipped_and_named_when_asked_for() {
        let mut broken = release("a/b", "1.3.0", false, true, &[]);
        broken.v2 = Offer::Invalid("hash `1234asdf` is not a SHA-256".into());
        broken.v3 = Offer::Invalid("the node has a hash but no download URL".into());
        let mut empty = release("a/b", "1.4.0", false, true, &[]);
        empty.v2 = Offer::NotOffered;
        empty.v3 = Offer::NotOffered;
        let mut v3_only = release("a/b", "1.1.0", false, true, &[]);
        v3_only.v2 = Offer::NotOffered;
        let src = source(vec![
            release("a/b", "1.2.0", false, true, &[]),
            broken,
            empty,
            v3_only,
        ]);
        let spec = |s: &str| s.parse::<PackageSpec>().unwrap();
        let r = done(resolve(
            &spec("a/b"),
            &Policy::default(),
            &Cooldown::default(),
            &src,
            false,
        ));
        assert_eq!(r.root().version.to_string(), "1.2.0");
        let skipped: Vec<String> = r.skipped.iter().map(|s| s.version.to_string()).collect();
        assert_eq!(skipped, ["1.4.0", "1.3.0"]);
        assert!(r.skipped[1].reason.contains("1234asdf"));
        // Forcing a format does not change the version: 1.1.0 has v3, but v2 is refused.
        let v2_only = Policy {
            forced: Some(crate::policy::Forced {
                webc: WebcVersion::V2,
                source: "test".into(),
            }),
            ..Policy::default()
        };
        let err = resolve(
            &spec("a/b@~1.1"),
            &v2_only,
            &Cooldown::default(),
            &src,
            false,
        )
        .unwrap_err();
        assert!(matches!(err, ResolveError::NoFormat { .. }), "{err}");
        let err = resolve(
            &spec("a/b@1.3.0"),
            &Policy::default(),
            &Cooldown::default(),
            &src,
            false,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ResolveError::Unusable { version, reason, .. }
                if version.to_string() == "1.3.0" && reason.contains("no download URL")),
            "{err}"
        );
        let err = resolve(
            &spec("a/b@^2"),
            &Policy::default(),
            &Cooldown::default(),
            &src,
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("1.3.0 (unusable)"), "{err}");
    }

    #[test]
    fn a_tree_falls_back_together() {
        let src = source(vec![
            release("a/root", "1.0.0", false, true, &["a/dep@^1"]),
            release("a/dep", "1.0.0", false, false, &[]),
        ]);
        let r = done(resolve(
            &"a/root".parse().unwrap(),
            &Policy::default(),
            &Cooldown::default(),
            &src,
            false,
        ));
        assert_eq!(r.members.len(), 2);
        assert_eq!(r.viable, vec![WebcVersion::V2]);
        assert_eq!(r.candidates[0].outcome, CandidateOutcome::Skipped);
        assert!(
            r.candidates[0]
                .reason
                .contains("a/dep@1.0.0 is not offered as v3")
        );
        assert_eq!(r.candidates[1].outcome, CandidateOutcome::Chosen);
    }

    #[test]
    fn missing_dependency_names_who_needs_it() {
        let src = source(vec![release(
            "a/root",
            "1.0.0",
            false,
            true,
            &["a/gone@^1"],
        )]);
        let err = resolve(
            &"a/root".parse().unwrap(),
            &Policy::default(),
            &Cooldown::default(),
            &src,
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "package a/root depends on a/gone, which was not found in the registry"
        );
        // --no-deps does not look.
        done(resolve(
            &"a/root".parse().unwrap(),
            &Policy::default(),
            &Cooldown::default(),
            &src,
            true,
        ));
    }

    #[test]
    fn unloaded_packages_are_asked_for() {
        struct Empty;
        impl PackageSource for Empty {
            fn lookup(&self, _: &PackageName) -> Lookup<'_> {
                Lookup::Pending
            }
        }
        match resolve(
            &"a/b".parse().unwrap(),
            &Policy::default(),
            &Cooldown::default(),
            &Empty,
            false,
        )
        .unwrap()
        {
            Resolve::Needs { names, picked } => {
                assert_eq!(names, vec!["a/b".parse().unwrap()]);
                assert!(picked.is_empty());
            }
            Resolve::Done(_) => panic!("resolved from nothing"),
        }
    }
}
