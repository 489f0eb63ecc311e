//! Which WebC format to use for a package: an ordered priority, a staged rollout of v3, pins per
//! package, an emergency rollback, a forced format, and whether to fall back to the next format.
//!
//! The rules, first match wins, each named in the explanation that `resolve --explain`, the index
//! and `rollout status` show:
//! 1. a forced format (`--webc`, `WEBCPM_WEBC`): that format and no other;
//! 2. a local pin (`[packages."ns/name"] webc = "v2"`): that format first;
//! 3. a local emergency rollback (`rollout rollback`): v2 first, v3 only as a fallback;
//! 4. the registry's policy ([`RegistryRollout`], verified by the client against the signed [`crate::policy_document`]), when the client
//!    follows it: its rollback (or, once it has expired, the safe state: v2 first), then its
//!    per-package rule (a format, or a percentage), then its global percentage;
//! 5. the local staged rollout (`rollout.v3_percent`);
//! 6. the configured priority.
//!
//! A staged rollout puts a (machine, package) pair in the v3 cohort when
//! `bucket(installation id, package) < v3_percent`; in the cohort the configured priority
//! applies, outside it v2 comes first.
//!
//! The bucket is the first 8 bytes of SHA-256(installation id, NUL, package name) modulo 100: it
//! is stable across machines, versions and processes, so raising the percentage only adds pairs
//! to the cohort and lowering it only removes them.
//!
//! The policy is a pure value.

use std::collections::BTreeMap;

use sha2::Digest;

use crate::package::{PackageName, WebcVersion};

/// Where a forced format came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    pub webc: WebcVersion,
    /// `--webc`, `WEBCPM_WEBC`, ...
    pub source: String,
}

/// The staged rollout of v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// 0 to 100.
    pub v3_percent: u8,
    /// This machine's installation id (created once in the store).
    pub installation_id: String,
    /// Per-package formats that override the cohort.
    pub pins: BTreeMap<PackageName, WebcVersion>,
    /// An emergency rollback is in force: v2 first for everything.
    pub rolled_back: bool,
    /// The registry's policy, when this machine follows one.
    pub registry: Option<RegistryRollout>,
}

/// The registry's rule for one package: a format, or a percentage of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PackageRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v3_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webc: Option<WebcVersion>,
}

/// The rollout the registry publishes, as verified by the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryRollout {
    /// `policy_version`: only ever grows.
    pub version: u64,
    pub v3_percent: u8,
    pub packages: BTreeMap<PackageName, PackageRule>,
    pub rolled_back: bool,
    /// The registry froze the percentage (for the client, the percentage still applies).
    pub halted: bool,
    /// Past its `expires_at` with no fresh copy: the safe state (v2 first) applies.
    pub expired: bool,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            v3_percent: 100,
            installation_id: String::new(),
            pins: BTreeMap::new(),
            rolled_back: false,
            registry: None,
        }
    }
}

/// The stable bucket (0 to 99) of a machine and a package.
pub fn bucket(installation_id: &str, package: &PackageName) -> u8 {
    let mut hasher = sha2::Sha256::new();
    hasher.update(installation_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(package.as_str().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// The format policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Formats in order of preference.
    pub priority: Vec<WebcVersion>,
    /// Try the next format when the first is not offered or fails.
    pub fallback: bool,
    /// One format and no other (`--webc`).
    pub forced: Option<Forced>,
    pub rollout: Rollout,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            priority: vec![WebcVersion::V3, WebcVersion::V2],
            fallback: true,
            forced: None,
            rollout: Rollout::default(),
        }
    }
}

/// The formats to try for one package, best first, and the rule that ordered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub formats: Vec<WebcVersion>,
    pub rule: String,
}

/// Which cohort a package is in, for `rollout status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    V3,
    V2,
}

/// Where a staged percentage came from.
enum Stage {
    Local,
    Registry { version: u64, halted: bool },
    RegistryPackage { version: u64 },
}

impl Policy {
    /// The percentage that stages `package`, and where it came from.
    fn stage(&self, package: &PackageName) -> (u8, Stage) {
        match &self.rollout.registry {
            Some(r) => match r.packages.get(package).and_then(|rule| rule.v3_percent) {
                Some(percent) => (percent, Stage::RegistryPackage { version: r.version }),
                None => (
                    r.v3_percent,
                    Stage::Registry {
                        version: r.version,
                        halted: r.halted,
                    },
                ),
            },
            None => (self.rollout.v3_percent, Stage::Local),
        }
    }

    /// Whether `package` is in the v3 cohort on this machine, and its bucket.
    pub fn cohort(&self, package: &PackageName) -> (Cohort, u8) {
        let b = bucket(&self.rollout.installation_id, package);
        if b < self.stage(package).0 {
            (Cohort::V3, b)
        } else {
            (Cohort::V2, b)
        }
    }

    fn with_fallback(&self, first: Vec<WebcVersion>) -> Vec<WebcVersion> {
        let mut formats: Vec<WebcVersion> = Vec::new();
        for w in first.iter().chain(WebcVersion::ALL.iter().rev()) {
            if !formats.contains(w) {
                formats.push(*w);
            }
        }
        if !self.fallback {
            formats.truncate(1);
        }
        formats
    }

    fn first(&self, webc: WebcVersion, rule: String) -> Order {
        Order {
            formats: self.with_fallback(vec![webc]),
            rule,
        }
    }

    /// The order for `package`. With fallback off only the first format is tried.
    pub fn order(&self, package: &PackageName) -> Order {
        if let Some(forced) = &self.forced {
            return Order {
                formats: vec![forced.webc],
                rule: format!("forced by {}", forced.source),
            };
        }
        if let Some(pin) = self.rollout.pins.get(package) {
            return self.first(*pin, format!("pinned to {pin}"));
        }
        if self.rollout.rolled_back {
            return self.first(WebcVersion::V2, "emergency rollback to v2".into());
        }
        if let Some(order) = self.registry_order(package) {
            return order;
        }
        self.staged(package)
    }

    /// The registry's rollback, expiry or per-package format, when one applies.
    fn registry_order(&self, package: &PackageName) -> Option<Order> {
        let r = self.rollout.registry.as_ref()?;
        let v = r.version;
        if r.expired {
            let rule = format!("registry policy v{v} expired: safe state, v2 first");
            return Some(self.first(WebcVersion::V2, rule));
        }
        if r.rolled_back {
            let rule = format!("registry rollback to v2 (policy v{v})");
            return Some(self.first(WebcVersion::V2, rule));
        }
        let webc = r.packages.get(package).and_then(|rule| rule.webc)?;
        Some(self.first(webc, format!("registry sets {webc} (policy v{v})")))
    }

    /// The staged rollout: the cohort decides between the priority and v2 first.
    fn staged(&self, package: &PackageName) -> Order {
        let (percent, stage) = self.stage(package);
        let priority_rule = if self.priority == Policy::default().priority {
            "default priority".to_string()
        } else {
            let names: Vec<&str> = self.priority.iter().map(|w| w.as_str()).collect();
            format!("priority {}", names.join(", "))
        };
        let source = match stage {
            Stage::Local => String::new(),
            Stage::Registry { version, halted } => {
                let halted = if halted { ", halted" } else { "" };
                format!(" of registry policy v{version}{halted}")
            }
            Stage::RegistryPackage { version } => {
                format!(" for this package, registry policy v{version}")
            }
        };
        if percent >= 100 {
            let rule = match stage {
                Stage::Local => priority_rule,
                _ => format!("v3 at 100%{source}, {priority_rule}"),
            };
            return Order {
                formats: self.with_fallback(self.priority.clone()),
                rule,
            };
        }
        match self.cohort(package) {
            (Cohort::V3, b) => Order {
                formats: self.with_fallback(self.priority.clone()),
                rule: format!("v3 cohort (bucket {b} < {percent}%{source}), {priority_rule}"),
            },
            (Cohort::V2, b) => self.first(
                WebcVersion::V2,
                format!("outside the v3 cohort (bucket {b} >= {percent}%{source})"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg() -> PackageName {
        "ns/p".parse().unwrap()
    }

    #[test]
    fn default_is_v3_then_v2() {
        let o = Policy::default().order(&pkg());
        assert_eq!(o.formats, vec![WebcVersion::V3, WebcVersion::V2]);
        assert_eq!(o.rule, "default priority");
    }

    #[test]
    fn no_fallback_keeps_only_the_first() {
        let p = Policy {
            fallback: false,
            ..Policy::default()
        };
        assert_eq!(p.order(&pkg()).formats, vec![WebcVersion::V3]);
    }

    #[test]
    fn forced_format_is_the_only_one() {
        let p = Policy {
            forced: Some(Forced {
                webc: WebcVersion::V2,
                source: "--webc".into(),
            }),
            ..Policy::default()
        };
        let o = p.order(&pkg());
        assert_eq!(o.formats, vec![WebcVersion::V2]);
        assert_eq!(o.rule, "forced by --webc");
    }

    #[test]
    fn a_partial_priority_is_completed() {
        let p = Policy {
            priority: vec![WebcVersion::V2],
            ..Policy::default()
        };
        assert_eq!(
            p.order(&pkg()).formats,
            vec![WebcVersion::V2, WebcVersion::V3]
        );
    }

    #[test]
    fn pins_beat_rollback_and_rollback_beats_cohorts() {
        let mut p = Policy::default();
        p.rollout.v3_percent = 0;
        p.rollout.rolled_back = true;
        let o = p.order(&pkg());
        assert_eq!(o.formats, vec![WebcVersion::V2, WebcVersion::V3]);
        assert_eq!(o.rule, "emergency rollback to v2");
        p.rollout.pins.insert(pkg(), WebcVersion::V3);
        let o = p.order(&pkg());
        assert_eq!(o.formats[0], WebcVersion::V3);
        assert_eq!(o.rule, "pinned to v3");
    }

    #[test]
    fn the_registry_layer_sits_between_local_rollback_and_local_percentage() {
        let mut p = Policy::default();
        p.rollout.v3_percent = 100;
        let mut r = RegistryRollout {
            version: 7,
            v3_percent: 0,
            ..RegistryRollout::default()
        };
        p.rollout.registry = Some(r.clone());
        let o = p.order(&pkg());
        assert_eq!(
            o.formats[0],
            WebcVersion::V2,
            "the registry's 0% beats local 100%"
        );
        assert!(o.rule.contains("registry policy v7"), "{}", o.rule);
        r.packages.insert(
            pkg(),
            PackageRule {
                v3_percent: Some(100),
                webc: None,
            },
        );
        p.rollout.registry = Some(r.clone());
        assert_eq!(p.order(&pkg()).formats[0], WebcVersion::V3);
        r.packages.insert(
            pkg(),
            PackageRule {
                v3_percent: None,
                webc: Some(WebcVersion::V2),
            },
        );
        r.v3_percent = 100;
        p.rollout.registry = Some(r.clone());
        assert_eq!(p.order(&pkg()).rule, "registry sets v2 (policy v7)");
        r.packages.clear();
        r.rolled_back = true;
        p.rollout.registry = Some(r.clone());
        assert_eq!(p.order(&pkg()).rule, "registry rollback to v2 (policy v7)");
        r.rolled_back = false;
        r.expired = true;
        p.rollout.registry = Some(r);
        let o = p.order(&pkg());
        assert_eq!(o.formats[0], WebcVersion::V2);
        assert!(o.rule.contains("expired"), "{}", o.rule);
        p.rollout.rolled_back = true;
        assert_eq!(p.order(&pkg()).rule, "emergency rollback to v2");
    }

    /// A small deterministic generator, so that the property is checked on the same 1,000
    /// machines every run.
    fn ids(n: usize) -> Vec<String> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{state:016x}")
            })
            .collect()
    }

    fn names(n: usize) -> Vec<PackageName> {
        (0..n)
            .map(|i| format!("ns{}/package-{i}", i % 7).parse().unwrap())
            .collect()
    }

    fn in_v3(id: &str, name: &PackageName, percent: u8) -> bool {
        let p = Policy {
            rollout: Rollout {
                v3_percent: percent,
                installation_id: id.to_string(),
                ..Rollout::default()
            },
            ..Policy::default()
        };
        p.order(name).formats[0] == WebcVersion::V3
    }

    #[test]
    fn cohorts_are_the_right_size_and_only_grow_with_the_percentage() {
        let (ids, names) = (ids(1000), names(50));
        let pairs: Vec<(&String, &PackageName)> = ids
            .iter()
            .flat_map(|i| names.iter().map(move |n| (i, n)))
            .collect();
        let at = |percent: u8| -> Vec<bool> {
            pairs.iter().map(|(i, n)| in_v3(i, n, percent)).collect()
        };
        let ten = at(10);
        let share = ten.iter().filter(|b| **b).count() as f64 / pairs.len() as f64;
        assert!((0.08..=0.12).contains(&share), "v3 share at 10% is {share}");
        let thirty = at(30);
        assert!(
            ten.iter().zip(&thirty).all(|(a, b)| !a || *b),
            "every pair in v3 at 10% is in v3 at 30%"
        );
        assert!(thirty.iter().filter(|b| **b).count() > ten.iter().filter(|b| **b).count());
        assert_eq!(
            at(10),
            ten,
            "10 -> 30 -> 10 puts back exactly the original cohort"
        );
        assert!(at(0).iter().all(|b| !b));
        assert!(at(100).iter().all(|b| *b));
    }
}
