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
use std::path::Path;

use bytes::Bytes;
use webc::Container;
use webc::metadata::Manifest;

use crate::package::WebcVersion;

mod base;
mod checksums;
mod mounts;
mod readme;
mod requests;
mod stream;
mod tree;
mod unpack;

use base::catch;
pub use base::{Checked, ContainerError, Format, volume_dir_name};
pub use readme::{MAX_README, cut_readme, readme};
pub use requests::{Requests, requests};
pub use stream::{AtomStream, StreamedAtoms};
pub use tree::UnpackLimits;
pub use unpack::{Differences, differences, make_read_only, unpack_volumes};

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

/// Parses and checks a whole container, with the unpack limits its size gives by default.
pub fn open(bytes: Bytes) -> Result<Checked, ContainerError> {
    let limits = UnpackLimits::for_size(bytes.len() as u64, UnpackLimits::DEFAULT_RATIO);
    open_with(bytes, limits)
}

/// Parses and checks a whole container. What it would unpack to is counted first, within
/// `limits`, before anything reads its contents (the checksums, the files).
pub fn open_with(bytes: Bytes, limits: UnpackLimits) -> Result<Checked, ContainerError> {
    open_checked(bytes, limits, None).map(|(checked, _)| checked)
}

/// [`open_with`] for a container whose atoms were hashed as it was downloaded: the same checks,
/// with the digests of `streamed` in place of hashing the atoms again (an atom the stream did
/// not hash at the place `webc` finds it is hashed here). Also returns how many atoms' digests
/// came from the stream.
pub fn open_streamed(
    bytes: Bytes,
    limits: UnpackLimits,
    streamed: &StreamedAtoms,
) -> Result<(Checked, usize), ContainerError> {
    open_checked(bytes, limits, Some(streamed))
}

fn open_checked(
    bytes: Bytes,
    limits: UnpackLimits,
    streamed: Option<&StreamedAtoms>,
) -> Result<(Checked, usize), ContainerError> {
    let file = bytes.clone();
    let Checked { format, container } = open_stored(bytes)?;
    let malformed = |reason: String| ContainerError::Malformed {
        format: format.to_string(),
        reason,
    };
    // Paths first: a hostile path is refused with its field named, before anything else.
    let volumes = tree::volumes(&container, limits)?;
    mounts::check(container.manifest(), &volumes)?;
    for (name, _, tree) in &volumes {
        tree.check_links(name)?;
    }
    let from_stream = match (format, streamed) {
        (Format::V1, _) => 0,
        (_, None) => {
            catch(|| container.validate())
                .map_err(malformed)?
                .map_err(|e| malformed(format!("{e:#}")))?;
            0
        }
        (_, Some(streamed)) => catch(|| checksums::validate(&container, &file, streamed))
            .map_err(malformed)?
            .map_err(malformed)?,
    };
    let checked = Checked { format, container };
    check_commands(checked.manifest(), &checked.container)?;
    Ok((checked, from_stream))
}

/// Parses a container without any of the checks of [`open`] (which starts with this): for a
/// container that passed `open` when it entered the store and has not changed since (its SHA-256
/// was checked then; store files are never written in place), so that a large package is not
/// hashed again at every step.
pub fn open_stored(bytes: Bytes) -> Result<Checked, ContainerError> {
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
    Ok(Checked { format, container })
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
            let child = format!("{}/{}", path.trim_end_matches('/'), name.as_str());
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
        let dir = copy_dir(&volume, "/")?;
        writer.write_volume(&name, dir).map_err(|e| e.to_string())?;
    }
    writer
        .finish(webc::v2::SignatureAlgorithm::None)
        .map_err(|e| e.to_string())
}

/// A command of a package, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: String,
    pub atom: String,
    /// The `use` alias of the dependency that holds the atom, if not this package.
    pub dependency: Option<String>,
    /// Arguments the package puts before the user's.
    pub main_args: Vec<String>,
    /// `KEY=VALUE` pairs the package sets.
    pub env: Vec<(String, String)>,
    /// The working directory the package gives the command (its `wasi` annotation's `cwd`).
    pub cwd: Option<String>,
}

/// Picks the command to run: the one named, else the entrypoint, else the only command.
pub fn command(
    manifest: &Manifest,
    requested: Option<&str>,
) -> Result<CommandSpec, ContainerError> {
    let available: Vec<String> = manifest.commands.keys().cloned().collect();
    let name = match requested {
        Some(name) => name.to_string(),
        None => match (&manifest.entrypoint, available.as_slice()) {
            (Some(entry), _) => entry.clone(),
            (None, [only]) => only.clone(),
            (None, []) => return Err(ContainerError::NoCommand),
            (None, _) => return Err(ContainerError::AmbiguousCommand { available }),
        },
    };
    let Some(cmd) = manifest.commands.get(&name) else {
        return Err(ContainerError::UnknownCommand {
            requested: name,
            available,
        });
    };
    if !is_wasi_runner(&cmd.runner) {
        return Err(ContainerError::UnsupportedRunner {
            command: name,
            runner: cmd.runner.clone(),
        });
    }
    let wasi = cmd.wasi().ok().flatten();
    #[allow(deprecated)]
    let (atom, dependency) = match cmd.atom() {
        Ok(Some(a)) => (a.name, a.dependency),
        _ => match &wasi {
            Some(w) => (w.atom.clone(), w.package.clone()),
            None => (name.clone(), None),
        },
    };
    let env = wasi
        .as_ref()
        .and_then(|w| w.env.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    Ok(CommandSpec {
        name,
        atom,
        dependency,
        cwd: wasi
            .as_ref()
            .and_then(|w| w.cwd.as_ref())
            .map(|c| c.to_string_lossy().into_owned()),
        main_args: wasi.and_then(|w| w.main_args).unwrap_or_default(),
        env,
    })
}

/// Whether a command's runner is WASI's in any of the spellings Wasmer accepts: `wasi`,
/// `wasi@unstable_`, `https://webc.org/runner/wasi` and what Wasmer's own check lets through after
/// it (`https://webc.org/runner/wasi@unstable_`, `https://webc.org/runner/wasi/command@unstable_`
/// of early WebC files).
pub(crate) fn is_wasi_runner(runner: &str) -> bool {
    let name = runner
        .strip_prefix("https://webc.org/runner/")
        .unwrap_or(runner);
    name.strip_prefix("wasi")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['@', '/']))
}

/// A directory the manifest maps into the program's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The volume that holds it.
    pub volume: String,
    /// Its path inside the volume, relative (empty: the whole volume).
    pub subpath: String,
    /// Where the program sees it.
    pub guest: String,
    /// The `use` alias of the dependency whose volume it is, if not this package's.
    pub from: Option<String>,
}

/// The manifest's filesystem mappings.
pub fn mounts(manifest: &Manifest) -> Vec<MountSpec> {
    let Ok(Some(fs)) = manifest.filesystem() else {
        return Vec::new();
    };
    fs.iter()
        .map(|m| MountSpec {
            volume: m.volume_name.clone(),
            subpath: m
                .host_path
                .as_deref()
                .unwrap_or_default()
                .trim_matches('/')
                .to_string(),
            guest: m.mount_path.clone(),
            from: m.from.clone(),
        })
        .collect()
}

/// Maps a WebC file of webcpm's own store into memory, without copying it: a large package
/// costs page cache, not heap.
pub fn map_file(path: &Path) -> std::io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: a mapping is undefined behaviour if the file changes while it is mapped. The
    // files mapped here are the store's own: blobs and downloads that webcpm wrote itself,
    // that are never written in place (a blob is made read-only and only ever replaced by a
    // rename, which leaves the mapped inode as it was), under the same assumption as the rest
    // of the store: only webcpm and the user who owns it write there.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Sha256Digest;

    /// A v3 container with one atom and a `/data` volume holding `a.txt` and `sub/b.txt`.
    fn sample() -> Bytes {
        use webc::v3::write::{DirEntry, Directory, FileEntry, Writer};
        use webc::v3::{ChecksumAlgorithm, SignatureAlgorithm, Timestamps};
        let file = |text: &'static str| {
            DirEntry::File(FileEntry::borrowed(text.as_bytes(), Timestamps::default()))
        };
        let seg = |s: &str| webc::PathSegment::parse(s).unwrap();
        let sub = Directory::new(
            [(seg("b.txt"), file("bee"))].into_iter().collect(),
            Timestamps::default(),
        );
        let root = Directory::new(
            [(seg("a.txt"), file("ay")), (seg("sub"), DirEntry::Dir(sub))]
                .into_iter()
                .collect(),
            Timestamps::default(),
        );
        let wasm = wat::parse_str("(module)").unwrap();
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "atoms": {"main": {"kind": "https://webc.org/kind/wasm",
                               "signature": format!("sha256:{}", {
                                   use base64::Engine;
                                   base64::prelude::BASE64_STANDARD.encode(Sha256Digest::of(&wasm).0)
                               })}},
            "package": {"fs": [{"volume_name": "/data", "mount_path": "/data"}]}
        }))
        .unwrap();
        let mut writer = Writer::new(ChecksumAlgorithm::Sha256)
            .write_manifest(&manifest)
            .unwrap()
            .write_atoms(
                [(seg("main"), FileEntry::owned(wasm, Timestamps::default()))]
                    .into_iter()
                    .collect(),
            )
            .unwrap();
        writer.write_volume("/data", root).unwrap();
        writer.finish(SignatureAlgorithm::None).unwrap()
    }

    #[test]
    fn volumes_are_checked_and_unpacked_in_full() {
        let bytes = sample();
        let checked = open(bytes.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack_volumes(&checked, dir.path(), UnpackLimits::for_size(1 << 20, 8)).unwrap();
        let data = dir.path().join(volume_dir_name("/data"));
        assert_eq!(std::fs::read_to_string(data.join("a.txt")).unwrap(), "ay");
        assert_eq!(
            std::fs::read_to_string(data.join("sub/b.txt")).unwrap(),
            "bee"
        );
        // Both formats hold the same files.
        let v2 = convert(&bytes, &checked, WebcVersion::V2).unwrap();
        let v2 = open(v2).unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        unpack_volumes(&v2, dir2.path(), UnpackLimits::for_size(1 << 20, 8)).unwrap();
        let mounts = mounts(v2.manifest());
        assert_eq!(mounts.len(), 1);
        let host = dir2
            .path()
            .join(volume_dir_name(&mounts[0].volume))
            .join(&mounts[0].subpath);
        assert_eq!(
            std::fs::read_to_string(host.join("sub/b.txt")).unwrap(),
            "bee"
        );
    }

    #[test]
    fn runners_as_wasmer_spells_them() {
        for runner in [
            "wasi",
            "wasi@unstable_",
            "https://webc.org/runner/wasi",
            "https://webc.org/runner/wasi@unstable_",
            "https://webc.org/runner/wasi/command@unstable_",
        ] {
            assert!(is_wasi_runner(runner), "{runner}");
        }
        for runner in [
            "wcgi",
            "https://webc.org/runner/wcgi",
            "https://webc.org/runner/wasix-http",
            "emscripten",
            "",
        ] {
            assert!(!is_wasi_runner(runner), "{runner}");
        }
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
