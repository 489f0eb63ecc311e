//! Downloads started while a tree is still being resolved. Once a level's answer has settled a
//! member's version, its file in the format the policy prefers first starts to download while
//! the registry is asked about the next level, so that a deep tree does not wait for every
//! level's answer before its first byte moves.
//!
//! The tree's own fetch then takes each result instead of fetching again: a file that came is
//! used as it is, and one that failed fails the tree's fetch the same way (falling back, or
//! not, as any failure would), so no file is ever asked for twice. A member whose two formats are
//! one file (an old registry's shape) is left to the tree's fetch, which knows what to do with
//! bytes of the other format; so is any member once the tree falls back to another format.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesUnordered;

use crate::fetch::{FetchError, Fetched};
use crate::install::Installer;
use crate::package::{Release, Sha256Digest, WebcVersion};

type Outcome = (Sha256Digest, Result<Fetched, FetchError>);

/// The downloads started early for one resolve.
pub(crate) struct Early<'a> {
    installer: &'a Installer,
    /// The format the policy prefers first, which the tree gets unless a member lacks it.
    webc: WebcVersion,
    started: BTreeSet<Sha256Digest>,
    running: FuturesUnordered<LocalBoxFuture<'a, Outcome>>,
    done: HashMap<Sha256Digest, Result<Fetched, FetchError>>,
}

impl<'a> Early<'a> {
    pub(crate) fn new(installer: &'a Installer, webc: WebcVersion) -> Early<'a> {
        Early {
            installer,
            webc,
            started: BTreeSet::new(),
            running: FuturesUnordered::new(),
            done: HashMap::new(),
        }
    }

    /// Starts the download of every release of `picked` not started yet.
    pub(crate) fn start(&mut self, picked: Vec<Release>) {
        for release in picked {
            if release.shared_file().is_some() {
                continue;
            }
            let Some(dist) = release.offer(self.webc).distribution().cloned() else {
                continue;
            };
            if !self.started.insert(dist.sha256) {
                continue;
            }
            let installer = self.installer;
            let webc = self.webc;
            self.running.push(Box::pin(async move {
                let result = installer.fetch_member(&release, &dist, webc, None).await;
                (dist.sha256, result)
            }));
        }
    }

    /// Awaits `work` while the downloads go on.
    pub(crate) async fn during<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                Some((digest, result)) = self.running.next(), if !self.running.is_empty() => {
                    self.done.insert(digest, result);
                }
            }
        }
    }

    /// Waits for every download started, and hands their results to the tree's fetch.
    pub(crate) async fn finish(mut self) -> Fetches {
        while let Some((digest, result)) = self.running.next().await {
            self.done.insert(digest, result);
        }
        Fetches(Mutex::new(self.done))
    }
}

/// The results of the downloads started early, each taken once by the tree's fetch.
#[derive(Default)]
pub(crate) struct Fetches(Mutex<HashMap<Sha256Digest, Result<Fetched, FetchError>>>);

impl Fetches {
    pub(crate) fn take(&self, digest: &Sha256Digest) -> Option<Result<Fetched, FetchError>> {
        self.0.lock().expect("never poisoned").remove(digest)
    }
}
