//! What an installed blob needs before it can run, made once at install: its manifest and atoms
//! (with the ABI each one's imports say) recorded in the index, its volumes unpacked into
//! `volumes/<blob-sha256>/`, and every atom compiled by the backend for its ABI into
//! `compiled/<engine-hash>/<atom-sha256>.cwasm`.
//!
//! Compiling is CPU-bound and runs on blocking threads, all atoms of an install in parallel. An
//! atom is keyed by its SHA-256, so an atom shared by two packages is compiled once. An atom the
//! engine cannot compile (a feature it lacks, an unknown import kind) does not fail the install:
//! the reason is recorded and `run` reports it for the commands that need that atom.
//!
//! Tiers ([`Tiering`]): a large atom of a wasmtime ABI is compiled first by the baseline
//! compiler (Winch), so that the install finishes and the first run starts in a fraction of
//! Cranelift's time; [`optimize`] later compiles it with Cranelift (the CLI starts it as a
//! detached process) and removes the baseline artifact. An atom Winch cannot compile (exception
//! handling, tail calls, GC) goes straight to Cranelift; Winch's reason is recorded under its
//! engine hash, for `run -v`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::container::{self, Checked};
use crate::package::{Abi, Sha256Digest};
use crate::runtime::{Backend, Runtime, abi_of, code_size};
use crate::shared_cache::{Lookup, SharedCache};
use crate::store::{AtomRow, Store, StoreError};

/// Why a blob could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("blob {blob}: {source}")]
    Container {
        blob: Sha256Digest,
        #[source]
        source: container::ContainerError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a compile task failed: {0}")]
    Task(String),
}

impl From<crate::store::IndexError> for PrepareError {
    fn from(e: crate::store::IndexError) -> Self {
        PrepareError::Store(e.into())
    }
}

/// Reports compiles on stderr (the CLI) or nowhere.
pub trait CompileReporter: Send + Sync {
    fn compiling(&self, atom: &str, size: u64);
    fn compiled(&self, atom: &str, seconds: f64, outcome: Result<u64, &str>);
    /// An artifact came from the shared cache (`from`) instead of being compiled here.
    fn pulled(&self, _atom: &str, _seconds: f64, _size: u64, _from: &str) {}
    /// The atom was compiled by the baseline compiler; its optimized code comes later.
    fn tiered(&self, _atom: &str) {}
}

/// Reports nothing.
pub struct Quiet;

impl CompileReporter for Quiet {
    fn compiling(&self, _: &str, _: u64) {}
    fn compiled(&self, _: &str, _: f64, _: Result<u64, &str>) {}
}

/// Maps and parses a stored blob (checked when it entered the store, so not checked again).
pub(crate) fn open_blob(store: &Store, blob: &Sha256Digest) -> Result<Checked, PrepareError> {
    let path = store.blob_path(blob);
    let bytes = container::map_file(&path).map_err(|source| StoreError::Io { path, source })?;
    container::open_stored(bytes).map_err(|source| PrepareError::Container {
        blob: *blob,
        source,
    })
}

/// Records a blob's contents and unpacks its volumes, unless that was done before.
pub fn unpack(store: &Store, blob: &Sha256Digest) -> Result<Option<Checked>, PrepareError> {
    let recorded = store.index().manifest(blob)?.is_some();
    if recorded && store.volume_dir(blob).is_dir() {
        return Ok(None);
    }
    let checked = open_blob(store, blob)?;
    if !store.volume_dir(blob).is_dir() {
        let temp = store.temp_dir()?;
        let size = std::fs::metadata(store.blob_path(blob)).map_or(0, |m| m.len());
        let limits = store.unpack_limits(size);
        container::unpack_volumes(&checked, temp.path(), limits).map_err(
            |source| match source {
                // Writing the files failed: the disk, not the package.
                container::ContainerError::Unpack { path, source } => {
                    PrepareError::Store(StoreError::Io { path, source })
                }
                source => PrepareError::Container {
                    blob: *blob,
                    source,
                },
            },
        )?;
        store.commit_volume_dir(temp, blob)?;
    }
    if !recorded {
        let manifest = serde_json::to_string(checked.manifest()).expect("manifests serialize");
        let atoms: Vec<AtomRow> = checked
            .atoms()
            .into_iter()
            .map(|(name, sha256, size)| {
                let abi = checked.container.get_atom(&name).map(|wasm| abi_of(&wasm));
                AtomRow {
                    name,
                    sha256,
                    size,
                    abi,
                }
            })
            .collect();
        store.index().record_contents(blob, &manifest, &atoms)?;
    }
    Ok(Some(checked))
}

/// When to compile an atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recompile {
    /// When there is no artifact for this engine, or its file is gone or has another size.
    IfMissing,
    /// Also when compiling failed before (`install --refresh`: the failure may have been
    /// passing, such as running out of memory).
    IfMissingOrFailed,
    /// Always (the artifact failed to load).
    Always,
}

/// Whether an atom needs compiling under `when`.
fn needs_compile(
    store: &Store,
    engine: &str,
    atom: &Sha256Digest,
    when: Recompile,
) -> Result<bool, PrepareError> {
    if when == Recompile::Always {
        return Ok(true);
    }
    Ok(match store.index().artifact(engine, atom)? {
        None => true,
        Some(row) => match row.size {
            Some(size) => std::fs::metadata(store.artifact_path(engine, atom))
                .map(|m| m.len() != size)
                .unwrap_or(true),
            // Compiling failed before; the reason is recorded.
            None => when == Recompile::IfMissingOrFailed,
        },
    })
}

/// Each distinct atom to compile: digest -> (name, ABI, bytes).
type Todo = BTreeMap<Sha256Digest, (String, Abi, Bytes)>;

/// Whether an atom of this ABI needs compiling; never for an ABI this build has no backend for
/// (`run` says why).
fn atom_needs_compile(
    store: &Store,
    runtime: &Runtime,
    abi: Abi,
    atom: &Sha256Digest,
    when: Recompile,
) -> Result<bool, PrepareError> {
    match runtime.backend(abi) {
        Ok(backend) => needs_compile(store, backend.engine_hash(), atom, when),
        Err(_) => Ok(false),
    }
}

/// Unpacks every blob and lists the atoms that need compiling.
async fn unpack_all(
    store: &Arc<Store>,
    runtime: &Runtime,
    blobs: &[Sha256Digest],
    when: Recompile,
) -> Result<Todo, PrepareError> {
    let mut todo = Todo::new();
    for blob in blobs {
        let blob = *blob;
        let shared = store.clone();
        let checked = tokio::task::spawn_blocking(move || unpack(&shared, &blob))
            .await
            .map_err(|e| PrepareError::Task(e.to_string()))??;
        let checked = match checked {
            Some(c) => c,
            None => {
                let mut missing = false;
                for atom in store.index().atoms(&blob)? {
                    missing |= match atom.abi {
                        Some(abi) => atom_needs_compile(store, runtime, abi, &atom.sha256, when)?,
                        None => true,
                    };
                }
                if !missing {
                    continue;
                }
                let shared = store.clone();
                tokio::task::spawn_blocking(move || open_blob(&shared, &blob))
                    .await
                    .map_err(|e| PrepareError::Task(e.to_string()))??
            }
        };
        for (name, digest, _) in checked.atoms() {
            let wasm = checked
                .container
                .get_atom(&name)
                .expect("atoms() lists atoms the container holds");
            let abi = abi_of(&wasm);
            if !todo.contains_key(&digest)
                && atom_needs_compile(store, runtime, abi, &digest, when)?
            {
                todo.insert(digest, (name, abi, wasm.into_bytes()));
            }
        }
    }
    Ok(todo)
}

/// Which atoms get baseline code first (`compile.tiering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tiering {
    /// Cranelift only: one compile per atom, for fleets that prefer that.
    Off,
    /// Baseline first for atoms with [`Tiering::AUTO_MIN_SIZE`] bytes of code or more, where
    /// Cranelift takes seconds; smaller ones compile with Cranelift in well under a second.
    /// Custom sections (debug information) do not count: compilers skip them.
    #[default]
    Auto,
    /// Baseline first for every atom.
    Always,
}

impl Tiering {
    /// The smallest code section that `auto` compiles with the baseline compiler first.
    pub const AUTO_MIN_SIZE: usize = 1 << 20;

    fn applies(self, wasm: &[u8]) -> bool {
        match self {
            Tiering::Off => false,
            Tiering::Auto => code_size(wasm) >= Self::AUTO_MIN_SIZE,
            Tiering::Always => true,
        }
    }
}

/// How atoms get compiled: who hears about it, when to recompile, the tiers, and the fleet's
/// shared cache.
#[derive(Clone)]
pub struct Compiling {
    pub reporter: Arc<dyn CompileReporter>,
    pub when: Recompile,
    pub tiering: Tiering,
    pub shared: Option<Arc<SharedCache>>,
}

impl Compiling {
    /// Compiles here only, with Cranelift only.
    pub fn local(reporter: Arc<dyn CompileReporter>, when: Recompile) -> Compiling {
        Compiling {
            reporter,
            when,
            tiering: Tiering::Off,
            shared: None,
        }
    }
}

/// Unpacks and compiles every blob of an install. Returns how many atoms were compiled.
pub async fn prepare(
    store: &Arc<Store>,
    runtime: &Runtime,
    blobs: &[Sha256Digest],
    how: &Compiling,
) -> Result<usize, PrepareError> {
    let todo = unpack_all(store, runtime, blobs, how.when).await?;
    let jobs = todo.into_iter().map(|(digest, (name, abi, wasm))| {
        let (store, runtime, how) = (store.clone(), runtime.clone(), how.clone());
        tokio::task::spawn_blocking(move || {
            compile_tiered(&store, &runtime, abi, &how, &digest, &name, &wasm)
        })
    });
    let mut compiled = 0;
    for result in futures_util::future::join_all(jobs).await {
        compiled += usize::from(result.map_err(|e| PrepareError::Task(e.to_string()))??);
    }
    Ok(compiled)
}

/// Compiles one atom and stores the artifact, or records why it cannot be compiled. Returns
/// whether an artifact is there afterwards. Processes compiling the same atom take turns: the
/// first compiles, the others find its artifact (unless `when` is [`Recompile::Always`]). With a
/// shared cache, its artifact is pulled instead when it has one that passes the checks, and one
/// compiled here is pushed there.
pub(crate) fn compile_one(
    store: &Store,
    backend: &dyn Backend,
    how: &Compiling,
    digest: &Sha256Digest,
    name: &str,
    wasm: &[u8],
) -> Result<bool, PrepareError> {
    let engine = backend.engine_hash();
    let _lock = store.lock_artifact(engine, digest)?;
    if !needs_compile(store, engine, digest, how.when)? {
        return Ok(store
            .index()
            .artifact(engine, digest)?
            .is_some_and(|r| r.size.is_some()));
    }
    let mut push = how.shared.as_ref().filter(|s| s.pushes());
    if let Some(shared) = &how.shared {
        match pull(store, backend, shared, &*how.reporter, digest, name)? {
            Pulled::Yes => return Ok(true),
            Pulled::Missing => {}
            Pulled::Distrusted => push = None,
        }
    }
    let reporter = &*how.reporter;
    reporter.compiling(name, wasm.len() as u64);
    let started = std::time::Instant::now();
    match backend.precompile(name, wasm) {
        Ok(artifact) => {
            store.commit_artifact(engine, digest, &artifact)?;
            reporter.compiled(
                name,
                started.elapsed().as_secs_f64(),
                Ok(artifact.len() as u64),
            );
            if let Some(shared) = push
                && let Err(e) = shared.push(
                    engine,
                    digest,
                    &artifact,
                    &format!("{} {}", backend.name(), backend.version()),
                )
            {
                tracing::warn!("cannot share the compiled {name}: {e}");
            }
            Ok(true)
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::debug!("{reason}; the package installs, but commands using it cannot run");
            store
                .index()
                .record_artifact(engine, digest, Err(&reason))?;
            reporter.compiled(name, started.elapsed().as_secs_f64(), Err(&reason));
            Ok(false)
        }
    }
}

/// Compiles one atom at install: with the baseline compiler first when tiering applies to it
/// and the optimized artifact is not there (nor in the shared cache), else with the backend of
/// its ABI. Returns whether an artifact is there afterwards.
fn compile_tiered(
    store: &Store,
    runtime: &Runtime,
    abi: Abi,
    how: &Compiling,
    digest: &Sha256Digest,
    name: &str,
    wasm: &[u8],
) -> Result<bool, PrepareError> {
    let optimized = runtime
        .backend(abi)
        .expect("only atoms with a backend are listed");
    let baseline = match how.tiering.applies(wasm) {
        true => runtime.baseline(abi),
        false => None,
    };
    let Some(baseline) = baseline else {
        return compile_one(store, optimized, how, digest, name, wasm);
    };
    if !needs_compile(store, optimized.engine_hash(), digest, how.when)? {
        return compile_one(store, optimized, how, digest, name, wasm);
    }
    if let Some(shared) = &how.shared {
        let _lock = store.lock_artifact(optimized.engine_hash(), digest)?;
        if let Pulled::Yes = pull(store, optimized, shared, &*how.reporter, digest, name)? {
            return Ok(true);
        }
    }
    let here = Compiling {
        shared: None,
        ..how.clone()
    };
    if compile_one(store, baseline, &here, digest, name, wasm)? {
        how.reporter.tiered(name);
        return Ok(true);
    }
    compile_one(store, optimized, how, digest, name, wasm)
}

/// Compiles with Cranelift every atom that has only baseline code, and removes the baseline
/// artifact once the optimized one is stored (a run prefers it from then on). One optimizer at
/// a time per store: with `wait: false`, returns `None` at once when another is at work.
/// Returns how many atoms it optimized.
pub fn optimize(
    store: &Store,
    runtime: &Runtime,
    how: &Compiling,
    wait: bool,
) -> Result<Option<usize>, PrepareError> {
    let Some(_lock) = store.lock_optimizer(wait)? else {
        return Ok(None);
    };
    let mut done = 0;
    for todo in baseline_only(store, runtime)? {
        let checked = open_blob(store, &todo.blob)?;
        let Some(wasm) = checked.container.get_atom(&todo.name) else {
            continue;
        };
        let abi = abi_of(&wasm);
        let (Ok(optimized), Some(baseline)) = (runtime.backend(abi), runtime.baseline(abi)) else {
            continue;
        };
        if compile_one(store, optimized, how, &todo.atom, &todo.name, &wasm)? {
            store.remove_artifact(baseline.engine_hash(), &todo.atom)?;
            done += 1;
        }
    }
    Ok(Some(done))
}

/// The atoms that run on baseline code only, waiting for [`optimize`].
pub fn baseline_only(
    store: &Store,
    runtime: &Runtime,
) -> Result<Vec<crate::store::BaselineOnly>, PrepareError> {
    let (Ok(optimized), Some(baseline)) = (
        runtime.backend(Abi::Preview1),
        runtime.baseline(Abi::Preview1),
    ) else {
        return Ok(Vec::new());
    };
    Ok(store
        .index()
        .baseline_only(baseline.engine_hash(), optimized.engine_hash())?)
}

/// What the shared cache gave.
enum Pulled {
    Yes,
    Missing,
    /// It held something that failed the checks: compile here, and do not push over it.
    Distrusted,
}

/// Pulls an atom's artifact from the shared cache, stores it, and loads it once as `run` would
/// (size, header, engine compatibility); a failure anywhere is a miss.
fn pull(
    store: &Store,
    backend: &dyn Backend,
    shared: &SharedCache,
    reporter: &dyn CompileReporter,
    digest: &Sha256Digest,
    name: &str,
) -> Result<Pulled, PrepareError> {
    let engine = backend.engine_hash();
    let started = std::time::Instant::now();
    // The artifact streams into a file beside its place in the store.
    let temp = store.artifact_temp(engine, digest)?;
    let (size, sha256) = match shared.lookup(engine, digest, &mut temp.handle()?) {
        Ok(Lookup::Found { size, sha256 }) => (size, sha256),
        Ok(Lookup::Missing) => return Ok(Pulled::Missing),
        Ok(Lookup::Bad(why)) => {
            tracing::warn!(
                "the shared artifact of {name} (atom {digest}) is not trusted: {why}; compiling here"
            );
            return Ok(Pulled::Distrusted);
        }
        Err(e) => {
            tracing::warn!("cannot reach the shared compile cache: {e}; compiling here");
            return Ok(Pulled::Missing);
        }
    };
    let path = store.commit_artifact_temp(engine, digest, temp, size, sha256)?;
    if let Err(why) = backend.load(&path, size) {
        tracing::warn!(
            "the shared artifact of {name} (atom {digest}) does not load: {why}; compiling here"
        );
        return Ok(Pulled::Distrusted);
    }
    reporter.pulled(name, started.elapsed().as_secs_f64(), size, &shared.url());
    Ok(Pulled::Yes)
}
