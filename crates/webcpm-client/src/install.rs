//! Installing: the one place where the resolver, the policy, the registry client, the downloader
//! and the store meet. It asks the registry for what the resolver needs, downloads the whole
//! tree in the first viable format (in parallel, up to the configured limit), falls back to the
//! next format as a whole tree when a download fails its checks, and records the install, its
//! tree and every decision in the index in one transaction.
//!
//! A request that the installed version already satisfies is answered from the index alone,
//! without the network, unless a refresh is asked for.
//!
//! The real registry's shapes, handled here: when both nodes of a version name one file (the
//! same SHA-256), a download in one format may keep bytes of the other ([`crate::fetch::Request`]),
//! so that the fallback finds them in the store: one download, and the reason recorded is
//! "the v3 node serves WebC v2". A download URL that answers 403 or 410 is renewed once by
//! asking the registry again ([`RegistryRenew`]). A size that the registry left out is recorded
//! as the size the download had. A node without a manifest hides its dependencies until its
//! bytes arrive: they are read from the bytes, and the tree is resolved and fetched again with
//! them (what is already in the store is not downloaded again).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::Semaphore;

use crate::artifacts::{self, CompileReporter, PrepareError};
use crate::cooldown::Cooldown;
use crate::early::{Early, Fetches};
use crate::fetch::{FetchError, Fetcher, Renew, Request};
use crate::package::{
    CandidateOutcome, Dependency, InputError, PackageName, PackageSpec, Release, Sha256Digest,
    WebcVersion,
};
use crate::policy::Policy;
use crate::registry::{RegistryClient, RegistryError};
use crate::resolver::{self, Lookup, PackageSource, Resolution, Resolve, ResolveError};
use crate::store::{Decision, InstallMember, InstallRecord, Installed, Store, StoreError};

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0} is not installed and --offline forbids asking the registry")]
    Offline(PackageName),
    #[error("{package}: {webc} download failed: {source}")]
    Fetch {
        package: PackageName,
        webc: WebcVersion,
        #[source]
        source: Box<FetchError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

impl From<crate::store::IndexError> for InstallError {
    fn from(e: crate::store::IndexError) -> Self {
        InstallError::Store(e.into())
    }
}

/// Whether the registry may be asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    #[default]
    Online,
    /// Only what the store holds.
    Offline,
}

impl Network {
    /// What a command's `--offline` flag asks for.
    pub fn offline_if(offline: bool) -> Network {
        if offline {
            Network::Offline
        } else {
            Network::Online
        }
    }
}

/// How to install.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallOptions {
    pub no_deps: bool,
    pub network: Network,
    /// Ask the registry even when the installed version satisfies the request.
    pub refresh: bool,
}

/// What an install did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstallReport {
    pub package: PackageName,
    pub version: String,
    pub webc: WebcVersion,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub fell_back_from: Option<WebcVersion>,
    pub reason: String,
    /// Already installed: nothing was asked of the registry.
    #[serde(skip)]
    pub up_to_date: bool,
    /// How many files were downloaded.
    #[serde(skip)]
    pub downloaded: usize,
}

/// One candidate as `resolve --explain` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CandidateReport {
    pub webc: WebcVersion,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub outcome: CandidateOutcome,
    pub reason: String,
}

/// What `resolve` shows: the choice and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub package: PackageName,
    pub version: String,
    pub webc: WebcVersion,
    pub rule: String,
    pub candidates: Vec<CandidateReport>,
    pub tree: Vec<TreeEntry>,
    /// What the registry's answer was like: fields it left out, one file behind both nodes,
    /// signed URLs, versions skipped as unusable, newer versions the cooldown held back.
    pub notes: Vec<String>,
}

/// One member of a resolved tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeEntry {
    pub package: PackageName,
    pub version: String,
    pub depth: u32,
    pub needed_by: Option<PackageName>,
}

/// A tree downloaded in one format, after the formats that failed before it.
struct TreeFetched {
    webc: WebcVersion,
    members: Vec<InstallMember>,
    failures: Vec<(WebcVersion, String)>,
    /// How many files were downloaded (not found in the store).
    downloaded: usize,
}

/// Why the chosen format was installed: the resolver's reason, or the failures it fell back
/// from.
fn chosen_reason(
    resolution: &Resolution,
    failures: &[(WebcVersion, String)],
    webc: WebcVersion,
) -> String {
    if failures.is_empty() {
        return resolution
            .candidates
            .iter()
            .find(|c| c.webc == webc)
            .map(|c| c.reason.clone())
            .unwrap_or_default();
    }
    let failed: Vec<String> = failures
        .iter()
        .map(|(w, e)| format!("{w} failed: {e}"))
        .collect();
    format!("fallback: {}", failed.join("; "))
}

impl InstallReport {
    /// The report of an install that already answers the request.
    pub fn up_to_date(installed: Installed) -> InstallReport {
        InstallReport {
            package: installed.package,
            version: installed.version.to_string(),
            webc: installed.webc,
            sha256: installed.sha256,
            size: installed.size,
            fell_back_from: installed.fell_back_from,
            reason: installed.reason,
            up_to_date: true,
            downloaded: 0,
        }
    }
}

/// Releases loaded so far; `None` for a package the registry does not know.
#[derive(Default)]
struct Loaded(BTreeMap<PackageName, Option<Vec<Release>>>);

/// Dependencies read from the bytes of versions whose nodes had no manifest, by package and
/// version: the resolver sees them on the next round.
type Learned = BTreeMap<(PackageName, semver::Version), Vec<Dependency>>;

/// How many times an install resolves again after learning dependencies from downloaded bytes.
const MAX_LEARNING_ROUNDS: usize = 8;

/// Gives the nodes without a manifest of the releases in `learned` the dependencies learned.
fn teach(releases: &mut [Release], learned: &Learned) {
    for release in releases {
        let Some(deps) = learned.get(&(release.name.clone(), release.version.clone())) else {
            continue;
        };
        for offer in [&mut release.v2, &mut release.v3] {
            if let crate::package::Offer::Offered(d) = offer
                && d.manifest.is_none()
            {
                d.dependencies = deps.clone();
            }
        }
    }
}

impl PackageSource for Loaded {
    fn lookup(&self, name: &PackageName) -> Lookup<'_> {
        match self.0.get(name) {
            None => Lookup::Pending,
            Some(None) => Lookup::NotFound,
            Some(Some(releases)) => Lookup::Found(releases),
        }
    }
}

/// Everything an install needs.
pub struct Installer {
    pub store: Arc<Store>,
    /// Compiles every atom at install; `None` installs without compiling.
    pub runtime: Option<crate::runtime::Runtime>,
    pub compile_reporter: Arc<dyn CompileReporter>,
    /// The fleet's shared compiled code (`compile.shared`), if configured.
    pub shared_cache: Option<Arc<crate::shared_cache::SharedCache>>,
    /// Which atoms get baseline code first (`compile.tiering`).
    pub tiering: artifacts::Tiering,
    /// `None` when offline.
    pub client: Option<RegistryClient>,
    pub fetcher: Fetcher,
    pub policy: Policy,
    /// How old a version must be to be chosen (`resolve.min_release_age`).
    pub cooldown: Cooldown,
    /// Downloads under way at once, across every package.
    pub downloads: Arc<Semaphore>,
}

impl Installer {
    /// How this installer compiles: its reporter, `when`, and the shared cache.
    pub fn compiling(&self, when: artifacts::Recompile) -> artifacts::Compiling {
        artifacts::Compiling {
            reporter: self.compile_reporter.clone(),
            when,
            tiering: self.tiering,
            shared: self.shared_cache.clone(),
        }
    }

    fn registry_label(&self) -> String {
        self.client
            .as_ref()
            .map(|c| crate::http::redact(c.endpoint().as_str()))
            .unwrap_or_default()
    }

    /// Resolves `spec` against the registry, loading packages as the resolver asks for them.
    pub async fn resolve(
        &self,
        spec: &PackageSpec,
        no_deps: bool,
    ) -> Result<Resolution, InstallError> {
        self.resolve_learned(spec, no_deps, &Learned::new(), None)
            .await
    }

    /// [`Installer::resolve`], with dependencies learned from downloaded bytes; with `early`,
    /// the members settled at each level start to download while the next level loads.
    async fn resolve_learned(
        &self,
        spec: &PackageSpec,
        no_deps: bool,
        learned: &Learned,
        mut early: Option<&mut Early<'_>>,
    ) -> Result<Resolution, InstallError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| InstallError::Offline(spec.name.clone()))?;
        let mut loaded = Loaded::default();
        loop {
            match resolver::resolve(spec, &self.policy, &self.cooldown, &loaded, no_deps)? {
                Resolve::Done(resolution) => return Ok(resolution),
                Resolve::Needs { names, picked } => {
                    // One level of the tree: one request (or a few, for a wide level).
                    let answers = match early.as_deref_mut() {
                        Some(early) => {
                            early.start(picked);
                            early.during(client.packages(&names)).await?
                        }
                        None => client.packages(&names).await?,
                    };
                    for (name, mut answer) in names.into_iter().zip(answers) {
                        if let Some(releases) = answer.as_mut() {
                            teach(releases, learned);
                        }
                        loaded.0.insert(name, answer);
                    }
                }
            }
        }
    }

    /// `resolve --explain`: the choice without downloading anything.
    pub async fn explain(
        &self,
        spec: &PackageSpec,
        no_deps: bool,
    ) -> Result<Explanation, InstallError> {
        let resolution = self.resolve(spec, no_deps).await?;
        let root = resolution.root();
        Ok(Explanation {
            notes: notes(&resolution),
            package: root.name.clone(),
            version: root.version.to_string(),
            webc: resolution.viable[0],
            rule: resolution.rule.clone(),
            candidates: resolution
                .candidates
                .iter()
                .map(|c| {
                    let d = root.offer(c.webc).distribution();
                    CandidateReport {
                        webc: c.webc,
                        url: d.map(|d| crate::http::redact(&d.url)),
                        sha256: d.map(|d| d.sha256.hex()),
                        size: d.and_then(|d| d.size),
                        outcome: c.outcome,
                        reason: c.reason.clone(),
                    }
                })
                .collect(),
            tree: resolution
                .members
                .iter()
                .map(|m| TreeEntry {
                    package: m.release.name.clone(),
                    version: m.release.version.to_string(),
                    depth: m.depth,
                    needed_by: m.needed_by.clone(),
                })
                .collect(),
        })
    }

    /// The install of `spec.name` if it already satisfies the request under the policy.
    fn satisfied(&self, spec: &PackageSpec) -> Result<Option<Installed>, InstallError> {
        satisfied_in(&self.store, spec, self.policy.forced.as_ref())
    }

    /// Installs one package and its tree.
    pub async fn install(
        &self,
        spec: &PackageSpec,
        options: InstallOptions,
    ) -> Result<InstallReport, InstallError> {
        if !options.refresh
            && let Some(installed) = self.satisfied(spec)?
        {
            return Ok(InstallReport::up_to_date(installed));
        }
        if options.network == Network::Offline {
            return Err(InstallError::Offline(spec.name.clone()));
        }
        let mut learned = Learned::new();
        let mut earlier_downloads = 0;
        for round in 0.. {
            let mut early = Early::new(self, self.policy.order(&spec.name).formats[0]);
            let resolution = self
                .resolve_learned(spec, options.no_deps, &learned, Some(&mut early))
                .await?;
            let fetches = early.finish().await;
            let mut tree = self.fetch_first_viable(&resolution, &fetches).await?;
            tree.downloaded += earlier_downloads;
            // A node without a manifest hid its dependencies until its bytes arrived.
            if !options.no_deps && round < MAX_LEARNING_ROUNDS {
                let more = self.learn(&resolution, tree.webc, &learned)?;
                if more.values().any(|deps| !deps.is_empty()) {
                    learned.extend(more);
                    earlier_downloads = tree.downloaded;
                    continue;
                }
            }
            self.warn_young(&resolution);
            return self.complete(spec, options, &resolution, tree).await;
        }
        unreachable!("the rounds of learning end in an install or an error")
    }

    /// Says which members the cooldown would have held back: they were asked for exactly.
    fn warn_young(&self, resolution: &Resolution) {
        for young in &resolution.members {
            if let Some(hold) = self.cooldown.hold(&young.release) {
                tracing::warn!(
                    "{}@{} is younger than resolve.min_release_age ({hold}); it is installed because it was asked for exactly",
                    young.release.name,
                    young.release.version
                );
            }
        }
    }

    /// Installs one root of a lockfile. The resolver sees only the locked releases, so nothing
    /// is asked of the registry (but, when a signed URL expired, a fresh URL for the same
    /// bytes), and the hashes checked are the lockfile's. The policy still picks the format,
    /// from the two the lockfile keeps.
    pub async fn install_locked(
        &self,
        source: &crate::lockfile::LockedSource,
        spec: &PackageSpec,
        options: InstallOptions,
    ) -> Result<InstallReport, InstallError> {
        // What was locked is taken as it is: the cooldown applies when a lockfile is written.
        let cooldown = Cooldown::default();
        let resolution =
            match resolver::resolve(spec, &self.policy, &cooldown, source, options.no_deps)? {
                Resolve::Done(resolution) => resolution,
                Resolve::Needs { names, .. } => {
                    unreachable!("a locked source knows every package or none: {names:?}")
                }
            };
        let tree = self
            .fetch_first_viable(&resolution, &Fetches::default())
            .await?;
        self.complete(spec, options, &resolution, tree).await
    }

    /// Downloads the tree in the first viable format whose download succeeds, falling back to
    /// the next one as a whole tree.
    async fn fetch_first_viable(
        &self,
        resolution: &Resolution,
        early: &Fetches,
    ) -> Result<TreeFetched, InstallError> {
        let mut failures: Vec<(WebcVersion, String)> = Vec::new();
        for (i, &webc) in resolution.viable.iter().enumerate() {
            match self.fetch_tree(resolution, webc, early).await {
                Ok((members, downloaded)) => {
                    return Ok(TreeFetched {
                        webc,
                        members,
                        failures,
                        downloaded,
                    });
                }
                Err((package, source))
                    if source.allows_fallback() && i + 1 < resolution.viable.len() =>
                {
                    tracing::warn!(
                        "{package}: {webc} failed ({source}); falling back to {}",
                        resolution.viable[i + 1]
                    );
                    failures.push((webc, format!("{package}: {source}")));
                }
                Err((package, source)) => {
                    return Err(InstallError::Fetch {
                        package,
                        webc,
                        source: Box::new(source),
                    });
                }
            }
        }
        unreachable!("the resolver returns at least one viable format")
    }

    /// Compiles the downloaded tree and records the install, with every decision, in one
    /// transaction.
    async fn complete(
        &self,
        spec: &PackageSpec,
        options: InstallOptions,
        resolution: &Resolution,
        tree: TreeFetched,
    ) -> Result<InstallReport, InstallError> {
        let TreeFetched {
            webc,
            members,
            failures,
            downloaded,
        } = tree;
        for yanked in resolution.members.iter().filter(|m| m.release.archived) {
            tracing::warn!(
                "{}@{} is yanked (archived by the registry); it is installed because it was asked for exactly: move to another version when you can",
                yanked.release.name,
                yanked.release.version
            );
        }
        if let Some(runtime) = &self.runtime {
            let blobs: Vec<Sha256Digest> = members.iter().map(|m| m.sha256).collect();
            let when = if options.refresh {
                artifacts::Recompile::IfMissingOrFailed
            } else {
                artifacts::Recompile::IfMissing
            };
            artifacts::prepare(&self.store, runtime, &blobs, &self.compiling(when)).await?;
        }
        let reason = chosen_reason(resolution, &failures, webc);
        let size = self
            .store
            .blob(&members[0].sha256)?
            .map_or(0, |blob| blob.size);
        let first = self.policy.order(&spec.name).formats[0];
        let record = InstallRecord {
            package: spec.name.clone(),
            request: spec.to_string(),
            registry: self.registry_label(),
            webc,
            rule: resolution.rule.clone(),
            reason: reason.clone(),
            fell_back_from: (webc != first).then_some(first),
            decisions: decisions(resolution, &failures, webc),
            releases: resolution
                .members
                .iter()
                .map(|m| learned_sizes(&m.release, &self.store))
                .collect(),
            members,
        };
        self.store.index().record_install(&record)?;
        let root = &record.members[0];
        Ok(InstallReport {
            package: spec.name.clone(),
            version: root.version.to_string(),
            webc,
            sha256: root.sha256,
            size,
            fell_back_from: record.fell_back_from,
            reason,
            up_to_date: false,
            downloaded,
        })
    }

    /// The dependencies that the downloaded bytes of members whose `webc` node had no manifest
    /// declare, for the members not learned yet.
    fn learn(
        &self,
        resolution: &Resolution,
        webc: WebcVersion,
        learned: &Learned,
    ) -> Result<Learned, InstallError> {
        let mut more = Learned::new();
        for m in &resolution.members {
            let key = (m.release.name.clone(), m.release.version.clone());
            let Some(dist) = m.release.offer(webc).distribution() else {
                continue;
            };
            if dist.manifest.is_some() || learned.contains_key(&key) {
                continue;
            }
            let path = self.store.blob_path(&dist.sha256);
            let bytes = crate::container::map_file(&path)
                .map_err(|source| StoreError::Io { path, source })?;
            let bad = |reason: String| ResolveError::BadDependency {
                name: key.0.clone(),
                version: key.1.clone(),
                reason,
            };
            let checked = crate::container::open_stored(bytes).map_err(|e| bad(e.to_string()))?;
            let deps = crate::package::dependencies_of(checked.manifest()).map_err(bad)?;
            more.insert(key, deps);
        }
        Ok(more)
    }

    /// Downloads every member of the tree in `webc`, in parallel, taking the result of a
    /// download started `early` where there is one. Returns the members and how many files were
    /// downloaded, or the first failure.
    async fn fetch_tree(
        &self,
        resolution: &Resolution,
        webc: WebcVersion,
        early: &Fetches,
    ) -> Result<(Vec<InstallMember>, usize), (PackageName, FetchError)> {
        let jobs = resolution.members.iter().map(|m| {
            let dist = m
                .release
                .offer(webc)
                .distribution()
                .expect("viable formats are offered by every member");
            // When both nodes name one file, its bytes may be the other format: keep them as
            // that format so that the fallback needs no second download.
            let other = m
                .release
                .shared_file()
                .is_some()
                .then_some(webc.other())
                .filter(|w| resolution.viable.contains(w));
            async move {
                if let Some(result) = early.take(&dist.sha256) {
                    return result
                        .map(|f| (m, f))
                        .map_err(|e| (m.release.name.clone(), e));
                }
                self.fetch_member(&m.release, dist, webc, other)
                    .await
                    .map(|f| (m, f))
                    .map_err(|e| (m.release.name.clone(), e))
            }
        });
        let results: Vec<_> = futures_util::stream::iter(jobs)
            .buffered(resolution.members.len().max(1))
            .collect()
            .await;
        let mut members = Vec::new();
        let mut downloaded = 0;
        for result in results {
            let (m, fetched) = result?;
            downloaded += usize::from(!fetched.cached);
            members.push(InstallMember {
                package: m.release.name.clone(),
                version: m.release.version.clone(),
                webc,
                sha256: fetched.blob.sha256,
                depth: m.depth,
            });
        }
        Ok((members, downloaded))
    }

    /// Downloads one member's file in format `webc` under the limit of downloads at once,
    /// renewing its address from the registry if it expires. `other` names the format its
    /// bytes may be instead, when both formats are one file.
    pub(crate) async fn fetch_member(
        &self,
        release: &Release,
        dist: &crate::package::Distribution,
        webc: WebcVersion,
        other: Option<WebcVersion>,
    ) -> Result<crate::fetch::Fetched, FetchError> {
        let _permit = self.downloads.acquire().await.expect("never closed");
        let label = format!("{}@{} ({webc})", release.name, release.version);
        let renew = self.client.as_ref().map(|client| RegistryRenew {
            client,
            name: &release.name,
            version: &release.version,
        });
        let request = Request {
            renew: renew.as_ref().map(|r| r as &dyn Renew),
            other,
            ..Request::new(dist, &label)
        };
        self.fetch_locked_request(request).await
    }

    /// Downloads a distribution unless the store has it, holding the blob's lock so that
    /// processes installing the same package download it once: the others wait, then find it.
    pub async fn fetch_locked(
        &self,
        dist: &crate::package::Distribution,
        label: &str,
    ) -> Result<crate::fetch::Fetched, FetchError> {
        self.fetch_locked_request(Request::new(dist, label)).await
    }

    /// [`Installer::fetch_locked`] for a [`Request`] with its renewal and other format.
    pub async fn fetch_locked_request(
        &self,
        request: Request<'_>,
    ) -> Result<crate::fetch::Fetched, FetchError> {
        let dist = request.dist;
        let (store, digest) = (self.store.clone(), dist.sha256);
        let _lock = tokio::task::spawn_blocking(move || store.lock_blob(&digest))
            .await
            .map_err(|e| FetchError::Transport {
                url: crate::http::redact(&dist.url),
                reason: format!("waiting for the download lock failed: {e}"),
            })??;
        self.fetcher.fetch_request(&self.store, request).await
    }

    /// Removes an install; its blobs stay until `cache gc`.
    pub fn uninstall(&self, name: &PackageName) -> Result<bool, InstallError> {
        Ok(self.store.index().remove_install(name)?)
    }
}

/// Renews an expired download URL by asking the registry for the package again and taking the
/// URL of the node that names the same file.
pub struct RegistryRenew<'a> {
    pub client: &'a RegistryClient,
    pub name: &'a PackageName,
    pub version: &'a semver::Version,
}

impl Renew for RegistryRenew<'_> {
    fn renew<'a>(
        &'a self,
        dist: &'a crate::package::Distribution,
    ) -> futures_util::future::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let releases = self
                .client
                .package(self.name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the registry no longer knows {}", self.name))?;
            releases
                .iter()
                .filter(|r| r.version == *self.version)
                .flat_map(|r| [r.offer(dist.webc), r.offer(dist.webc.other())])
                .filter_map(|offer| offer.distribution())
                .find(|d| d.sha256 == dist.sha256)
                .map(|d| d.url.clone())
                .ok_or_else(|| {
                    format!(
                        "the registry no longer offers {}@{} with SHA-256 {}",
                        self.name, self.version, dist.sha256
                    )
                })
        })
    }
}

/// `release` with the sizes the registry left out filled in from the store, where a download
/// has learned them.
fn learned_sizes(release: &Release, store: &Store) -> Release {
    let mut release = release.clone();
    for offer in [&mut release.v2, &mut release.v3] {
        if let crate::package::Offer::Offered(d) = offer
            && d.size.is_none()
            && let Ok(Some(blob)) = store.blob(&d.sha256)
        {
            d.size = Some(blob.size);
        }
    }
    release
}

/// What `resolve --explain` says about the shape of the registry's answer.
fn notes(resolution: &Resolution) -> Vec<String> {
    let mut notes = Vec::new();
    for m in &resolution.members {
        let r = &m.release;
        for webc in WebcVersion::ALL {
            let Some(d) = r.offer(webc).distribution() else {
                continue;
            };
            let left_out = d.left_out();
            if !left_out.is_empty() {
                notes.push(format!(
                    "{}@{} {webc}: the registry left out {}",
                    r.name,
                    r.version,
                    left_out.join(", ")
                ));
            }
            if let Some(seconds) = d.expires_in {
                notes.push(format!(
                    "{}@{} {webc}: a signed URL that expires in {seconds} s (renewed once if refused)",
                    r.name, r.version
                ));
            }
        }
        if let Some(d) = r.shared_file() {
            notes.push(format!(
                "{}@{}: the v2 and v3 nodes name the same file (sha256:{}); it is downloaded once",
                r.name, r.version, d.sha256
            ));
        }
    }
    for s in &resolution.skipped {
        notes.push(format!("{}@{} skipped: {}", s.name, s.version, s.reason));
    }
    for h in &resolution.held {
        notes.push(format!(
            "{}@{} {} (resolve.min_release_age)",
            h.name, h.version, h.hold
        ));
    }
    notes
}

/// Whether an install answers a request: its version matches (any version answers `latest`, as
/// with `cargo install`), and its format is the forced one, if a format is forced.
/// The install in `store` that already answers `spec`, when its file is there: an install of
/// it would do nothing.
pub fn satisfied_in(
    store: &Store,
    spec: &PackageSpec,
    forced: Option<&crate::policy::Forced>,
) -> Result<Option<Installed>, InstallError> {
    let Some(installed) = store.index().installed(&spec.name)? else {
        return Ok(None);
    };
    if satisfies(&installed, spec, forced) && store.blob(&installed.sha256)?.is_some() {
        Ok(Some(installed))
    } else {
        Ok(None)
    }
}

pub fn satisfies(
    installed: &Installed,
    spec: &PackageSpec,
    forced: Option<&crate::policy::Forced>,
) -> bool {
    (spec.version == crate::package::VersionRequest::Latest
        || spec.version.matches(&installed.version))
        && forced.is_none_or(|f| f.webc == installed.webc)
}

/// The decisions recorded for an install that ended in `chosen`.
fn decisions(
    resolution: &Resolution,
    failures: &[(WebcVersion, String)],
    chosen: WebcVersion,
) -> Vec<Decision> {
    resolution
        .candidates
        .iter()
        .map(|c| {
            let (outcome, reason) =
                if let Some((_, why)) = failures.iter().find(|(w, _)| *w == c.webc) {
                    (CandidateOutcome::Failed, why.clone())
                } else if c.webc == chosen {
                    (CandidateOutcome::Chosen, c.reason.clone())
                } else if c.outcome == CandidateOutcome::Chosen {
                    (CandidateOutcome::NotTried, "not reached".to_string())
                } else {
                    (c.outcome, c.reason.clone())
                };
            Decision {
                webc: c.webc,
                outcome,
                reason,
            }
        })
        .collect()
}
