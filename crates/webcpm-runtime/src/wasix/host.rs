//! The runtime that Wasmer's WASIX implementation runs a program on: webcpm's engine, the
//! program's task manager, the artifacts of the commands it may start, no package source, a
//! loader that loads nothing, and the host's network only when the user granted it (`--net`,
//! as under `wasmer run`: sockets, name resolution and the HTTP client of
//! `wasix_http_client_v1`).
//!
//! It holds exactly that, rather than starting from `PluggableRuntime::new`, which first makes
//! what webcpm then replaces: a second engine (with its compiler), an HTTP client, the host's
//! network and a source on Wasmer's registry, a good part of a millisecond of every run's start.

use std::sync::Arc;

use wasmer::Engine;
use wasmer_wasix::http::DynHttpClient;
use wasmer_wasix::runtime::module_cache::ModuleCache;
use wasmer_wasix::runtime::package_loader::{PackageLoader, UnsupportedPackageLoader};
use wasmer_wasix::runtime::resolver::{MultiSource, Source};
use wasmer_wasix::runtime::task_manager::VirtualTaskManager;
use wasmer_wasix::virtual_net::DynVirtualNetworking;
use wasmer_wasix::{LocalNetworking, Runtime, UnsupportedVirtualNetworking};

/// What a WASIX program runs on.
#[derive(Debug)]
pub(super) struct Host {
    engine: Engine,
    tasks: Arc<dyn VirtualTaskManager>,
    networking: DynVirtualNetworking,
    http_client: Option<DynHttpClient>,
    source: Arc<dyn Source + Send + Sync>,
    loader: Arc<dyn PackageLoader + Send + Sync>,
    commands: Arc<dyn ModuleCache + Send + Sync>,
}

impl Host {
    /// `commands` loads the artifacts of the commands the program starts; `network` is the
    /// user's grant of the host's network.
    pub(super) fn new(
        engine: Engine,
        tasks: Arc<dyn VirtualTaskManager>,
        commands: Arc<dyn ModuleCache + Send + Sync>,
        network: bool,
    ) -> Host {
        let (networking, http_client): (DynVirtualNetworking, _) = match network {
            true => (
                Arc::new(LocalNetworking::default()),
                wasmer_wasix::http::default_http_client()
                    .map(|client| Arc::new(client) as DynHttpClient),
            ),
            false => (Arc::new(UnsupportedVirtualNetworking::default()), None),
        };
        Host {
            engine,
            tasks,
            networking,
            http_client,
            // Every package comes from webcpm's store: nothing to resolve `uses` against,
            // nothing downloaded.
            source: Arc::new(MultiSource::default()),
            loader: Arc::new(UnsupportedPackageLoader),
            commands,
        }
    }
}

impl Runtime for Host {
    fn networking(&self) -> &DynVirtualNetworking {
        &self.networking
    }

    fn task_manager(&self) -> &Arc<dyn VirtualTaskManager> {
        &self.tasks
    }

    fn package_loader(&self) -> Arc<dyn PackageLoader + Send + Sync> {
        Arc::clone(&self.loader)
    }

    fn module_cache(&self) -> Arc<dyn ModuleCache + Send + Sync> {
        Arc::clone(&self.commands)
    }

    fn source(&self) -> Arc<dyn Source + Send + Sync> {
        Arc::clone(&self.source)
    }

    fn engine(&self) -> Engine {
        self.engine.clone()
    }

    fn new_store(&self) -> wasmer::Store {
        wasmer::Store::new(self.engine.clone())
    }

    fn http_client(&self) -> Option<&DynHttpClient> {
        self.http_client.as_ref()
    }
}

/// The CPUs this process may run on (its affinity), for the number of the task runtime's
/// workers: what tokio would count without being told, but without reading the cgroup files
/// that `available_parallelism` reads at every call.
pub(super) fn cpus() -> usize {
    // SAFETY: `sched_getaffinity` writes at most `size_of::<cpu_set_t>()` bytes into `set`,
    // which is that large and zeroed; `CPU_COUNT` only reads it.
    let count = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) {
            0 => libc::CPU_COUNT(&set),
            _ => 1,
        }
    };
    usize::try_from(count).unwrap_or(1).max(1)
}
