//! Outcome reports: each install and run says how it went, and the registry compares v3 with v2
//! from them. A report holds the package, version, format, phase, success or an error class,
//! and the (machine, package) bucket: never a path, an argument, the environment or a token.
//! The batch names the machine only by a salted hash of its installation id (salted with the
//! registry's URL, so that two registries cannot match their reports).
//!
//! ```text
//! $WEBCPM_HOME/rollout/reports.jsonl   the outbox: one report a line, at most MAX_QUEUED
//! $WEBCPM_HOME/rollout/reports.lock    held while the outbox is appended to or trimmed
//! $WEBCPM_HOME/rollout/reports.flush.lock  held by the one process flushing (others skip)
//! ```
//!
//! Recording appends a line (oldest lines dropped past [`MAX_QUEUED`]); a flush posts up to
//! [`BATCH`] of them with a tight timeout and removes them once the registry took them. Nothing
//! waits on the registry: a failed flush leaves the outbox for the next command.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

/// The most reports kept while the registry is away.
pub(crate) const MAX_QUEUED: usize = 1000;
/// The most reports sent at once.
pub(crate) const BATCH: usize = 200;

pub use webcpm_formats::report::{Batch, Phase, Report};

/// Why the outbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot use the report outbox {path}: {source}; check that the store is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the registry did not take the reports: {0}; they stay queued")]
    Send(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The machine's name in reports: SHA-256 of the registry URL and the installation id.
pub fn client_id(registry_url: &str, installation_id: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"webcpm report\0");
    hasher.update(registry_url.as_bytes());
    hasher.update([0u8]);
    hasher.update(installation_id.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

fn locked(dir: &Path) -> Result<File, ReportError> {
    super::source::lock_in(dir, "reports.lock").map_err(io(&dir.join("reports.lock")))
}

fn queued(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("reports.jsonl"))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn rewrite(dir: &Path, lines: &[String]) -> Result<(), ReportError> {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    super::source::write_atomic(dir, "reports.jsonl", text.as_bytes()).map_err(|e| {
        ReportError::Io {
            path: dir.join("reports.jsonl"),
            source: std::io::Error::other(e.to_string()),
        }
    })
}

/// Queues reports, dropping the oldest past [`MAX_QUEUED`].
pub fn record(dir: &Path, reports: &[Report]) -> Result<(), ReportError> {
    let _lock = locked(dir)?;
    let path = dir.join("reports.jsonl");
    let mut lines = queued(dir);
    let new = reports
        .iter()
        .map(|r| serde_json::to_string(r).expect("plain data serializes"));
    if lines.len() + reports.len() <= MAX_QUEUED {
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let text: String = new.map(|l| l + "\n").collect();
        return file.write_all(text.as_bytes()).map_err(io(&path));
    }
    lines.extend(new);
    let drop = lines.len() - MAX_QUEUED;
    rewrite(dir, &lines[drop..])
}

/// How many reports wait in the outbox.
pub fn pending(dir: &Path) -> usize {
    queued(dir).len()
}

/// Where reports go and who sends them.
#[derive(Debug, Clone)]
pub struct Outbox<'a> {
    /// The registry's `…/rollout/reports`.
    pub url: &'a str,
    /// The machine's name in reports ([`client_id`]).
    pub client: &'a str,
    /// The report token (`telemetry.report_token`), sent to `url` only.
    pub token: Option<&'a str>,
}

/// Posts up to [`BATCH`] queued reports from `dir`; returns how many the registry took. Those
/// it took are removed from the outbox, also when it kept fewer (its bound per client).
pub async fn flush(
    http: &crate::http::Client,
    outbox: &Outbox<'_>,
    dir: &Path,
    timeout: Duration,
) -> Result<usize, ReportError> {
    if pending(dir) == 0 {
        return Ok(0);
    }
    // One flush at a time per store, from reading the outbox to removing what was sent: a
    // report is posted once even when many commands flush together.
    let path = dir.join("reports.flush.lock");
    let flushing = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    match flushing.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(0),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    let lines: Vec<String> = queued(dir).into_iter().take(BATCH).collect();
    let reports: Vec<Report> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if lines.is_empty() {
        return Ok(0);
    }
    let batch = Batch {
        client: outbox.client.to_string(),
        reports,
    };
    let mut request = http
        .post(outbox.url)
        .map_err(|e| ReportError::Send(e.to_string()))?
        .json(&batch)
        .timeout(timeout);
    if let Some(token) = outbox.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| ReportError::Send(crate::http::describe(&e)))?;
    match response.status() {
        status if status.is_success() => {}
        reqwest::StatusCode::UNAUTHORIZED => {
            return Err(ReportError::Send(
                "HTTP 401: the registry takes reports with a report token only; set telemetry.report_token (WEBCPM_REPORT_TOKEN) to one made by `webcpm-registry token create --reports`".into(),
            ));
        }
        status => return Err(ReportError::Send(format!("HTTP {status}"))),
    }
    let _lock = locked(dir)?;
    let now = queued(dir);
    // Only appends happen meanwhile: the sent lines are still the first ones, unless the
    // outbox overflowed, and then they are gone already.
    let sent = now.iter().zip(&lines).take_while(|(a, b)| a == b).count();
    rewrite(dir, &now[sent..])?;
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::WebcVersion;

    fn report(i: usize) -> Report {
        Report {
            package: "ns/p".into(),
            version: format!("1.0.{i}"),
            format: WebcVersion::V3,
            phase: Phase::Run,
            ok: true,
            error_class: None,
            bucket: 3,
        }
    }

    #[test]
    fn the_outbox_is_bounded_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for chunk in 0..12 {
            let reports: Vec<Report> = (0..100).map(|i| report(chunk * 100 + i)).collect();
            record(dir.path(), &reports).unwrap();
        }
        let lines = queued(dir.path());
        assert_eq!(lines.len(), MAX_QUEUED);
        let last: Report = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(last.version, "1.0.1199");
        let first: Report = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first.version, "1.0.200");
    }

    #[test]
    fn the_client_id_hides_the_installation_id() {
        let id = client_id("http://r/graphql", "abcdef");
        assert!(!id.contains("abcdef"));
        assert_ne!(id, client_id("http://other/graphql", "abcdef"));
        assert_eq!(id, client_id("http://r/graphql", "abcdef"));
    }
}
