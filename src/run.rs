//! `run`: from an installed package to a running WASI command.
//!
//! Everything comes from the store: the install's blob, its manifest and atoms (recorded in the
//! index at install), its unpacked volumes, and the compiled artifact of the command's atom for
//! this engine. The artifact is memory-mapped after cheap checks; when it is missing or fails
//! them it is a cache miss: the atom is compiled again, the artifact replaced atomically, and
//! the run goes on (said once on stderr). A package that is not installed is installed first.

use std::path::PathBuf;

use crate::artifacts::{self, PrepareError};
use crate::container::{self, ContainerError};
use crate::package::{PackageName, Sha256Digest};
use crate::runtime::{Miss, Mount, RunOptions, Runtime};
use crate::store::{InstallMember, Store, StoreError};

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
    #[error("the store's manifest of {0} does not parse; run `webcpm install --refresh {0}`")]
    BadManifest(PackageName),
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
    /// Keep compiled code in the store (`compile.cache`); when false, the atom is compiled in
    /// memory for this run and nothing is written.
    pub keep_artifacts: bool,
}

/// A module ready to run and how to run it.
pub struct Launch {
    pub module: wasmtime::Module,
    pub options: RunOptions,
    /// The artifact was missing or bad and was compiled again.
    pub recompiled: Option<String>,
    /// The artifact was loaded from the store (no compile).
    pub from_artifact: bool,
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

/// Prepares the command of an installed package.
pub fn launch(
    store: &Store,
    runtime: &Runtime,
    package: &PackageName,
    request: &Request,
) -> Result<Launch, LaunchError> {
    let installed = store
        .index()
        .installed(package)?
        .ok_or_else(|| LaunchError::NotInstalled(package.clone()))?;
    let members = store.index().members(package)?;
    let blob = installed.sha256;
    if store.index().manifest(&blob)?.is_none() || !store.volume_dir(&blob).is_dir() {
        artifacts::unpack(store, &blob)?;
    }
    let manifest_json = store
        .index()
        .manifest(&blob)?
        .ok_or_else(|| LaunchError::BadManifest(package.clone()))?;
    let manifest: webc::metadata::Manifest = serde_json::from_str(&manifest_json)
        .map_err(|_| LaunchError::BadManifest(package.clone()))?;
    let command = container::command(&manifest, request.command.as_deref()).map_err(|source| {
        LaunchError::Command {
            package: package.clone(),
            source,
        }
    })?;

    // The atom may live in a dependency.
    let atom_blob: Sha256Digest = match &command.dependency {
        None => blob,
        Some(alias) => {
            let member = dependency_member(&manifest, &members, alias).ok_or_else(|| {
                LaunchError::MissingDependency {
                    package: package.clone(),
                    command: command.name.clone(),
                    alias: alias.clone(),
                }
            })?;
            if store.index().manifest(&member.sha256)?.is_none() {
                artifacts::unpack(store, &member.sha256)?;
            }
            member.sha256
        }
    };
    let atom = store
        .index()
        .atoms(&atom_blob)?
        .into_iter()
        .find(|a| a.name == command.atom)
        .ok_or_else(|| LaunchError::MissingAtom {
            package: package.clone(),
            command: command.name.clone(),
            atom: command.atom.clone(),
        })?;

    let engine = runtime.engine_hash();
    if !request.keep_artifacts {
        let checked = artifacts::open_blob(store, &atom_blob)?;
        let wasm =
            checked
                .container
                .get_atom(&command.atom)
                .ok_or_else(|| LaunchError::MissingAtom {
                    package: package.clone(),
                    command: command.name.clone(),
                    atom: command.atom.clone(),
                })?;
        let module =
            runtime
                .compile(&command.atom, &wasm)
                .map_err(|e| LaunchError::Uncompilable {
                    package: package.clone(),
                    command: command.name.clone(),
                    reason: e.to_string(),
                })?;
        return finish(
            store, package, &manifest, &members, &blob, command, request, module, None, false,
        );
    }
    let row = store.index().artifact(engine, &atom.sha256)?;
    if let Some(reason) = row.as_ref().and_then(|r| r.error.clone()) {
        return Err(LaunchError::Uncompilable {
            package: package.clone(),
            command: command.name,
            reason,
        });
    }
    let path = store.artifact_path(engine, &atom.sha256);
    let loaded = match row.and_then(|r| r.size) {
        Some(size) => runtime.load(&path, size),
        None => Err(Miss::Absent),
    };
    let (module, recompiled, from_artifact) = match loaded {
        Ok(module) => (module, None, true),
        Err(miss) => {
            let why = miss.to_string();
            let checked = artifacts::open_blob(store, &atom_blob)?;
            let wasm = checked.container.get_atom(&command.atom).ok_or_else(|| {
                LaunchError::MissingAtom {
                    package: package.clone(),
                    command: command.name.clone(),
                    atom: command.atom.clone(),
                }
            })?;
            let written = artifacts::compile_one(
                store,
                runtime,
                &artifacts::Quiet,
                engine,
                &atom.sha256,
                &command.atom,
                &wasm,
                artifacts::Recompile::Always,
            )?;
            let reload = store.index().artifact(engine, &atom.sha256)?;
            let module = match (written, reload.as_ref().and_then(|r| r.size)) {
                (true, Some(size)) => runtime.load(&path, size).ok(),
                _ => None,
            };
            let module = match module {
                Some(m) => m,
                // The artifact could not be written or loaded: compile in memory and run.
                None => runtime.compile(&command.atom, &wasm).map_err(|e| {
                    LaunchError::Uncompilable {
                        package: package.clone(),
                        command: command.name.clone(),
                        reason: e.to_string(),
                    }
                })?,
            };
            (module, Some(why), false)
        }
    };

    finish(
        store,
        package,
        &manifest,
        &members,
        &blob,
        command,
        request,
        module,
        recompiled,
        from_artifact,
    )
}

/// Mounts, arguments and environment around a ready module.
#[allow(clippy::too_many_arguments)]
fn finish(
    store: &Store,
    package: &PackageName,
    manifest: &webc::metadata::Manifest,
    members: &[InstallMember],
    blob: &Sha256Digest,
    command: container::CommandSpec,
    request: &Request,
    module: wasmtime::Module,
    recompiled: Option<String>,
    from_artifact: bool,
) -> Result<Launch, LaunchError> {
    // The package's volumes, read-only, then the user's directories.
    let volumes = store.volume_dir(blob);
    let mut mounts = Vec::new();
    for spec in container::mounts(manifest) {
        let base = match &spec.from {
            None => volumes.clone(),
            Some(alias) => match dependency_member(manifest, members, alias) {
                Some(m) => {
                    if !store.volume_dir(&m.sha256).is_dir() {
                        artifacts::unpack(store, &m.sha256)?;
                    }
                    store.volume_dir(&m.sha256)
                }
                None => continue,
            },
        };
        let mut host: PathBuf = base.join(container::volume_dir_name(&spec.volume));
        if !spec.subpath.is_empty() {
            host = host.join(&spec.subpath);
        }
        if host.is_dir() {
            mounts.push(Mount {
                host,
                guest: spec.guest,
                writable: false,
            });
        }
    }
    mounts.extend(request.dirs.iter().cloned());

    let mut args = command.main_args.clone();
    args.extend(request.args.iter().cloned());
    let mut env = command.env.clone();
    env.extend(request.env.iter().cloned());
    Ok(Launch {
        module,
        options: RunOptions {
            module_name: format!("{package}:{}", command.atom),
            program: command.name,
            args,
            env,
            mounts,
        },
        recompiled,
        from_artifact,
    })
}
