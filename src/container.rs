//! WebC containers: recognising a format by its magic bytes, checking that a container is safe to
//! store and run, and writing one package in both formats the registry offers.
//!
//! All parsing goes through the `webc` crate. A container that webcpm accepts satisfies:
//! - it parses as the WebC version its magic bytes say, and (v2, v3) its checksums validate;
//! - every command names an atom the container holds;
//! - no volume entry is named `.`, `..`, contains a `/` or `\` or NUL, and no symbolic link points
//!   outside its volume; mount paths in the manifest are absolute and have no `..`.
//!
//! The `webc` crate's migrations panic on some malformed input; they run under
//! [`std::panic::catch_unwind`] so that a hostile file is an error, never a crash.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use bytes::Bytes;
use webc::Container;
use webc::metadata::Manifest;

use crate::package::{Sha256Digest, WebcVersion};

/// Why a container was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("not a WebC file (its first bytes are not the WebC magic)")]
    NotWebc,
    #[error("WebC version `{0}` is not supported (expected 001, 002 or 003)")]
    UnsupportedVersion(String),
    #[error("malformed WebC {format}: {reason}")]
    Malformed { format: String, reason: String },
    #[error("unsafe path in volume `{volume}`: `{path}` ({reason})")]
    UnsafePath {
        volume: String,
        path: String,
        reason: &'static str,
    },
    #[error("command `{command}` names atom `{atom}`, which the package does not contain")]
    MissingAtom { command: String, atom: String },
    #[error("could not convert to WebC {target}: {reason}")]
    Convert { target: WebcVersion, reason: String },
}

/// The format of a WebC file as its magic bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V1,
    Current(WebcVersion),
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::V1 => f.write_str("v1"),
            Format::Current(v) => v.fmt(f),
        }
    }
}

/// Reads the magic bytes (the first 8 bytes are enough).
pub fn detect(bytes: &[u8]) -> Result<Format, ContainerError> {
    match webc::detect(bytes) {
        Ok(webc::Version::V1) => Ok(Format::V1),
        Ok(webc::Version::V2) => Ok(Format::Current(WebcVersion::V2)),
        Ok(webc::Version::V3) => Ok(Format::Current(WebcVersion::V3)),
        Ok(other) => Err(ContainerError::UnsupportedVersion(other.to_string())),
        Err(_) => Err(ContainerError::NotWebc),
    }
}

/// A parsed container that passed every check in this module.
#[derive(Debug, Clone)]
pub struct Checked {
    pub format: Format,
    pub container: Container,
}

impl Checked {
    pub fn manifest(&self) -> &Manifest {
        self.container.manifest()
    }

    /// The atoms with their SHA-256, in name order.
    pub fn atoms(&self) -> Vec<(String, Sha256Digest, u64)> {
        self.container
            .atoms()
            .into_iter()
            .map(|(name, bytes)| {
                let digest = Sha256Digest::of(&bytes);
                (name, digest, bytes.len() as u64)
            })
            .collect()
    }
}

fn catch<T>(what: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(what)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the WebC reader gave up on this file".to_string())
    })
}

/// Parses and checks a whole container.
pub fn open(bytes: Bytes) -> Result<Checked, ContainerError> {
    let format = detect(&bytes)?;
    let version = match format {
        Format::V1 => webc::Version::V1,
        Format::Current(v) => v.to_webc(),
    };
    let malformed = |reason: String| ContainerError::Malformed {
        format: format.to_string(),
        reason,
    };
    let container = catch(|| Container::from_bytes_and_version(bytes, version))
        .map_err(malformed)?
        .map_err(|e| malformed(e.to_string()))?;
    if format != Format::V1 {
        catch(|| container.validate())
            .map_err(malformed)?
            .map_err(|e| malformed(format!("{e:#}")))?;
    }
    let checked = Checked { format, container };
    check_commands(checked.manifest(), &checked.container)?;
    check_mounts(checked.manifest())?;
    for (name, volume) in catch(|| checked.container.volumes()).map_err(malformed)? {
        check_volume(&name, &volume, &mut Vec::new(), 0)?;
    }
    Ok(checked)
}

fn check_commands(manifest: &Manifest, container: &Container) -> Result<(), ContainerError> {
    for (command, cmd) in &manifest.commands {
        let atom = match cmd.atom() {
            Ok(Some(atom)) if atom.dependency.is_none() => atom.name,
            Ok(Some(_)) => continue, // an atom of a dependency: checked when that one is
            _ => match cmd.wasi() {
                #[allow(deprecated)]
                Ok(Some(wasi)) if wasi.package.is_none() => wasi.atom,
                _ => continue,
            },
        };
        if container.get_atom(&atom).is_none() {
            return Err(ContainerError::MissingAtom {
                command: command.clone(),
                atom,
            });
        }
    }
    Ok(())
}

fn check_mounts(manifest: &Manifest) -> Result<(), ContainerError> {
    let Ok(Some(fs)) = manifest.filesystem() else {
        return Ok(());
    };
    for mapping in fs.iter() {
        let mount = &mapping.mount_path;
        if !mount.starts_with('/') || mount.split('/').any(|s| s == ".." || s == ".") {
            return Err(ContainerError::UnsafePath {
                volume: mapping.volume_name.clone(),
                path: mount.clone(),
                reason: "a mount path must be absolute with no `.` or `..`",
            });
        }
    }
    Ok(())
}

const MAX_DEPTH: usize = 256;

fn check_volume(
    volume_name: &str,
    volume: &webc::Volume,
    path: &mut Vec<String>,
    depth: usize,
) -> Result<(), ContainerError> {
    let unsafe_path = |path: &[String], reason| ContainerError::UnsafePath {
        volume: volume_name.to_string(),
        path: format!("/{}", path.join("/")),
        reason,
    };
    if depth > MAX_DEPTH {
        return Err(unsafe_path(path, "directories nested too deep"));
    }
    let entries = catch(|| volume.read_dir(path.as_slice().join("/").as_str()))
        .map_err(|reason| ContainerError::Malformed {
            format: "volume".into(),
            reason,
        })?
        .unwrap_or_default();
    for (name, _, meta) in entries {
        let name = name.as_str().to_string();
        path.push(name.clone());
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(unsafe_path(
                path,
                "a name may not be empty, `.`, `..` or hold a separator",
            ));
        }
        match meta {
            webc::Metadata::Dir { .. } => check_volume(volume_name, volume, path, depth + 1)?,
            webc::Metadata::Symlink { .. } => {
                let target = catch(|| volume.read_link(path.join("/").as_str()))
                    .ok()
                    .flatten()
                    .map(|(t, _)| t)
                    .unwrap_or_default();
                if !link_stays_inside(&path[..path.len() - 1], &target) {
                    return Err(unsafe_path(path, "a link may not point outside its volume"));
                }
            }
            webc::Metadata::File { .. } => {}
        }
        path.pop();
    }
    Ok(())
}

/// Whether a relative link target, resolved from `dir`, stays inside the volume.
fn link_stays_inside(dir: &[String], target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut depth = dir.len() as isize;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Writes `checked` in `target` format. The bytes are returned as they are when the container
/// already is in that format, so a published file is never rewritten needlessly.
pub fn convert(
    bytes: &Bytes,
    checked: &Checked,
    target: WebcVersion,
) -> Result<Bytes, ContainerError> {
    let err = |reason: String| ContainerError::Convert { target, reason };
    let v2_bytes = match checked.format {
        Format::Current(v) if v == target => return Ok(bytes.clone()),
        Format::Current(WebcVersion::V2) => bytes.clone(),
        Format::Current(WebcVersion::V3) => {
            return catch(|| webc::migration::v3_to_v2(bytes.clone()))
                .map_err(err)?
                .map(|b| b.into_bytes())
                .map_err(|e| err(format!("{e:#}")));
        }
        Format::V1 => rebuild_as_v2(&checked.container).map_err(err)?,
    };
    if target == WebcVersion::V2 {
        return Ok(v2_bytes);
    }
    catch(|| webc::migration::v2_to_v3(v2_bytes))
        .map_err(err)?
        .map(|b| b.into_bytes())
        .map_err(|e| err(format!("{e:#}")))
}

/// WebC v1 has no migration in the `webc` crate: read it through [`Container`] and write its
/// manifest, atoms and volumes anew with the v2 writer (v1 and v2 share the volume layout).
fn rebuild_as_v2(container: &Container) -> Result<Bytes, String> {
    use webc::PathSegment;
    use webc::v2::write::{Directory, FileEntry, Writer};

    fn copy_dir(volume: &webc::Volume, path: &str) -> Result<Directory<'static>, String> {
        let mut children = BTreeMap::new();
        for (name, _, meta) in volume.read_dir(path).unwrap_or_default() {
            let child = if path.is_empty() {
                name.as_str().to_string()
            } else {
                format!("{path}/{}", name.as_str())
            };
            let entry = match meta {
                webc::Metadata::Dir { .. } => {
                    webc::v2::write::DirEntry::Dir(copy_dir(volume, &child)?)
                }
                webc::Metadata::File { .. } => {
                    let (data, _) = volume
                        .read_file(child.as_str())
                        .ok_or_else(|| format!("cannot read `{child}`"))?;
                    webc::v2::write::DirEntry::File(FileEntry::Owned(data.into_bytes()))
                }
                webc::Metadata::Symlink { .. } => {
                    return Err(format!("`{child}` is a link, which WebC v2 cannot hold"));
                }
            };
            children.insert(name, entry);
        }
        Ok(Directory { children })
    }

    let atoms = container
        .atoms()
        .into_iter()
        .map(|(name, data)| {
            let segment = PathSegment::parse(&name).map_err(|e| format!("atom `{name}`: {e}"))?;
            Ok((segment, FileEntry::Owned(data.into_bytes())))
        })
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let mut writer = Writer::new(webc::v2::ChecksumAlgorithm::Sha256)
        .write_manifest(container.manifest())
        .map_err(|e| e.to_string())?
        .write_atoms(atoms)
        .map_err(|e| e.to_string())?;
    for (name, volume) in container.volumes() {
        let dir = copy_dir(&volume, "")?;
        writer.write_volume(&name, dir).map_err(|e| e.to_string())?;
    }
    writer
        .finish(webc::v2::SignatureAlgorithm::None)
        .map_err(|e| e.to_string())
}

/// Reads a WebC file from disk and checks it.
pub fn open_file(path: &Path) -> Result<(Bytes, Checked), std::io::Error> {
    let bytes = Bytes::from(std::fs::read(path)?);
    let checked = open(bytes.clone()).map_err(std::io::Error::other)?;
    Ok((bytes, checked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_resolved_against_their_directory() {
        let dir = vec!["a".to_string(), "b".to_string()];
        assert!(link_stays_inside(&dir, "../c"));
        assert!(link_stays_inside(&dir, "../../c"));
        assert!(!link_stays_inside(&dir, "../../../c"));
        assert!(!link_stays_inside(&dir, "/etc/passwd"));
        assert!(!link_stays_inside(&[], ".."));
    }

    #[test]
    fn garbage_is_not_webc() {
        assert!(matches!(
            detect(b"\0asm\x01\0\0\0"),
            Err(ContainerError::NotWebc)
        ));
        assert!(matches!(
            open(Bytes::from_static(b"\0webc002garbage")),
            Err(ContainerError::Malformed { .. })
        ));
    }
}
