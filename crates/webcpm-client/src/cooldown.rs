//! The cooldown (`resolve.min_release_age`): a version younger than the minimum age is not
//! chosen by a range or `latest` until it is old enough, as pnpm's `minimumReleaseAge`, uv's
//! `exclude-newer` and cargo's `global-min-publish-age` hold new versions back against a
//! compromised release that is found and yanked within days. Unlike cargo, a version whose
//! publish time the registry does not give is held too (fail closed), unless
//! `resolve.allow_unknown_release_time` opens it. Packages may be exempt; a request that pins a
//! version exactly still gets it, with a note.

use crate::package::{PackageName, Release};

/// The rule in force, and the time it is measured from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cooldown {
    /// The minimum age in seconds; `None` or 0: no cooldown.
    pub min_age: Option<u64>,
    /// Now, in Unix seconds (the clock is injectable: `WEBCPM_NOW`).
    pub now: i64,
    /// Packages the cooldown does not apply to.
    pub exempt: Vec<PackageName>,
    /// Take versions whose publish time is unknown.
    pub allow_unknown: bool,
}

/// Why a version is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "held", content = "until")]
pub enum Hold {
    /// Published too recently: chosen from this Unix time on.
    Until(i64),
    /// The registry does not say when it was published.
    UnknownTime,
}

impl Cooldown {
    /// Whether (and why) `release` is held back now.
    pub fn hold(&self, release: &Release) -> Option<Hold> {
        let age = self.min_age.filter(|a| *a > 0)?;
        if self.exempt.contains(&release.name) {
            return None;
        }
        match release.published_at {
            Some(at) => {
                let until = at.saturating_add(i64::try_from(age).unwrap_or(i64::MAX));
                (until > self.now).then_some(Hold::Until(until))
            }
            None if self.allow_unknown => None,
            None => Some(Hold::UnknownTime),
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Until(at) => write!(f, "held back until {}", rfc3339(*at)),
            Hold::UnknownTime => f.write_str(
                "held back: the registry gives no publish time (resolve.allow_unknown_release_time opens it)",
            ),
        }
    }
}

/// An RFC 3339 time as Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time ({e})"))
}

/// A Unix time as RFC 3339, in UTC.
pub fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// A minimum age as written in the settings (humantime's durations: `7d`, `12h`, `1w`,
/// `3days 12h`), or `0` for none.
pub fn parse_age(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(0);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| format!("`{text}` is not an age ({e}); write it as 7d, 12h or 1w"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Offer;

    fn release(name: &str, published_at: Option<i64>) -> Release {
        Release {
            name: name.parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            archived: false,
            published_at,
            publisher: None,
            v2: Offer::NotOffered,
            v3: Offer::NotOffered,
        }
    }

    #[test]
    fn young_and_unknown_versions_are_held_unless_exempt_or_opened() {
        let day = 86_400;
        let mut c = Cooldown {
            min_age: Some(7 * day as u64),
            now: 100 * day,
            ..Cooldown::default()
        };
        assert_eq!(c.hold(&release("a/b", Some(90 * day))), None);
        assert_eq!(
            c.hold(&release("a/b", Some(93 * day))),
            None,
            "exactly 7 days"
        );
        assert_eq!(
            c.hold(&release("a/b", Some(99 * day))),
            Some(Hold::Until(106 * day))
        );
        assert_eq!(c.hold(&release("a/b", None)), Some(Hold::UnknownTime));
        c.allow_unknown = true;
        assert_eq!(c.hold(&release("a/b", None)), None);
        c.exempt = vec!["a/b".parse().unwrap()];
        assert_eq!(c.hold(&release("a/b", Some(99 * day))), None);
        c.min_age = Some(0);
        assert_eq!(c.hold(&release("c/d", Some(100 * day))), None);
    }

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(parse_age("7d"), Ok(604_800));
        assert_eq!(parse_age("12h"), Ok(43_200));
        assert_eq!(parse_age("1w"), Ok(604_800));
        assert_eq!(parse_age("0"), Ok(0));
        assert_eq!(parse_age("3days 12h"), Ok(302_400));
        for bad in ["7", "7 parsecs", "d", "-1d"] {
            assert!(
                parse_age(bad).unwrap_err().contains("write it as 7d"),
                "{bad}"
            );
        }
    }
}
