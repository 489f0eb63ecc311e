//! `registry serve --mirror UPSTREAM`: a pull-through mirror of another registry (the real
//! Wasmer registry, or another `registry serve`), for sites that must not depend on it.
//!
//! When a client asks for a package, the mirror asks the upstream for it first (at most once per
//! `--mirror-refresh` per package, or 10 s after the upstream failed to answer; clients asking
//! at once for one package wait for one question), with the same GraphQL query webcpm's client
//! sends. `search` and the web pages answer from what the mirror holds. Each version the mirror lacks is downloaded in both formats, each file checked
//! against the upstream's SHA-256 and size while it streams to disk, then opened with every
//! check `registry add` makes, and stored byte for byte, so that a lockfile written against the
//! upstream installs from the mirror and the other way round. The upstream's publish time and
//! publisher are kept, and so are its yanks. Then the client is answered from the mirror's own
//! database, as for any package.
//!
//! When the upstream is down, slow (10 s per question) or lies (a file whose SHA-256 or size is
//! not what it said, a file that is not a valid container), the mirror logs why and answers from
//! what it has: what it stored stays served. The mirror never sends a token upstream.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::add::{self, AddOptions, Copied, MAX_BLOB_SIZE, Publisher};
use crate::db::{Db, PackageRecord};
use crate::package::{PackageName, Sha256Digest, WebcVersion};
use crate::storage::Storage;

/// The resolve query the client sends; the mirror asks the upstream the same.
const GET_PACKAGE: &str = include_str!("../../../graphql/get_package.graphql");
/// The lines of the query that ask for the publisher, left out for an upstream that predates it.
const PUBLISHED_BY: &str = "    publishedBy {\n      username\n    }\n";
/// The reason a version the upstream yanked is yanked here.
const UPSTREAM_YANK: &str = "yanked by the upstream registry";
/// How long a client's request waits for the upstream before it is answered from the store.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// How long one question to the upstream may take, the downloads aside.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How soon the upstream is asked about a package again after it failed to answer.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// The largest answer read from the upstream.
const MAX_ANSWER: usize = 16 << 20;

/// `--mirror` and `--mirror-refresh`.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// The upstream's GraphQL endpoint.
    pub upstream: String,
    /// How long what the upstream said of a package is taken as current.
    pub refresh: Duration,
}

/// Why the upstream's answer could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MirrorError {
    #[error("the upstream {0}")]
    Upstream(String),
    #[error("the upstream refused the query: {0}")]
    Refused(String),
    #[error("{label}: {reason}")]
    File { label: String, reason: String },
    #[error(transparent)]
    Add(#[from] add::PublishError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// The mirror of one upstream.
pub(crate) struct Mirror {
    options: MirrorOptions,
    upstream: reqwest::Url,
    http: reqwest::Client,
    storage: Storage,
    /// When each package is next asked for upstream.
    next: Mutex<HashMap<PackageName, Instant>>,
    /// One lock per package: it is brought in once, however many clients ask at once.
    busy: Mutex<HashMap<PackageName, Arc<tokio::sync::Mutex<()>>>>,
    /// Versions whose copy failed, and when.
    failed: Mutex<HashMap<(PackageName, semver::Version), Instant>>,
    /// Set once the upstream refused `publishedBy` (a registry of the older schema).
    legacy: AtomicBool,
}

mod answer {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub(super) struct Response {
        pub data: Option<Data>,
        pub errors: Option<Vec<Error>>,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct Error {
        #[serde(default)]
        pub message: String,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct Data {
        #[serde(rename = "getPackage")]
        pub get_package: Option<Package>,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct Package {
        pub versions: Option<Vec<Option<Version>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Version {
        pub version: String,
        #[serde(default)]
        pub is_archived: bool,
        pub created_at: Option<String>,
        pub published_by: Option<User>,
        pub v2: Option<Node>,
        pub v3: Option<Node>,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct User {
        pub username: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Node {
        pub pirita_download_url: Option<String>,
        pub pirita_sha256_hash: Option<String>,
        pub pirita_size: Option<i64>,
    }
}

/// One file the upstream offers: where, and what its bytes must be.
struct Offered {
    url: reqwest::Url,
    sha256: Sha256Digest,
    size: Option<u64>,
}

impl Mirror {
    pub(crate) fn new(options: MirrorOptions, storage: Storage) -> Result<Mirror, String> {
        let upstream = webcpm_net::http::check_url(&options.upstream, false)
            .map_err(|e| format!("--mirror: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Every hop is checked as the first URL was: https, or http to loopback.
                let allowed = webcpm_net::http::check_url(attempt.url().as_str(), false).is_ok();
                match (attempt.previous().len(), allowed) {
                    (0..5, true) => attempt.follow(),
                    _ => attempt.stop(),
                }
            }))
            .build()
            .map_err(|e| format!("cannot set up HTTP for the mirror: {e}"))?;
        Ok(Mirror {
            options,
            upstream,
            http,
            storage,
            next: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            legacy: AtomicBool::new(false),
        })
    }

    /// Brings `name` up to date from the upstream, unless that was done within the refresh
    /// time. The work goes on in a task of its own; the request waits for it at most
    /// [`ANSWER_WAIT`] and then answers from what is stored (a large package keeps coming in
    /// meanwhile). Whatever goes wrong is logged.
    pub(crate) async fn refresh(self: &Arc<Self>, name: &PackageName) {
        if self.fresh(name) {
            return;
        }
        let (this, name) = (Arc::clone(self), name.clone());
        let task = tokio::spawn(async move { this.refresh_now(&name).await });
        let _ = tokio::time::timeout(ANSWER_WAIT, task).await;
    }

    async fn refresh_now(&self, name: &PackageName) {
        let lock = {
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(busy.entry(name.clone()).or_default())
        };
        let _one = lock.lock().await;
        if self.fresh(name) {
            return;
        }
        // After a failure, the upstream is asked again sooner than after an answer.
        let wait = match self.bring(name).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!("mirror: {n} change(s) to {name} from the upstream");
                }
                self.options.refresh
            }
            Err(e) => {
                tracing::warn!("mirror: {name}: {e}; answering from what is stored");
                self.options.refresh.min(RETRY_AFTER_FAILURE)
            }
        };
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        next.insert(name.clone(), Instant::now() + wait);
    }

    fn fresh(&self, name: &PackageName) -> bool {
        let next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        next.get(name).is_some_and(|at| Instant::now() < *at)
    }

    /// Asks the upstream for `name` and stores what is new; how many versions changed. A
    /// version that cannot be copied is logged and left out, and not tried again before the
    /// refresh time has passed; the others are copied.
    async fn bring(&self, name: &PackageName) -> Result<usize, MirrorError> {
        let Some(versions) = self.ask(name).await? else {
            return Ok(0);
        };
        let stored = self.stored(name).await?;
        let mut changed = 0;
        for v in versions.into_iter().flatten() {
            let Ok(version) = crate::package::parse_version(&v.version) else {
                continue;
            };
            let have = stored
                .as_ref()
                .and_then(|p| p.versions.iter().find(|s| s.version == version));
            let done = match have {
                // The upstream's yanks are followed; a yank made here is never undone.
                Some(have) if v.is_archived && !have.archived => {
                    self.set_archived(name, &version).await
                }
                Some(_) => continue,
                None if self.failed_lately(name, &version) => continue,
                None => self.copy(name, &version, &v).await,
            };
            match done {
                Ok(()) => changed += 1,
                Err(e) => {
                    tracing::warn!("mirror: {name}@{version}: {e}; left out for now");
                    let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                    failed.insert((name.clone(), version), Instant::now());
                }
            }
        }
        Ok(changed)
    }

    /// Whether copying `name@version` failed within the refresh time.
    fn failed_lately(&self, name: &PackageName, version: &semver::Version) -> bool {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.clone(), version.clone());
        failed
            .get(&key)
            .is_some_and(|at| at.elapsed() < self.options.refresh)
    }

    /// The upstream's versions of `name`; `None` when it does not know the package. An
    /// upstream of the schema before `publishedBy` is asked again without it.
    async fn ask(
        &self,
        name: &PackageName,
    ) -> Result<Option<Vec<Option<answer::Version>>>, MirrorError> {
        let legacy = self.legacy.load(Ordering::Relaxed);
        match self.ask_with(name, legacy).await {
            Err(MirrorError::Refused(why)) if !legacy => {
                tracing::info!(
                    "mirror: the upstream refused the query ({why}); asking without publishedBy"
                );
                self.legacy.store(true, Ordering::Relaxed);
                self.ask_with(name, true).await
            }
            answer => answer,
        }
    }

    async fn ask_with(
        &self,
        name: &PackageName,
        legacy: bool,
    ) -> Result<Option<Vec<Option<answer::Version>>>, MirrorError> {
        let query = match legacy {
            true => GET_PACKAGE.replace(PUBLISHED_BY, ""),
            false => GET_PACKAGE.to_string(),
        };
        let body = serde_json::json!({
            "query": query,
            "operationName": "GetPackage",
            "variables": { "name": name.as_str() },
        });
        let failed = |what: String| MirrorError::Upstream(format!("{}: {what}", self.upstream));
        let send = self.http.post(self.upstream.clone()).json(&body).send();
        let mut response = tokio::time::timeout(ASK_TIMEOUT, send)
            .await
            .map_err(|_| failed("no answer in 10 s".into()))?
            .map_err(|e| failed(webcpm_net::http::describe(&e)))?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            return Err(MirrorError::Refused("HTTP 400".into()));
        }
        if !response.status().is_success() {
            return Err(failed(format!("answered HTTP {}", response.status())));
        }
        let mut bytes = Vec::new();
        let read = async {
            while let Some(chunk) = response.chunk().await? {
                if bytes.len() + chunk.len() > MAX_ANSWER {
                    return Ok(false);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(true)
        };
        match tokio::time::timeout(ASK_TIMEOUT, read).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(failed(format!("answer is over {MAX_ANSWER} bytes"))),
            Ok(Err(e)) => return Err(failed(webcpm_net::http::describe(&e))),
            Err(_) => return Err(failed("answer took over 10 s".into())),
        }
        let answer: answer::Response = serde_json::from_slice(&bytes)
            .map_err(|e| failed(format!("answer does not match the schema: {e}")))?;
        let errors = answer.errors.unwrap_or_default();
        if let Some(e) = errors.iter().find(|e| e.message.contains("publishedBy")) {
            return Err(MirrorError::Refused(e.message.chars().take(200).collect()));
        }
        Ok(answer
            .data
            .and_then(|d| d.get_package)
            .map(|p| p.versions.unwrap_or_default()))
    }

    async fn stored(&self, name: &PackageName) -> Result<Option<PackageRecord>, MirrorError> {
        let (database, name) = (self.storage.database.clone(), name.clone());
        let read = move || -> Result<Option<PackageRecord>, crate::db::DbError> {
            match Db::open_existing(&database)? {
                Some(mut db) => db.package(&name),
                None => Ok(None),
            }
        };
        blocking(read).await
    }

    /// Yanks a version, as the upstream did.
    async fn set_archived(
        &self,
        name: &PackageName,
        version: &semver::Version,
    ) -> Result<(), MirrorError> {
        let (storage, name, version) = (self.storage.clone(), name.clone(), version.clone());
        let reason = Some(UPSTREAM_YANK);
        blocking(move || add::set_archived(&storage, &name, &version, true, reason)).await?;
        Ok(())
    }

    /// Downloads both formats of a version, checks them and stores them as they are.
    async fn copy(
        &self,
        name: &PackageName,
        version: &semver::Version,
        v: &answer::Version,
    ) -> Result<(), MirrorError> {
        let label = |webc: WebcVersion| format!("{name}@{version} {webc} from the upstream");
        let mut files = [None, None];
        for (slot, webc, node) in [(0, WebcVersion::V2, &v.v2), (1, WebcVersion::V3, &v.v3)] {
            if let Some(offered) = self.offered(node.as_ref(), &label(webc))? {
                files[slot] = Some(self.download(&offered, &label(webc)).await?);
            }
        }
        let [v2, v3] = files;
        let copied = Copied {
            label: format!("{name}@{version} from the upstream"),
            v2,
            v3,
        };
        let opts = AddOptions {
            name: Some(name.clone()),
            version: Some(version.clone()),
            published_at: v.created_at.as_deref().and_then(unix_time),
            // A name that is no user name here is kept as not known, never made up.
            publisher: v
                .published_by
                .as_ref()
                .and_then(|u| u.username.as_deref())
                .and_then(|u| crate::tokens::check_user(u).ok())
                .map_or(Publisher::Unknown, Publisher::Named),
            ..AddOptions::default()
        };
        let (storage, archived) = (self.storage.clone(), v.is_archived);
        let (name, version) = (name.clone(), version.clone());
        blocking(move || {
            add::add_copy(&storage, &copied, &opts)?;
            match archived {
                true => add::set_archived(&storage, &name, &version, true, Some(UPSTREAM_YANK)),
                false => Ok(()),
            }
        })
        .await?;
        Ok(())
    }

    /// What a node offers; `None` when it offers nothing, an error when what it says is unusable.
    fn offered(
        &self,
        node: Option<&answer::Node>,
        label: &str,
    ) -> Result<Option<Offered>, MirrorError> {
        let bad = |reason: String| MirrorError::File {
            label: label.to_string(),
            reason,
        };
        let Some(node) = node else { return Ok(None) };
        let (Some(url), Some(hash)) = (&node.pirita_download_url, &node.pirita_sha256_hash) else {
            return Ok(None);
        };
        let url = self
            .upstream
            .join(url)
            .map_err(|e| bad(format!("download URL: {e}")))?;
        let url =
            webcpm_net::http::check_url(url.as_str(), false).map_err(|e| bad(e.to_string()))?;
        let sha256 = hash
            .parse()
            .map_err(|e: crate::package::InputError| bad(e.to_string()))?;
        let size = match node.pirita_size {
            None => None,
            Some(n) if n < 0 || n as u64 > MAX_BLOB_SIZE => {
                return Err(bad(format!("the size {n} is not one this registry stores")));
            }
            Some(n) => Some(n as u64),
        };
        Ok(Some(Offered { url, sha256, size }))
    }

    /// Streams a file to a temporary file in the registry's root, checking its size as it
    /// comes and its SHA-256 at the end; the file, mapped.
    async fn download(&self, offered: &Offered, label: &str) -> Result<Bytes, MirrorError> {
        let bad = |reason: String| MirrorError::File {
            label: label.to_string(),
            reason,
        };
        let limit = offered.size.unwrap_or(MAX_BLOB_SIZE);
        let temp = tempfile::NamedTempFile::new_in(tmp_dir(&self.storage.root)?)
            .map_err(|e| bad(format!("cannot make a temporary file: {e}")))?;
        let fetch = async {
            let mut response = self
                .http
                .get(offered.url.clone())
                .send()
                .await
                .map_err(|e| bad(webcpm_net::http::describe(&e)))?;
            if !response.status().is_success() {
                return Err(bad(format!(
                    "the download answered HTTP {}",
                    response.status()
                )));
            }
            let mut file = tokio::fs::File::create(temp.path())
                .await
                .map_err(|e| bad(e.to_string()))?;
            let (mut hasher, mut got) = (Sha256::new(), 0u64);
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| bad(webcpm_net::http::describe(&e)))?
            {
                got += chunk.len() as u64;
                if got > limit {
                    return Err(bad(format!(
                        "the file is larger than the {limit} bytes said"
                    )));
                }
                hasher.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(|e| bad(e.to_string()))?;
            }
            file.sync_all().await.map_err(|e| bad(e.to_string()))?;
            if offered.size.is_some_and(|n| n != got) {
                return Err(bad(format!("{got} bytes arrived, not the {limit} said")));
            }
            let found = Sha256Digest(hasher.finalize().into());
            if found != offered.sha256 {
                return Err(bad(format!(
                    "its SHA-256 is {}, not the {} the upstream said",
                    found.hex(),
                    offered.sha256.hex()
                )));
            }
            Ok(())
        };
        tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch)
            .await
            .map_err(|_| bad("the download took over 10 minutes".into()))??;
        crate::container::map_file(temp.path()).map_err(|e| bad(e.to_string()))
    }
}

/// The registry's directory for temporary files, made when missing.
fn tmp_dir(root: &Path) -> Result<std::path::PathBuf, MirrorError> {
    let dir = root.join("tmp");
    std::fs::create_dir_all(&dir).map_err(|e| MirrorError::File {
        label: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(dir)
}

/// An RFC 3339 time as Unix seconds.
fn unix_time(text: &str) -> Option<i64> {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &format)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Runs `work` off the async threads.
async fn blocking<T: Send + 'static, E: Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, MirrorError>
where
    MirrorError: From<E>,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(MirrorError::Upstream(format!("task failed: {e}"))),
    }
}
