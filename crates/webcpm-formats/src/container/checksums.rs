//! The checks of `webc`'s `Container::validate`, for a container whose atoms were hashed while
//! it was downloaded ([`super::stream`]): each atom's digest is taken from the stream when the
//! stream hashed exactly the bytes `webc` finds for it, and computed here otherwise; then, as
//! `validate` does, the file-system mappings must name volumes that exist (and, in v2, readable
//! directories), and every file and link of every volume must have the length its entry gives
//! and (v3) the hash, every link a target that stays in its volume.
//!
//! `Container::validate` stays the check for every other container, and the oracle of the tests:
//! both must agree on every fixture and every real WebC file (`tests/it/webc_oracle.rs`).

use sha2::{Digest, Sha256};
use webc::{Container, Metadata, PathSegment, PathSegments, Version, Volume};

use super::stream::StreamedAtoms;

/// Checks `container`, parsed from `file`, with the atoms' digests of `streamed`. Returns how
/// many atoms the stream had hashed.
pub(super) fn validate(
    container: &Container,
    file: &[u8],
    streamed: &StreamedAtoms,
) -> Result<usize, String> {
    let manifest = container.manifest();
    let mut from_stream = 0;
    for (name, bytes) in container.atoms() {
        let signature = manifest
            .atom_signature(&name)
            .map_err(|e| format!("{e:#}"))?;
        let digest = match offset_in(file, &bytes)
            .and_then(|at| streamed.digest(&name, at, bytes.len() as u64))
        {
            Some(digest) => {
                from_stream += 1;
                digest
            }
            None => Sha256::digest(&bytes).into(),
        };
        if signature.as_bytes() != digest.as_slice() {
            return Err(format!(
                "signature of atom: {name} does not match what is expected"
            ));
        }
    }
    mappings(container)?;
    for (_, volume) in container.volumes() {
        walk(&volume, PathSegments::ROOT, container.version())?;
    }
    Ok(from_stream)
}

/// Where `part`, a slice of `file`, starts in it.
fn offset_in(file: &[u8], part: &[u8]) -> Option<u64> {
    let (base, at) = (file.as_ptr() as usize, part.as_ptr() as usize);
    let offset = at.checked_sub(base)?;
    (offset.checked_add(part.len())? <= file.len()).then_some(offset as u64)
}

fn mappings(container: &Container) -> Result<(), String> {
    let Some(fs) = container
        .manifest()
        .filesystem()
        .map_err(|e| format!("{e:#}"))?
    else {
        return Ok(());
    };
    for mapping in fs.iter() {
        let volume = container
            .get_volume(&mapping.volume_name)
            .ok_or_else(|| format!("could not find: {}", mapping.volume_name))?;
        if container.version() == Version::V2 {
            let host_path = mapping
                .host_path
                .clone()
                .ok_or("host_path is not present in fs mapping")?;
            let path: PathSegments = host_path.parse().map_err(|e| format!("{e}"))?;
            volume
                .read_dir(path)
                .ok_or_else(|| format!("could not read directory: {host_path}"))?;
        }
    }
    Ok(())
}

fn walk(volume: &Volume, path: PathSegments, version: Version) -> Result<(), String> {
    let entries = volume
        .read_dir(&path)
        .ok_or_else(|| format!("failed to read path: {path}"))?;
    for (name, listed_hash, metadata) in entries {
        let entry = path.join(name);
        let v3 = version == Version::V3;
        let (digest, read_hash) = match metadata {
            Metadata::Dir { .. } => {
                walk(volume, entry, version)?;
                continue;
            }
            Metadata::File { length, .. } => {
                let (content, hash) = volume
                    .read_file(entry.clone())
                    .ok_or_else(|| format!("failed to read file: {entry}"))?;
                if content.len() != length {
                    return Err(format!(
                        "File: {entry} length does not match with the actual content: {length} != {}",
                        content.len()
                    ));
                }
                (v3.then(|| Sha256::digest(content.as_slice())), hash)
            }
            Metadata::Symlink { target_length, .. } => {
                let (target, hash) = volume
                    .read_link(entry.clone())
                    .ok_or_else(|| format!("failed to read symlink: {entry}"))?;
                if target.len() != target_length {
                    return Err(format!(
                        "Symlink: {entry} target length does not match with the actual target: {target_length} != {}",
                        target.len()
                    ));
                }
                if !stays_inside(&entry, &target) {
                    return Err(format!(
                        "symlink target {target:?} for {entry} must be relative and stay within the volume"
                    ));
                }
                (v3.then(|| Sha256::digest(target.as_bytes())), hash)
            }
        };
        if let Some(digest) = digest {
            let expected = Some(<[u8; 32]>::from(digest));
            if listed_hash != expected || read_hash != expected {
                return Err(format!("hash of {entry} does not match the expected value"));
            }
        }
    }
    Ok(())
}

/// Whether a link at `link` to `target` resolves, by its text alone, inside its volume: the rule
/// of `webc`'s own validation (the entry checks of [`super::tree`] also follow links through
/// other links).
fn stays_inside(link: &PathSegments, target: &str) -> bool {
    if target.is_empty()
        || target.starts_with('/')
        || target.starts_with('\\')
        || std::path::Path::new(target).is_absolute()
    {
        return false;
    }
    let mut path = link.clone();
    path.pop();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if path.pop().is_none() {
                    return false;
                }
            }
            s if s.contains('\\') || s.contains(':') => return false,
            s => match PathSegment::parse(s) {
                Ok(segment) => path.push(segment),
                Err(_) => return false,
            },
        }
    }
    true
}
