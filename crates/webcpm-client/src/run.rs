//! `run`: from an installed package to a running WASI or WASIX command.
//!
//! Everything comes from the store: the install's blob, its manifest and atoms (recorded in the
//! index at install, with their ABI), its unpacked volumes, and the compiled artifact of the
//! command's atom for the backend its ABI goes to. Which engine that is stays the runtime's
//! business: this module asks the runtime for the backend of an ABI and uses it. The artifact is
//! memory-mapped after cheap checks; when it is missing or fails them it is a cache miss: the
//! atom is compiled again, the artifact replaced atomically, and the run goes on (said once on
//! stderr). A package that is not installed is installed first. A WASIX command also gets the
//! commands of its package and of the packages installed with it, to start by name.
//!
//! A program gets its package's volumes read-only, stdio, its arguments and the environment it
//! is given; of the host, only what the request or the package's grants (`webcpm grant`) name:
//! the network, directories, the host's environment (a URL's package gets no stored grant: only
//! the flags of its run). Each package mount's directory is checked once more here to lie inside
//! its unpacked volume (the links below it were checked when the package entered the store).

use std::path::PathBuf;

use crate::artifacts::{self, PrepareError};
use crate::container::{self, ContainerError};
use crate::package::{Abi, PackageName, Sha256Digest};
use crate::runtime::{Backend, Command, Miss, Module, Mount, RunOptions, Runtime, abi_of};
use crate::store::{AtomRow, Capability, InstallMember, Store, StoreError};

/// Why a command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0} is not installed")]
    NotInstalled(PackageName),
    #[error("{package}: {source}")]
    Command {
        package: PackageName,
        #[source]
        source: ContainerError,
    },
    #[error("{package}: command `{command}` needs atom `{atom}`, which is not in the package")]
    MissingAtom {
        package: PackageName,
        command: String,
        atom: String,
    },
    #[error(
        "{package}: command `{command}` uses dependency `{alias}`, which is not installed with it"
    )]
    MissingDependency {
        package: PackageName,
        command: String,
        alias: String,
    },
    #[error("{package}: command `{command}` cannot run on this engine: {reason}")]
    Uncompilable {
        package: PackageName,
        command: String,
        reason: String,
    },
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{package}: the mount at {guest} leads outside the package's files ({host}); the store may have been tampered with: run `webcpm cache verify --repair`"
    )]
    UnsafeMount {
        package: PackageName,
        guest: String,
        host: PathBuf,
    },
    #[error(
        "{package}: command `{command}` is a WASI preview 1 program, which has no working directory; --cwd works for WASIX and wasi-threads programs (paths the program opens are relative to its preopened directories)"
    )]
    NoWorkingDirectory {
        package: PackageName,
        command: String,
    },
    #[error(
        "{package}: command `{command}` is a WASI preview 1 program, which cannot start other programs; --use is for WASIX programs"
    )]
    UsesNeedWasix {
        package: PackageName,
        command: String,
    },
    #[error("the store's manifest of {0} does not parse; run `webcpm install --refresh {0}`")]
    BadManifest(PackageName),
    /// The store was opened read-only and this launch must write to it (unpack, record an ABI,
    /// compile again): the caller opens it for writing and launches again.
    #[error("the store must be written to before this command can run")]
    NeedsWrite,
}

impl From<crate::store::IndexError> for LaunchError {
    fn from(e: crate::store::IndexError) -> Self {
        LaunchError::Store(e.into())
    }
}

/// What the user asked to run.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dirs: Vec<Mount>,
    /// Give the program the host's network (`--net`, `run.network`).
    pub network: bool,
    /// The working directory (`--cwd`), over the command's own.
    pub cwd: Option<String>,
    /// Installed packages whose commands a WASIX program may start too (`--use`).
    pub uses: Vec<PackageName>,
    /// Apply the package's stored grants (not for a URL, whose name says nothing of who wrote
    /// it).
    pub stored_grants: bool,
    /// Give the program the host's environment (`--forward-host-env`), as does a grant of it.
    pub forward_host_env: bool,
    /// The host's environment, read by the caller: what a program is given when the request or
    /// a grant forwards it, before the package's variables and the request's own.
    pub host_env: Vec<(String, String)>,
    /// Keep compiled code in the store (`compile.cache`); when false, the atom is compiled in
    /// memory for this run and nothing is written.
    pub keep_artifacts: bool,
}

/// A module ready to run and how to run it.
pub struct Launch {
    pub module: Module,
    /// The command's ABI, read from its imports.
    pub abi: Abi,
    /// The engine that runs it, for `run -v`.
    pub engine: &'static str,
    pub options: RunOptions,
    /// The artifact was missing or bad and was compiled again.
    pub recompiled: Option<String>,
    /// The artifact was loaded from the store (no compile).
    pub from_artifact: bool,
    /// The compiler of the code that runs: `cranelift`, `winch`, `singlepass`.
    pub compiler: &'static str,
    /// It is baseline code, until the optimizer has compiled the atom with Cranelift.
    pub baseline: bool,
    /// The atom that runs.
    pub atom: Sha256Digest,
}

/// Finds the member of an install that a `use` alias names.
fn dependency_member<'a>(
    manifest: &webc::metadata::Manifest,
    members: &'a [InstallMember],
    alias: &str,
) -> Option<&'a InstallMember> {
    let target = match manifest.use_map.get(alias)? {
        webc::metadata::UrlOrManifest::RegistryDependentUrl(text) => text.clone(),
        _ => return None,
    };
    let spec: crate::package::PackageSpec = target.parse().ok()?;
    members.iter().find(|m| m.package == spec.name)
}

/// An installed package with its manifest, unpacked.
struct Package {
    name: PackageName,
    blob: Sha256Digest,
    manifest: webc::metadata::Manifest,
    members: Vec<InstallMember>,
}

/// The command to run and the atom it needs, wherever that atom lives.
struct Target<'a> {
    package: &'a Package,
    command: container::CommandSpec,
    /// The blob that holds the atom: the package's own, or a dependency's.
    atom_blob: Sha256Digest,
    atom: AtomRow,
}

/// A module and how it was had.
struct Loaded {
    module: Module,
    recompiled: Option<String>,
    from_artifact: bool,
    compiler: &'static str,
    baseline: bool,
}

/// Unpacks a blob's manifest, atoms and volumes into the store unless that was done.
fn ensure_unpacked(store: &Store, blob: &Sha256Digest) -> Result<(), LaunchError> {
    if store.index().manifest(blob)?.is_none() || !store.volume_dir(blob).is_dir() {
        if store.is_read_only() {
            return Err(LaunchError::NeedsWrite);
        }
        artifacts::unpack(store, blob)?;
    }
    Ok(())
}

/// Step 1: the install, its tree and its manifest.
fn installed(store: &Store, name: &PackageName) -> Result<Package, LaunchError> {
    let install = store
        .index()
        .installed(name)?
        .ok_or_else(|| LaunchError::NotInstalled(name.clone()))?;
    let members = store.index().members(name)?;
    unpacked(store, name, install.sha256, members)
}

/// A blob of the store, unpacked, with its manifest.
fn unpacked(
    store: &Store,
    name: &PackageName,
    blob: Sha256Digest,
    members: Vec<InstallMember>,
) -> Result<Package, LaunchError> {
    ensure_unpacked(store, &blob)?;
    let bad = || LaunchError::BadManifest(name.clone());
    let json = store.index().manifest(&blob)?.ok_or_else(bad)?;
    Ok(Package {
        name: name.clone(),
        blob,
        manifest: serde_json::from_str(&json).map_err(|_| bad())?,
        members,
    })
}

/// Step 2: the command the request names (or the default one) and its atom's row.
fn target<'a>(
    store: &Store,
    package: &'a Package,
    command: Option<&str>,
) -> Result<Target<'a>, LaunchError> {
    let command =
        container::command(&package.manifest, command).map_err(|source| LaunchError::Command {
            package: package.name.clone(),
            source,
        })?;
    let atom_blob =
        match &command.dependency {
            None => package.blob,
            Some(alias) => {
                let member = dependency_member(&package.manifest, &package.members, alias)
                    .ok_or_else(|| LaunchError::MissingDependency {
                        package: package.name.clone(),
                        command: command.name.clone(),
                        alias: alias.clone(),
                    })?;
                ensure_unpacked(store, &member.sha256)?;
                member.sha256
            }
        };
    let atom = store
        .index()
        .atoms(&atom_blob)?
        .into_iter()
        .find(|a| a.name == command.atom)
        .ok_or_else(|| missing_atom(&package.name, &command))?;
    Ok(Target {
        package,
        command,
        atom_blob,
        atom,
    })
}

fn missing_atom(package: &PackageName, command: &container::CommandSpec) -> LaunchError {
    LaunchError::MissingAtom {
        package: package.clone(),
        command: command.name.clone(),
        atom: command.atom.clone(),
    }
}

impl Target<'_> {
    fn uncompilable(&self, reason: String) -> LaunchError {
        LaunchError::Uncompilable {
            package: self.package.name.clone(),
            command: self.command.name.clone(),
            reason,
        }
    }

    /// The atom's WebAssembly, from the stored blob.
    fn wasm(&self, store: &Store) -> Result<impl std::ops::Deref<Target = [u8]>, LaunchError> {
        let checked = artifacts::open_blob(store, &self.atom_blob)?;
        checked
            .container
            .get_atom(&self.command.atom)
            .ok_or_else(|| missing_atom(&self.package.name, &self.command))
    }

    /// Compiles the atom in memory, writing nothing.
    fn compile(&self, backend: &dyn Backend, wasm: &[u8]) -> Result<Module, LaunchError> {
        backend
            .compile(&self.command.atom, wasm)
            .map_err(|e| self.uncompilable(e.to_string()))
    }

    /// The atom's ABI: as recorded at install, or read now (and recorded) for an atom recorded
    /// before ABIs were.
    fn abi(&self, store: &Store) -> Result<Abi, LaunchError> {
        if let Some(abi) = self.atom.abi {
            return Ok(abi);
        }
        if store.is_read_only() {
            return Err(LaunchError::NeedsWrite);
        }
        let abi = abi_of(&self.wasm(store)?);
        store.index().record_abi(&self.atom.sha256, abi)?;
        Ok(abi)
    }

    /// The backend that runs the atom.
    fn backend<'r>(&self, runtime: &'r Runtime, abi: Abi) -> Result<&'r dyn Backend, LaunchError> {
        runtime
            .backend(abi)
            .map_err(|e| self.uncompilable(e.to_string()))
    }
}

/// The atom's baseline artifact (see [`crate::artifacts`]), when that is the code it has.
fn load_baseline(
    store: &Store,
    runtime: &Runtime,
    abi: Abi,
    target: &Target<'_>,
) -> Option<Loaded> {
    let baseline = runtime.baseline(abi)?;
    let engine = baseline.engine_hash();
    let size = store
        .index()
        .artifact(engine, &target.atom.sha256)
        .ok()??
        .size?;
    let module = baseline
        .load(&store.artifact_path(engine, &target.atom.sha256), size)
        .ok()?;
    Some(Loaded {
        module,
        recompiled: None,
        from_artifact: true,
        compiler: baseline.compiler(),
        baseline: true,
    })
}

/// Step 3: the module, from its artifact when it is good (the optimized one, else the baseline
/// one while that is all there is); otherwise compiled again, written back (a cache miss, said
/// once), and compiled in memory only if that cannot be written.
fn load(
    store: &Store,
    runtime: &Runtime,
    abi: Abi,
    backend: &dyn Backend,
    target: &Target<'_>,
) -> Result<Loaded, LaunchError> {
    let engine = backend.engine_hash();
    let digest = &target.atom.sha256;
    let row = store.index().artifact(engine, digest)?;
    let path = store.artifact_path(engine, digest);
    let miss = match row.as_ref().and_then(|r| r.size) {
        Some(size) => match backend.load(&path, size) {
            Ok(module) => {
                return Ok(Loaded {
                    module,
                    recompiled: None,
                    from_artifact: true,
                    compiler: backend.compiler(),
                    baseline: false,
                });
            }
            Err(miss) => miss,
        },
        None => Miss::Absent,
    };
    if let Some(loaded) = load_baseline(store, runtime, abi, target) {
        return Ok(loaded);
    }
    if let Some(reason) = row.and_then(|r| r.error) {
        return Err(target.uncompilable(reason));
    }
    if store.is_read_only() {
        return Err(LaunchError::NeedsWrite);
    }
    let wasm = target.wasm(store)?;
    let how = artifacts::Compiling::local(
        std::sync::Arc::new(artifacts::Quiet),
        artifacts::Recompile::Always,
    );
    let written =
        artifacts::compile_one(store, backend, &how, digest, &target.command.atom, &wasm)?;
    let size = store.index().artifact(engine, digest)?.and_then(|r| r.size);
    let reloaded = match (written, size) {
        (true, Some(size)) => backend.load(&path, size).ok(),
        _ => None,
    };
    let module = match reloaded {
        Some(module) => module,
        None => target.compile(backend, &wasm)?,
    };
    Ok(Loaded {
        module,
        recompiled: Some(miss.to_string()),
        from_artifact: false,
        compiler: backend.compiler(),
        baseline: false,
    })
}

/// Step 4: the package's volumes, read-only (its own and its dependencies'), then the user's
/// directories.
fn mounts(store: &Store, package: &Package, dirs: &[Mount]) -> Result<Vec<Mount>, LaunchError> {
    let mut mounts = package_mounts(store, package)?;
    mounts.extend(dirs.iter().cloned());
    Ok(mounts)
}

/// Whether `host` lies inside `volume` once every link on the way is followed.
fn inside(host: &std::path::Path, volume: &std::path::Path) -> bool {
    match (host.canonicalize(), volume.canonicalize()) {
        (Ok(host), Ok(volume)) => host.starts_with(volume),
        _ => false,
    }
}

fn package_mounts(store: &Store, package: &Package) -> Result<Vec<Mount>, LaunchError> {
    let mut mounts = Vec::new();
    for spec in container::mounts(&package.manifest) {
        let blob = match &spec.from {
            None => package.blob,
            Some(alias) => match dependency_member(&package.manifest, &package.members, alias) {
                Some(m) => {
                    ensure_unpacked(store, &m.sha256)?;
                    m.sha256
                }
                None => continue,
            },
        };
        let volume: PathBuf = store
            .volume_dir(&blob)
            .join(container::volume_dir_name(&spec.volume));
        let host = match spec.subpath.is_empty() {
            true => volume.clone(),
            false => volume.join(&spec.subpath),
        };
        if !host.is_dir() {
            continue;
        }
        if !inside(&host, &volume) {
            return Err(LaunchError::UnsafeMount {
                package: package.name.clone(),
                guest: spec.guest,
                host,
            });
        }
        mounts.push(Mount {
            host,
            guest: spec.guest,
            writable: false,
        });
    }
    Ok(mounts)
}

/// What a program gets of the host.
struct Granted {
    dirs: Vec<Mount>,
    network: bool,
    host_env: Vec<(String, String)>,
}

/// What the request and the package's grants give the program of the host: directories, the
/// network, the environment.
fn granted(
    store: &Store,
    package: &PackageName,
    request: &Request,
) -> Result<Granted, LaunchError> {
    let mut dirs = request.dirs.clone();
    let mut network = request.network;
    let mut forward = request.forward_host_env;
    let stored = match request.stored_grants {
        true => store.index().grants(package)?,
        false => Vec::new(),
    };
    for capability in stored {
        match capability {
            Capability::Network => network = true,
            Capability::Dir { host, guest } => {
                if !dirs.iter().any(|d| d.guest == guest) {
                    dirs.push(Mount {
                        host,
                        guest,
                        writable: true,
                    });
                }
            }
            Capability::HostEnv => forward = true,
        }
    }
    let host_env = match forward {
        true => request.host_env.clone(),
        false => Vec::new(),
    };
    Ok(Granted {
        dirs,
        network,
        host_env,
    })
}

/// The blobs whose commands a WASIX program may start: the package's, those installed with it
/// (its dependencies), then each `--use`d package's and its dependencies'.
fn command_blobs(
    store: &Store,
    package: &Package,
    uses: &[PackageName],
) -> Result<Vec<Sha256Digest>, LaunchError> {
    let mut blobs = vec![package.blob];
    let mut add = |blob: Sha256Digest| {
        if !blobs.contains(&blob) {
            blobs.push(blob);
        }
    };
    package.members.iter().for_each(|m| add(m.sha256));
    for name in uses {
        let install = store
            .index()
            .installed(name)?
            .ok_or_else(|| LaunchError::NotInstalled(name.clone()))?;
        add(install.sha256);
        store
            .index()
            .members(name)?
            .iter()
            .for_each(|m| add(m.sha256));
    }
    Ok(blobs)
}

/// The commands of those blobs, the first of a name winning, as under `wasmer run`; each with
/// its precompiled artifact when the engine that runs WASIX has one, so that an exec maps it
/// instead of compiling.
fn commands(
    store: &Store,
    runtime: &Runtime,
    package: &Package,
    uses: &[PackageName],
) -> Result<Vec<Command>, LaunchError> {
    let mut out: Vec<Command> = Vec::new();
    for blob in command_blobs(store, package, uses)? {
        ensure_unpacked(store, &blob)?;
        let checked = artifacts::open_blob(store, &blob)?;
        let atoms = store.index().atoms(&blob)?;
        for name in checked.manifest().commands.keys() {
            if out.iter().any(|c| &c.name == name) {
                continue;
            }
            // A command whose atom lives in a dependency is that dependency's to expose.
            let Some(spec) = container::command(checked.manifest(), Some(name))
                .ok()
                .filter(|c| c.dependency.is_none())
            else {
                continue;
            };
            let (Some(wasm), Some(row)) = (
                checked.container.get_atom(&spec.atom),
                atoms.iter().find(|a| a.name == spec.atom),
            ) else {
                continue;
            };
            out.push(Command {
                name: name.clone(),
                wasm: wasm.into_bytes(),
                sha256: row.sha256.0,
                artifact: exec_artifact(store, runtime, row)?,
            });
        }
    }
    Ok(out)
}

/// The artifact a WASIX program's exec of this atom can load: Wasmer's, for an atom Wasmer runs.
fn exec_artifact(
    store: &Store,
    runtime: &Runtime,
    atom: &AtomRow,
) -> Result<Option<(PathBuf, u64)>, LaunchError> {
    let Some(abi) = atom.abi.filter(|abi| abi.on_wasmer()) else {
        return Ok(None);
    };
    let Ok(backend) = runtime.backend(abi) else {
        return Ok(None);
    };
    let engine = backend.engine_hash();
    let size = store
        .index()
        .artifact(engine, &atom.sha256)?
        .and_then(|row| row.size);
    Ok(size.map(|size| (store.artifact_path(engine, &atom.sha256), size)))
}

/// Prepares the command of an installed package.
pub fn launch(
    store: &Store,
    runtime: &Runtime,
    name: &PackageName,
    request: &Request,
) -> Result<Launch, LaunchError> {
    launch_package(store, runtime, installed(store, name)?, request)
}

/// Prepares the command of a container that is in the store but not installed (a local file
/// or a URL), shown under `name`; it has no dependencies.
pub fn launch_blob(
    store: &Store,
    runtime: &Runtime,
    name: &PackageName,
    blob: Sha256Digest,
    request: &Request,
) -> Result<Launch, LaunchError> {
    launch_package(
        store,
        runtime,
        unpacked(store, name, blob, Vec::new())?,
        request,
    )
}

fn launch_package(
    store: &Store,
    runtime: &Runtime,
    package: Package,
    request: &Request,
) -> Result<Launch, LaunchError> {
    let name = &package.name;
    let target = target(store, &package, request.command.as_deref())?;
    let abi = target.abi(store)?;
    if request.cwd.is_some() && !abi.on_wasmer() {
        return Err(LaunchError::NoWorkingDirectory {
            package: name.clone(),
            command: target.command.name.clone(),
        });
    }
    if !request.uses.is_empty() && !abi.on_wasmer() {
        return Err(LaunchError::UsesNeedWasix {
            package: name.clone(),
            command: target.command.name.clone(),
        });
    }
    let backend = target.backend(runtime, abi)?;
    let loaded = if request.keep_artifacts {
        load(store, runtime, abi, backend, &target)?
    } else {
        Loaded {
            module: target.compile(backend, &target.wasm(store)?)?,
            recompiled: None,
            from_artifact: false,
            compiler: backend.compiler(),
            baseline: false,
        }
    };
    let commands = match abi.on_wasmer() {
        true => commands(store, runtime, &package, &request.uses)?,
        false => Vec::new(),
    };
    let command = &target.command;
    let mut args = command.main_args.clone();
    args.extend(request.args.iter().cloned());
    let granted = granted(store, name, request)?;
    let mut env = granted.host_env;
    env.extend(command.env.iter().cloned());
    env.extend(request.env.iter().cloned());
    Ok(Launch {
        module: loaded.module,
        abi,
        engine: backend.name(),
        options: RunOptions {
            module_name: format!("{name}:{}", command.atom),
            program: command.name.clone(),
            args,
            env,
            mounts: mounts(store, &package, &granted.dirs)?,
            commands,
            network: granted.network,
            cwd: request.cwd.clone().or_else(|| command.cwd.clone()),
        },
        recompiled: loaded.recompiled,
        from_artifact: loaded.from_artifact,
        compiler: loaded.compiler,
        baseline: loaded.baseline,
        atom: target.atom.sha256,
    })
}
