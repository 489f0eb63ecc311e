//! Who published what, and a warning when a package changes hands.
//!
//! The registry names each version's publisher (`publishedBy { username }`); the store records it
//! for every installed version and the lockfile for every locked one. `install`, `update` and
//! `lock` compare what they had before with what they have after, and warn when a package is now
//! by a publisher that none of the versions installed (or locked) before had, for the same
//! registry: a maintainer's account taken over, or a
//! name handed to someone else, is how several supply-chain attacks began. Nothing is refused;
//! the user decides. Where either side has no publisher (an older registry, a version added
//! before the registry kept it), there is nothing to compare.

use std::collections::{BTreeMap, BTreeSet};

use crate::lockfile::Lockfile;
use crate::store::{Store, StoreError};

/// Where publishers were seen: a store's installs, or a lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Store,
    Lockfile,
}

/// The publishers seen for each package, with one version of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    place: Option<Place>,
    /// package -> publisher -> a version by that publisher.
    by_package: BTreeMap<String, BTreeMap<String, String>>,
}

/// A package whose publisher is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub package: String,
    pub version: String,
    pub publisher: String,
    /// Who published the version seen before, and which.
    pub before_version: String,
    pub before_publisher: String,
    pub place: Place,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match self.place {
            Place::Store => "installed",
            Place::Lockfile => "in the lockfile",
        };
        write!(
            f,
            "{}@{} was published by `{}`, but {}@{} ({place}) was published by `{}`; check that the package changed hands on purpose before you run it",
            self.package,
            self.version,
            self.publisher,
            self.package,
            self.before_version,
            self.before_publisher
        )
    }
}

impl Seen {
    fn new(place: Place, rows: impl IntoIterator<Item = (String, String, String)>) -> Seen {
        let mut by_package: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (package, version, publisher) in rows {
            by_package
                .entry(package)
                .or_default()
                .entry(publisher)
                .or_insert(version);
        }
        Seen {
            place: Some(place),
            by_package,
        }
    }

    /// The publishers of what the store has installed; nothing for a store not yet made.
    pub fn of_store(store: &Store) -> Result<Seen, StoreError> {
        Ok(Seen::new(
            Place::Store,
            store.index().installed_publishers()?,
        ))
    }

    /// The publishers a lockfile recorded.
    pub fn of_lockfile(lock: &Lockfile) -> Seen {
        let rows = lock.packages.iter().filter_map(|p| {
            let publisher = p.publisher.clone()?;
            Some((p.name.clone(), p.version.clone(), publisher))
        });
        Seen::new(Place::Lockfile, rows)
    }

    /// Each package of `now` by a publisher that none of its versions seen here had, one change
    /// per package and new publisher.
    pub fn changes(&self, now: &Seen) -> Vec<Change> {
        let Some(place) = self.place else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (package, publishers) in &now.by_package {
            let Some(before) = self.by_package.get(package) else {
                continue;
            };
            let known: BTreeSet<&String> = before.keys().collect();
            let (before_publisher, before_version) = before
                .iter()
                .next()
                .expect("a seen package has a publisher");
            for (publisher, version) in publishers {
                if known.contains(publisher) {
                    continue;
                }
                out.push(Change {
                    package: package.clone(),
                    version: version.clone(),
                    publisher: publisher.clone(),
                    before_version: before_version.clone(),
                    before_publisher: before_publisher.clone(),
                    place,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(place: Place, rows: &[(&str, &str, &str)]) -> Seen {
        Seen::new(
            place,
            rows.iter()
                .map(|(p, v, by)| (p.to_string(), v.to_string(), by.to_string())),
        )
    }

    #[test]
    fn a_new_publisher_of_a_known_package_is_a_change() {
        let before = seen(
            Place::Store,
            &[("acme/lib", "1.0.0", "alice"), ("acme/app", "1.0.0", "bob")],
        );
        let now = seen(
            Place::Store,
            &[
                ("acme/lib", "1.1.0", "mallory"),
                ("acme/app", "1.1.0", "bob"),
                ("acme/new", "1.0.0", "carol"),
            ],
        );
        let changes = before.changes(&now);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let c = &changes[0];
        assert_eq!(
            (
                c.package.as_str(),
                c.publisher.as_str(),
                c.before_publisher.as_str()
            ),
            ("acme/lib", "mallory", "alice")
        );
        let text = c.to_string();
        assert!(
            text.contains("acme/lib@1.1.0 was published by `mallory`"),
            "{text}"
        );
        assert!(text.contains("acme/lib@1.0.0 (installed)"), "{text}");
        // The same publishers again, or nothing seen before, is no change.
        assert!(now.changes(&now).is_empty());
        assert!(Seen::default().changes(&now).is_empty());
    }
}
