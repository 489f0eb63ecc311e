//! Fleet control of the v3 rollout, client side: the registry publishes a signed rollout policy
//! ([`document`]), each machine fetches, verifies and keeps the last good copy ([`source`]), and
//! reports install and run outcomes back in small batches ([`reports`]).
//!
//! The policy is data the client verifies: an ed25519 key pinned in the config
//! (`rollout.policy_key`), a `policy_version` that only grows, an expiry. It becomes the
//! registry layer of the pure format policy ([`crate::policy::RegistryRollout`]); the precedence
//! of the layers is [`crate::policy`]'s. A warm `run` never waits on the registry for it.

pub use webcpm_formats::policy_document as document;
pub mod reports;
pub mod source;

pub use source::{Cached, Refresh, SourceConfig, SourceError};

use std::path::{Path, PathBuf};

use crate::policy::RegistryRollout;

/// Where a store keeps the registry's policy and the report outbox: `$WEBCPM_HOME/rollout`.
pub fn dir(home: &Path) -> PathBuf {
    home.join("rollout")
}

/// The registry layer of the format policy from the last good copy in `home`, with that copy.
pub fn registry_layer(home: &Path, config: &SourceConfig) -> Option<(RegistryRollout, Cached)> {
    let cached = source::load(&dir(home), &config.key)?;
    let layer = source::layer(&cached, source::now())?;
    Some((layer, cached))
}

/// The policy URL a registry's GraphQL URL implies: `{base}/rollout/policy.json`.
pub fn policy_url(registry_url: &str) -> String {
    let base = registry_url.trim_end_matches('/');
    let base = base.strip_suffix("/graphql").unwrap_or(base);
    format!("{base}/rollout/policy.json")
}

/// Where outcome reports go, next to the policy: `{dir of the policy URL}/reports`.
pub fn reports_url(policy_url: &str) -> String {
    match policy_url.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/reports"),
        None => format!("{policy_url}/reports"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_derive_from_the_registry() {
        let url = super::policy_url("http://127.0.0.1:8080/graphql");
        assert_eq!(url, "http://127.0.0.1:8080/rollout/policy.json");
        assert_eq!(
            super::reports_url(&url),
            "http://127.0.0.1:8080/rollout/reports"
        );
        assert_eq!(
            super::policy_url("https://r.example/x/"),
            "https://r.example/x/rollout/policy.json"
        );
    }
}
