//! A package directory: a `wasmer.toml` with the modules and files it names, checked and built
//! into a WebC v3 container. `registry add` (the local registry) and `publish` (the client) both
//! start here, so that a directory is read the same way on either side.
//!
//! Every path that `wasmer.toml` names must stay inside the directory (no absolute path, no `..`
//! above it, no symbolic link leading out) and exist; the package is built with strict checks.
//! Nothing is written anywhere.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::error_text::error_chain;
pub use crate::error_text::one_line;

/// Why a package directory cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot read {path}: {reason}; check the path")]
    ReadInput { path: PathBuf, reason: String },
    #[error("no wasmer.toml (nor wapm.toml) in {0}; pass a package directory")]
    NoManifest(PathBuf),
    #[error("{path} is not a valid wasmer.toml: {reason}; fix the file")]
    BadManifest { path: PathBuf, reason: String },
    #[error(
        "{what} `{path}` leads outside the package directory; keep every path inside the directory"
    )]
    Escapes { what: String, path: PathBuf },
    #[error("{what} `{path}` does not exist; add the file or fix wasmer.toml")]
    Missing { what: String, path: PathBuf },
    #[error("cannot build the package in {dir}: {reason}; fix the package")]
    Build { dir: PathBuf, reason: String },
}

/// A directory built into a container, with what its `wasmer.toml` says about the package (the
/// container itself does not keep the name and version).
#[derive(Debug, Clone)]
pub struct Built {
    /// The WebC v3 container.
    pub bytes: Bytes,
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    /// The text of `wasmer.toml`, as it is.
    pub manifest_text: String,
}

/// Checks a package directory and builds it as WebC v3.
pub fn build(dir: &Path) -> Result<Built, DirError> {
    let (manifest, manifest_text) = read_manifest(dir)?;
    let base = dir.canonicalize().map_err(|e| DirError::ReadInput {
        path: dir.into(),
        reason: e.to_string(),
    })?;
    check_paths(&manifest, &base)?;
    let package = manifest.package.as_ref();
    let name = package.and_then(|p| p.name.clone());
    let version = package.and_then(|p| p.version.as_ref().map(|v| v.to_string()));
    let description = package.and_then(|p| p.description.clone());

    let build = || -> Result<Bytes, String> {
        use wasmer_package::package::{Package, Strictness, wasmer_ignore_walker};
        let package = Package::from_manifest_with_strictness(
            manifest_path(&base),
            Strictness::Strict,
            wasmer_ignore_walker(),
        )
        .map_err(|e| error_chain(&e))?;
        package.serialize().map_err(|e| one_line(&format!("{e:#}")))
    };
    let bytes = std::panic::catch_unwind(build)
        .map_err(|_| "the package builder gave up on this directory".to_string())
        .and_then(|r| r)
        .map_err(|reason| DirError::Build {
            dir: dir.into(),
            reason,
        })?;
    Ok(Built {
        bytes,
        name,
        version,
        description,
        manifest_text,
    })
}

/// The directory's manifest: `wasmer.toml`, else `wapm.toml` (its older name, which Wasmer
/// still reads).
pub(crate) fn manifest_path(dir: &Path) -> PathBuf {
    let wasmer = dir.join("wasmer.toml");
    let wapm = dir.join("wapm.toml");
    match !wasmer.exists() && wapm.exists() {
        true => wapm,
        false => wasmer,
    }
}

/// The directory's manifest, parsed and validated, and its text.
fn read_manifest(dir: &Path) -> Result<(wasmer_config::package::Manifest, String), DirError> {
    let toml_path = manifest_path(dir);
    let text = match std::fs::read_to_string(&toml_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DirError::NoManifest(dir.into()));
        }
        Err(e) => {
            return Err(DirError::ReadInput {
                path: toml_path,
                reason: e.to_string(),
            });
        }
    };
    let manifest =
        wasmer_config::package::Manifest::parse(&text).map_err(|e| DirError::BadManifest {
            path: toml_path.clone(),
            reason: toml_error(&text, e.message(), e.span()),
        })?;
    manifest.validate().map_err(|e| DirError::BadManifest {
        path: toml_path.clone(),
        reason: one_line(&e),
    })?;
    Ok((manifest, text))
}

/// Every path the manifest names stays inside the package directory `base`.
fn check_paths(manifest: &wasmer_config::package::Manifest, base: &Path) -> Result<(), DirError> {
    use wasmer_config::package::{Bindings, Command, CommandAnnotations};
    let inside = |what: String, rel: &Path| check_inside(base, what, rel);
    for module in &manifest.modules {
        inside(format!("module `{}` source", module.name), &module.source)?;
        match &module.bindings {
            Some(Bindings::Wit(wit)) => inside(
                format!("module `{}` bindings", module.name),
                &wit.wit_exports,
            )?,
            Some(Bindings::Wai(wai)) => {
                for file in wai.exports.iter().chain(&wai.imports) {
                    inside(format!("module `{}` bindings", module.name), file)?;
                }
            }
            None => {}
        }
    }
    for (guest, host) in &manifest.fs {
        inside(format!("[fs] `{guest}`"), host)?;
    }
    for command in &manifest.commands {
        if let Command::V2(cmd) = command
            && let Some(CommandAnnotations::File(file)) = &cmd.annotations
        {
            inside(format!("command `{}` annotations", cmd.name), &file.file)?;
        }
    }
    if let Some(package) = &manifest.package {
        if let Some(readme) = &package.readme {
            inside("readme".into(), readme)?;
        }
        if let Some(license) = &package.license_file {
            inside("license-file".into(), license)?;
        }
    }
    Ok(())
}

/// Refuses a path from `wasmer.toml` that is absolute, climbs above the package directory, or
/// resolves (through symbolic links) outside it, and one that does not exist.
fn check_inside(base: &Path, what: String, rel: &Path) -> Result<(), DirError> {
    let escapes = || DirError::Escapes {
        what: what.clone(),
        path: rel.into(),
    };
    let mut depth = 0usize;
    for component in rel.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return Err(escapes()),
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1).ok_or_else(escapes)?,
            Component::Normal(_) => depth += 1,
        }
    }
    match base.join(rel).canonicalize() {
        Ok(real) if real.starts_with(base) => Ok(()),
        Ok(_) => Err(escapes()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DirError::Missing {
            what,
            path: rel.into(),
        }),
        Err(e) => Err(DirError::ReadInput {
            path: base.join(rel),
            reason: e.to_string(),
        }),
    }
}

/// A TOML error as one line with its line number.
fn toml_error(text: &str, message: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            format!("line {line}: {}", one_line(&message))
        }
        None => one_line(&message),
    }
}
