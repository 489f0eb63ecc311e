//! `registry serve --real-shapes`: answers in the shapes of the real Wasmer registry, so that
//! tests and the demo can show how webcpm copes with each. Without the switch, every node is
//! complete and every URL is permanent. With it:
//!
//! - **Null fields**: `piritaSize`, `webcSize`, `size` and `webcVersion` are null on every node,
//!   as the real registry leaves them for many versions.
//! - **One file behind both nodes**: a version stored in WebC v2 only (`registry add --webc v2`)
//!   predates v3, and its v3 node names the v2 file (same URL, same hash), as the real registry
//!   answers for versions published before v3 existed. Neither node has a `webcManifest` (the
//!   field came later).
//! - **A broken version**: every package lists an extra version `0.0.0` (unless it has one) whose
//!   v2 node has the hash `1234asdf`, which is not a SHA-256, and whose v3 node has that hash but
//!   no URL, as in the answers behind wasmer issue #3946. It has no file.
//! - **Signed URLs that expire**: download URLs carry `?expires=UNIX&signature=HEX` and stop
//!   working after `--url-ttl` seconds (`piritaExpiresInSeconds`); a request with an expired or
//!   missing signature gets `403`, as a CDN answers.
//!
//! The signing key is random for each run of the server: URLs from an earlier run are refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::db::{PackageRecord, VersionRecord};
use crate::package::Sha256Digest;

/// The hash the broken version's nodes carry.
pub(crate) const BROKEN_HASH: &str = "1234asdf";

/// The URL the broken version's v2 node carries.
pub(crate) const BROKEN_URL: &str = "https://example.com/";

/// The real-shapes switch: the signing key and the lifetime of URLs.
#[derive(Debug, Clone)]
pub struct Shapes {
    key: [u8; 32],
    ttl: Duration,
}

impl Shapes {
    /// Shapes with a fresh random signing key; URLs live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Not secret in any way that matters: these URLs only imitate a CDN's.
            key = Sha256Digest::of(format!("{:?}", SystemTime::now()).as_bytes()).0;
        }
        Shapes { key, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn signature(&self, blob: &Sha256Digest, expires: u64) -> String {
        let mut text = self.key.to_vec();
        text.extend_from_slice(format!("{}:{expires}", blob.hex()).as_bytes());
        Sha256Digest::of(&text).hex()
    }

    /// `?expires=…&signature=…` for a download of `blob` that works for the URL lifetime.
    pub fn sign(&self, blob: &Sha256Digest) -> String {
        let expires = unix_now() + self.ttl.as_secs();
        format!(
            "?expires={expires}&signature={}",
            self.signature(blob, expires)
        )
    }

    /// Whether the query string of a download of `blob` is a valid, unexpired signature.
    pub fn check(&self, blob: &Sha256Digest, query: Option<&str>) -> Result<(), &'static str> {
        let mut expires = None;
        let mut signature = None;
        for pair in query.unwrap_or_default().split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.parse::<u64>().ok(),
                Some(("signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err("this URL is not signed");
        };
        if signature != self.signature(blob, expires) {
            return Err("the signature does not match");
        }
        if unix_now() >= expires {
            return Err("the signed URL has expired");
        }
        Ok(())
    }

    /// Adds the broken version `0.0.0` to a package that has at least one version and no 0.0.0.
    pub fn add_broken_version(&self, record: &mut PackageRecord) {
        let zero = semver::Version::new(0, 0, 0);
        let Some(first) = record.versions.first() else {
            return;
        };
        if first.version == zero {
            return;
        }
        let broken = VersionRecord {
            version: zero,
            archived: false,
            broken: true,
            only: None,
            ..first.clone()
        };
        record.versions.insert(0, broken);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_and_expire() {
        let shapes = Shapes::new(Duration::from_secs(60));
        let blob = Sha256Digest::of(b"a");
        let query = shapes.sign(&blob);
        let query = query.strip_prefix('?').unwrap();
        assert_eq!(shapes.check(&blob, Some(query)), Ok(()));
        assert!(shapes.check(&Sha256Digest::of(b"b"), Some(query)).is_err());
        assert!(shapes.check(&blob, None).is_err());
        let stale = format!("expires=1&signature={}", shapes.signature(&blob, 1));
        assert_eq!(
            shapes.check(&blob, Some(&stale)),
            Err("the signed URL has expired")
        );
        let other = Shapes::new(Duration::from_secs(60));
        assert!(other.check(&blob, Some(query)).is_err(), "a key per run");
    }
}
