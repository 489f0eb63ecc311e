//! The client side of the registry's policy: fetch it (with `If-None-Match`), verify it against
//! the pinned key, refuse what must be refused, and keep the last good copy in the store.
//!
//! ```text
//! $WEBCPM_HOME/rollout/
//!   policy.json    the last-known-good: {"envelope": <signed policy>, "etag", "checked_at"}
//!   policy.lock    held while policy.json is compared and replaced
//!   applied        the policy_version installs were last re-pointed for
//!   attempted      when the registry last failed to answer (commands wait `refresh` after it)
//! ```
//!
//! Invariants: `policy.json` is only ever replaced whole (a temporary file in the same
//! directory, fsynced, renamed) under `policy.lock`, and only by a policy that verifies (a key
//! the pinned root endorses, not expired, not revoked: see `webcpm_formats::policy_document`),
//! has a `policy_version` at least the cached one's (equal: an `issued_at` at least as recent)
//! and at most [`MAX_JUMP`] past it unless the root signed it itself or the copy held has
//! expired, and has not expired. The copy held bounds what replaces it as it was when it was
//! accepted (an endorsement that ran out since still counts). The newest revocation list seen
//! is kept with it; a cached policy whose key it revokes no longer counts, so that a lower
//! version by a new key replaces the forgery of a leaked one. So a replayed older policy, a
//! tampered one or a stale one never replaces a good one, however many processes refresh at
//! once. When the registry is away, the cached copy stays
//! in force; once it has expired too, the safe state (v2 first) applies, with a warning.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};

use super::document::{self, DocumentError, Envelope, Revocations};
use crate::policy::RegistryRollout;

/// Where the client follows a registry's policy.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// `…/rollout/policy.json`.
    pub url: String,
    pub key: VerifyingKey,
    /// How old the cached copy may grow before a command that talks to the registry asks again.
    pub refresh: Duration,
}

/// The last good policy, as kept in the store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cached {
    pub envelope: Envelope,
    pub etag: Option<String>,
    /// When the registry last confirmed it (a 200 or a 304), seconds since the epoch.
    pub checked_at: i64,
    /// The newest revocation list the root signed that this machine has seen.
    #[serde(default)]
    pub revocations: Option<Revocations>,
}

/// How far past the policy in force a version may jump when not signed by the root itself: a
/// leaked signing key cannot push clients to `u64::MAX` and lock out every later policy.
pub const MAX_JUMP: u64 = 1000;

impl Cached {
    pub fn version(&self) -> u64 {
        self.envelope.policy.policy_version
    }

    /// Whether it was last confirmed more than `refresh` ago (or in the future: a clock that
    /// went back).
    pub fn stale(&self, refresh: Duration) -> bool {
        let age = now() - self.checked_at;
        !(0..refresh.as_secs() as i64).contains(&age)
    }
}

/// Why a policy was refused or could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("refused the registry's policy: {0}")]
    Document(#[from] DocumentError),
    #[error(
        "refused the registry's policy v{offered}: it is older than the policy v{held} already in force (a replay, or a registry restored from an old backup)"
    )]
    Replayed { offered: u64, held: u64 },
    #[error(
        "refused the registry's policy v{version}: it expired at {expires_at} (Unix time); the registry must publish a fresh one (is `webcpm registry serve` running with its key?)"
    )]
    Expired { version: u64, expires_at: i64 },
    #[error(
        "refused the registry's policy v{offered}: it jumps more than {MAX_JUMP} versions past v{held} and is not signed by the root key (a leaked signing key?); the last good policy stays in force, and a jump is taken once it has expired"
    )]
    Jump { offered: u64, held: u64 },
    #[error(
        "the registry's policy at {url} is unreachable: {reason}; the last good policy stays in force"
    )]
    Unreachable { url: String, reason: String },
    #[error("refused to ask for the registry's policy: {0}")]
    Url(#[from] crate::http::UrlError),
    #[error("the registry's policy at {url} is not a signed policy document: {reason}")]
    Malformed { url: String, reason: String },
    #[error(
        "cannot keep the registry's policy in {path}: {source}; check that the store is writable"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a refresh did.
#[derive(Debug)]
pub enum Refresh {
    /// The cached copy is younger than `refresh`: nothing was asked.
    UpToDate,
    /// The registry confirmed the cached copy (304, or the same document).
    Confirmed,
    /// A newer policy was accepted and kept.
    Updated { from: Option<u64>, to: u64 },
    /// Nothing changed: the registry was away or its answer was refused.
    Failed(SourceError),
}

pub use webcpm_formats::policy_document::now;

fn io(path: &Path) -> impl Fn(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The policy kept in `dir`, if any, checked again against the pinned key (a key changed in the
/// config makes an old copy worthless). A damaged or foreign copy counts as none.
pub fn load(dir: &Path, key: &VerifyingKey) -> Option<Cached> {
    read_copy(dir, key, AsOf::Now)
}

/// When a kept copy is checked for.
#[derive(Clone, Copy)]
enum AsOf {
    /// Now: to use it.
    Now,
    /// When it was last accepted: to bound what may replace it (an endorsement that has run out
    /// since still keeps a replay or a jump out).
    Accepted,
}

/// The kept copy, checked as of `as_of`.
fn read_copy(dir: &Path, key: &VerifyingKey, as_of: AsOf) -> Option<Cached> {
    let text = std::fs::read(dir.join("policy.json")).ok()?;
    let cached: Cached = match serde_json::from_slice(&text) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("ignoring the damaged policy copy in {}: {e}", dir.display());
            return None;
        }
    };
    match document::verify(
        &cached.envelope,
        key,
        cached.as_of(as_of),
        cached.revocations.as_ref(),
    ) {
        Ok(()) => Some(cached),
        Err(e) => {
            tracing::warn!("ignoring the policy copy in {}: {e}", dir.display());
            None
        }
    }
}

impl Cached {
    /// The time `as_of` names for this copy.
    fn as_of(&self, as_of: AsOf) -> i64 {
        match as_of {
            AsOf::Now => now(),
            AsOf::Accepted => self.checked_at.min(now()),
        }
    }
}

/// The registry layer of the format policy from a cached copy.
pub fn layer(cached: &Cached, now: i64) -> Option<RegistryRollout> {
    cached.envelope.policy.rollout(now).ok()
}

/// Whether `offered` may replace `held` (both already verified against `root`): not older, not
/// too far ahead unless the root signed it, not expired.
pub fn check(
    offered: &Envelope,
    held: Option<&Envelope>,
    root: &VerifyingKey,
    now: i64,
) -> Result<(), SourceError> {
    let p = &offered.policy;
    if let Some(held) = held {
        let h = &held.policy;
        let older = p.policy_version < h.policy_version
            || (p.policy_version == h.policy_version && p.issued_at < h.issued_at);
        if older {
            return Err(SourceError::Replayed {
                offered: p.policy_version,
                held: h.policy_version,
            });
        }
        // A copy that has expired (a machine away for longer than the policy lives) does not
        // bound the jump: revoking a leaked key is what undoes a jump it made.
        let by_root = document::parse_key(&offered.key).is_ok_and(|k| k == *root);
        let stale = now >= h.expires_at;
        if !by_root && !stale && p.policy_version > h.policy_version.saturating_add(MAX_JUMP) {
            return Err(SourceError::Jump {
                offered: p.policy_version,
                held: h.policy_version,
            });
        }
    }
    if now >= p.expires_at {
        return Err(SourceError::Expired {
            version: p.policy_version,
            expires_at: p.expires_at,
        });
    }
    p.rollout(now)?;
    Ok(())
}

/// Asks the registry for its policy when the cached copy is older than `config.refresh` (or
/// always, with `force`), waiting at most `timeout`, and keeps what is accepted.
pub async fn refresh(
    http: &crate::http::Client,
    config: &SourceConfig,
    dir: &Path,
    timeout: Duration,
    force: bool,
) -> Refresh {
    if !force && !due(dir, config) {
        return Refresh::UpToDate;
    }
    let cached = load(dir, &config.key);
    let now = now();
    let answer = match fetch(http, config, cached.as_ref(), timeout).await {
        Ok(answer) => answer,
        Err(e) => {
            // Commands that are not forced wait a whole interval before asking again, so that
            // a registry that is away costs each warm run nothing, not a timeout every time.
            let _ = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(dir.join("attempted"), now_ms().to_string()));
            return Refresh::Failed(e);
        }
    };
    let dir = dir.to_path_buf();
    let key = config.key;
    tokio::task::spawn_blocking(move || keep(&dir, &key, answer, now))
        .await
        .unwrap_or_else(|e| {
            Refresh::Failed(SourceError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })
        })
}

/// Whether the copy in `dir` is missing or older than `config.refresh` (a clock that went back
/// counts as old): whether a command that talks to the registry should ask again.
pub fn due(dir: &Path, config: &SourceConfig) -> bool {
    load(dir, &config.key).is_none_or(|c| c.stale(config.refresh)) && !backing_off(dir, config)
}

/// Whether a failed attempt was made less than `config.refresh` ago, to the millisecond (whole
/// seconds would end a 1 s interval at the next second's turn, however recent the attempt).
pub fn backing_off(dir: &Path, config: &SourceConfig) -> bool {
    std::fs::read_to_string(dir.join("attempted"))
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .is_some_and(|at| {
            // Written in seconds before milliseconds were kept.
            let at = if at < 100_000_000_000 { at * 1000 } else { at };
            (0..config.refresh.as_millis() as i64).contains(&(now_ms() - at))
        })
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the registry answered.
enum Answer {
    NotModified,
    Document {
        envelope: Box<Envelope>,
        etag: Option<String>,
    },
}

async fn fetch(
    http: &crate::http::Client,
    config: &SourceConfig,
    cached: Option<&Cached>,
    timeout: Duration,
) -> Result<Answer, SourceError> {
    let unreachable = |reason: String| SourceError::Unreachable {
        url: crate::http::redact(&config.url),
        reason,
    };
    let mut request = http.get(&config.url)?.timeout(timeout);
    if let Some(etag) = cached.and_then(|c| c.etag.as_deref()) {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request
        .send()
        .await
        .map_err(|e| unreachable(crate::http::describe(&e)))?;
    if response.status() == StatusCode::NOT_MODIFIED && cached.is_some() {
        return Ok(Answer::NotModified);
    }
    if !response.status().is_success() {
        return Err(unreachable(format!("HTTP {}", response.status())));
    }
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(crate::http::describe(&e)))?;
    let envelope = serde_json::from_slice(&body).map_err(|e| SourceError::Malformed {
        url: crate::http::redact(&config.url),
        reason: e.to_string(),
    })?;
    Ok(Answer::Document {
        envelope: Box::new(envelope),
        etag,
    })
}

/// Compares the answer with the copy on disk, under the lock, and replaces it when accepted.
fn keep(dir: &Path, key: &VerifyingKey, answer: Answer, now: i64) -> Refresh {
    match keep_locked(dir, key, answer, now) {
        Ok(refresh) => refresh,
        Err(e) => Refresh::Failed(e),
    }
}

fn keep_locked(
    dir: &Path,
    key: &VerifyingKey,
    answer: Answer,
    now: i64,
) -> Result<Refresh, SourceError> {
    let _lock = lock_in(dir, "policy.lock").map_err(io(&dir.join("policy.lock")))?;
    let held = read_copy(dir, key, AsOf::Accepted);
    let (envelope, etag) = match answer {
        Answer::NotModified => match held.clone() {
            Some(held) => (held.envelope, held.etag),
            None => return Ok(Refresh::Confirmed),
        },
        Answer::Document { envelope, etag } => (*envelope, etag),
    };
    let known = held.as_ref().and_then(|h| h.revocations.as_ref());
    let revocations = document::newest_revocations(known, &envelope, key);
    // A copy signed by a key revoked since counts as none.
    let held = held.filter(|h| {
        document::verify(
            &h.envelope,
            key,
            h.as_of(AsOf::Accepted),
            revocations.as_ref(),
        )
        .is_ok()
    });
    document::verify(&envelope, key, now, revocations.as_ref())?;
    check(&envelope, held.as_ref().map(|h| &h.envelope), key, now)?;
    let from = held.as_ref().map(Cached::version);
    let to = envelope.policy.policy_version;
    let same = held
        .as_ref()
        .is_some_and(|h| h.envelope == envelope && h.revocations == revocations);
    write_atomic(
        dir,
        "policy.json",
        &serde_json::to_vec(&Cached {
            envelope,
            etag,
            checked_at: now,
            revocations,
        })
        .expect("plain data serializes"),
    )?;
    Ok(if same {
        Refresh::Confirmed
    } else {
        Refresh::Updated { from, to }
    })
}

/// Takes the lock file `dir/name` (both made if missing), waiting for it; released on drop.
pub(crate) fn lock_in(dir: &Path, name: &str) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))?;
    file.lock()?;
    Ok(file)
}

/// Replaces `dir/name` whole: a temporary file in `dir`, fsynced, renamed over it.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SourceError> {
    let target = dir.join(name);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    temp.write_all(bytes).map_err(io(&target))?;
    temp.as_file().sync_all().map_err(io(&target))?;
    temp.persist(&target).map_err(|e| SourceError::Io {
        path: target.clone(),
        source: e.error,
    })?;
    Ok(())
}

/// The policy version installs were last re-pointed for.
pub fn applied(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("applied"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Records that installs are re-pointed for `version`.
pub fn set_applied(dir: &Path, version: u64) -> Result<(), SourceError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_atomic(dir, "applied", version.to_string().as_bytes())
}
