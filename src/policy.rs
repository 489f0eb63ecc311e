//! Which WebC format to use: an ordered priority, an optional forced format, and whether to fall
//! back to the next format when the first cannot be had.
//!
//! The policy is a pure value: it decides the order in which formats are tried for a package
//! and names the rule that decided, so that `resolve --explain` and the index can say why.

use crate::package::{PackageName, WebcVersion};

/// Where a forced format came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    pub webc: WebcVersion,
    /// `--webc`, `WEBCPM_WEBC`, ...
    pub source: String,
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
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            priority: vec![WebcVersion::V3, WebcVersion::V2],
            fallback: true,
            forced: None,
        }
    }
}

/// The formats to try for one package, best first, and the rule that ordered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub formats: Vec<WebcVersion>,
    pub rule: String,
}

impl Policy {
    /// The order for `package`. With fallback off only the first format is tried.
    pub fn order(&self, _package: &PackageName) -> Order {
        if let Some(forced) = &self.forced {
            return Order {
                formats: vec![forced.webc],
                rule: format!("forced by {}", forced.source),
            };
        }
        let mut formats: Vec<WebcVersion> = Vec::new();
        for w in self.priority.iter().chain(WebcVersion::ALL.iter().rev()) {
            if !formats.contains(w) {
                formats.push(*w);
            }
        }
        if !self.fallback {
            formats.truncate(1);
        }
        let names: Vec<&str> = self.priority.iter().map(|w| w.as_str()).collect();
        Order {
            formats,
            rule: if self.priority == Policy::default().priority {
                "default priority".to_string()
            } else {
                format!("priority {}", names.join(", "))
            },
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
}
