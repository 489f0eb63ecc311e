//! A package's volumes on disk: written once when it enters the store, from the same checked
//! tree that the entry checks read (names, links resolved as the kernel would, the unpack
//! limits), then made read-only (files 0444, directories 0555) so that no program and no
//! mistake changes them; and compared against the package by `cache verify`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::base::{Checked, ContainerError, volume_dir_name, volume_path};
use super::tree::{Node, Tree, UnpackLimits, volumes};

const FILE_MODE: u32 = 0o444;
const DIR_MODE: u32 = 0o555;

/// Every volume with its tree, its links checked.
fn checked_volumes(
    checked: &Checked,
    limits: UnpackLimits,
) -> Result<Vec<(String, webc::Volume, Tree)>, ContainerError> {
    let volumes = volumes(&checked.container, limits)?;
    for (name, _, tree) in &volumes {
        tree.check_links(name)?;
    }
    Ok(volumes)
}

/// Writes every volume of a checked container under `dest`, one directory per volume
/// ([`volume_dir_name`]), and makes each read-only. The volumes' trees (names, links, the
/// limits) are checked again here, since this is where a bad name or link would do harm; the
/// manifest's paths were checked when the container entered the store.
pub fn unpack_volumes(
    checked: &Checked,
    dest: &Path,
    limits: UnpackLimits,
) -> Result<(), ContainerError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerError::Unpack { path, source }
    };
    for (name, volume, tree) in checked_volumes(checked, limits)? {
        let root = dest.join(volume_dir_name(&name));
        fs::create_dir_all(&root).map_err(failed(&root))?;
        // Parents come before their children in the tree's order.
        for (path, node) in &tree.nodes {
            let target = on_disk(&root, path);
            match node {
                Node::Dir => fs::create_dir(&target).map_err(failed(&target))?,
                Node::File => {
                    let inner = volume_path(path);
                    let (data, _) = volume.read_file(inner.as_str()).ok_or_else(|| {
                        ContainerError::Malformed {
                            format: "volume".into(),
                            reason: format!("cannot read `{inner}` in volume `{name}`"),
                        }
                    })?;
                    let mut file = fs::File::create_new(&target).map_err(failed(&target))?;
                    std::io::Write::write_all(&mut file, &data).map_err(failed(&target))?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(FILE_MODE))
                        .map_err(failed(&target))?;
                }
                Node::Link(link) => {
                    std::os::unix::fs::symlink(link, &target).map_err(failed(&target))?
                }
            }
        }
        // Children before their parents: a read-only directory cannot be written into.
        for (path, node) in tree.nodes.iter().rev() {
            if *node == Node::Dir {
                let dir = on_disk(&root, path);
                fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(failed(&dir))?;
            }
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(DIR_MODE)).map_err(failed(&root))?;
    }
    // `dest` itself stays writable until it is in place: a directory is moved to another parent
    // only when it can be written (its `..` changes).
    Ok(())
}

fn on_disk(root: &Path, path: &[String]) -> PathBuf {
    path.iter().fold(root.to_path_buf(), |p, c| p.join(c))
}

/// How unpacked volumes differ from their package.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Differences {
    /// A changed, missing or extra file, directory or link, one line each.
    pub changed: Vec<String>,
    /// Files and directories whose contents are the package's but that can be written to (as
    /// an older webcpm unpacked them).
    pub writable: Vec<PathBuf>,
}

impl Differences {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.writable.is_empty()
    }
}

/// How the unpacked volumes under `dest` differ from the package, read within `limits`.
pub fn differences(
    checked: &Checked,
    dest: &Path,
    limits: UnpackLimits,
) -> Result<Differences, ContainerError> {
    let mut found = Differences::default();
    let mut expected_roots = Vec::new();
    for (name, volume, tree) in checked_volumes(checked, limits)? {
        let root = dest.join(volume_dir_name(&name));
        expected_roots.push(root.clone());
        let mut expected: BTreeMap<PathBuf, &Node> = BTreeMap::new();
        expected.insert(root.clone(), &Node::Dir);
        compare(&root, &Node::Dir, &volume, &[], &mut found);
        for (path, node) in &tree.nodes {
            let target = on_disk(&root, path);
            compare(&target, node, &volume, path, &mut found);
            expected.insert(target, node);
        }
        for extra in list(&root) {
            if !expected.contains_key(&extra) {
                found
                    .changed
                    .push(format!("{} is not in the package", extra.display()));
            }
        }
    }
    for extra in fs::read_dir(dest).into_iter().flatten().flatten() {
        if !expected_roots.contains(&extra.path()) {
            found
                .changed
                .push(format!("{} is not in the package", extra.path().display()));
        }
    }
    Ok(found)
}

/// Makes files 0444 and directories 0555 again.
pub fn make_read_only(paths: &[PathBuf]) -> std::io::Result<()> {
    for path in paths {
        let mode = match fs::symlink_metadata(path)?.is_dir() {
            true => DIR_MODE,
            false => FILE_MODE,
        };
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// How one entry on disk differs from the package, if it does.
fn compare(
    target: &Path,
    node: &Node,
    volume: &webc::Volume,
    path: &[String],
    found: &mut Differences,
) {
    let shown = target.display();
    let Ok(meta) = fs::symlink_metadata(target) else {
        found.changed.push(format!("{shown} is missing"));
        return;
    };
    let changed = match node {
        Node::Dir if !meta.is_dir() => Some(format!("{shown} is no longer a directory")),
        Node::File if !meta.is_file() => Some(format!("{shown} is no longer a file")),
        Node::Link(_) if !meta.is_symlink() => Some(format!("{shown} is no longer a link")),
        Node::Link(link) => match fs::read_link(target) {
            Ok(on_disk) if on_disk == Path::new(link) => None,
            _ => Some(format!("{shown} points elsewhere than `{link}`")),
        },
        Node::File => {
            let same = volume
                .read_file(volume_path(path).as_str())
                .is_some_and(|(data, _)| fs::read(target).is_ok_and(|bytes| bytes == *data));
            (!same).then(|| format!("{shown} was changed"))
        }
        Node::Dir => None,
    };
    match changed {
        Some(line) => found.changed.push(line),
        None if !meta.is_symlink() && meta.permissions().mode() & 0o222 != 0 => {
            found.writable.push(target.to_path_buf())
        }
        None => {}
    }
}

/// Every path below `dir`, not following links.
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use proptest::prelude::*;
    use webc::PathSegment;
    use webc::v3::write::{DirEntry, Directory, FileEntry, SymlinkEntry, Writer};
    use webc::v3::{ChecksumAlgorithm, SignatureAlgorithm, Timestamps};

    use super::super::{open, volume_dir_name};
    use super::*;

    /// An entry a random tree may hold.
    #[derive(Debug, Clone)]
    enum Made {
        Dir,
        File,
        Link(String),
    }

    /// Paths of one to three components over a small alphabet, so that links find entries.
    fn path() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
            .prop_map(|parts| parts.into_iter().map(str::to_string).collect())
    }

    fn target() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "..", "."]), 1..=5)
            .prop_map(|parts| parts.join("/"))
    }

    fn made() -> impl Strategy<Value = Made> {
        prop_oneof![
            Just(Made::Dir),
            Just(Made::File),
            target().prop_map(Made::Link),
            target().prop_map(Made::Link),
        ]
    }

    /// A consistent tree: every parent of an entry is a directory; later conflicts are dropped.
    fn tree(entries: Vec<(Vec<String>, Made)>) -> BTreeMap<Vec<String>, Made> {
        let mut tree: BTreeMap<Vec<String>, Made> = BTreeMap::new();
        'next: for (path, made) in entries {
            for depth in 1..path.len() {
                match tree.get(&path[..depth]) {
                    None => {
                        tree.insert(path[..depth].to_vec(), Made::Dir);
                    }
                    Some(Made::Dir) => {}
                    Some(_) => continue 'next,
                }
            }
            tree.entry(path).or_insert(made);
        }
        tree
    }

    fn directory(tree: &BTreeMap<Vec<String>, Made>, at: &[String]) -> Directory<'static> {
        let mut children = BTreeMap::new();
        for (path, made) in tree {
            if path.len() != at.len() + 1 || path[..at.len()] != *at {
                continue;
            }
            let entry = match made {
                Made::Dir => DirEntry::Dir(directory(tree, path)),
                Made::File => DirEntry::File(FileEntry::owned(
                    path.join("/").into_bytes(),
                    Timestamps::default(),
                )),
                Made::Link(t) => {
                    DirEntry::Symlink(SymlinkEntry::owned(t.clone(), Timestamps::default()))
                }
            };
            children.insert(PathSegment::parse(path.last().unwrap()).unwrap(), entry);
        }
        Directory::new(children, Timestamps::default())
    }

    /// A v3 container holding the tree in one volume, or `None` where the writer refuses it.
    fn container(tree: &BTreeMap<Vec<String>, Made>) -> Option<bytes::Bytes> {
        let manifest: webc::metadata::Manifest = serde_json::from_value(serde_json::json!({
            "package": {"fs": [{"volume_name": "/data", "mount_path": "/data"}]}
        }))
        .unwrap();
        let root = directory(tree, &[]);
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut writer = Writer::new(ChecksumAlgorithm::Sha256)
                .write_manifest(&manifest)
                .ok()?
                .write_atoms(BTreeMap::new())
                .ok()?;
            writer.write_volume("/data", root).ok()?;
            writer.finish(SignatureAlgorithm::None).ok()
        }));
        built.ok().flatten()
    }

    /// Every path below `root` that resolves (through links) outside it, or into a loop.
    fn escapes(root: &Path) -> Vec<PathBuf> {
        let base = root.canonicalize().unwrap();
        let mut out = Vec::new();
        for path in list(root) {
            match path.canonicalize() {
                Ok(real) if !real.starts_with(&base) => out.push(path),
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => out.push(path),
                _ => {}
            }
        }
        out
    }

    /// The tree written to disk as it is, with no checks: what the kernel makes of it.
    fn materialize(tree: &BTreeMap<Vec<String>, Made>, root: &Path) {
        for (path, made) in tree {
            let at = path.iter().fold(root.to_path_buf(), |p, c| p.join(c));
            match made {
                Made::Dir => fs::create_dir(&at).unwrap(),
                Made::File => fs::write(&at, b"x").unwrap(),
                Made::Link(t) => std::os::unix::fs::symlink(t, &at).unwrap(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Nothing that enters the store resolves outside its volume, and every tree whose links
        /// would lead out of it on disk is refused.
        #[test]
        fn nothing_unpacked_resolves_outside_its_volume(
            entries in prop::collection::vec((path(), made()), 1..12)
        ) {
            let tree = tree(entries);
            let Some(bytes) = container(&tree) else {
                return Ok(());
            };
            let raw = tempfile::tempdir().unwrap();
            let raw_root = raw.path().join("volume");
            fs::create_dir(&raw_root).unwrap();
            materialize(&tree, &raw_root);
            let dangerous = !escapes(&raw_root).is_empty();
            match open(bytes) {
                Ok(checked) => {
                    prop_assert!(!dangerous, "accepted a tree that escapes: {tree:?}");
                    let store = tempfile::tempdir().unwrap();
                    let dest = store.path().join("unpacked");
                    fs::create_dir(&dest).unwrap();
                    unpack_volumes(&checked, &dest, UnpackLimits::for_size(1 << 20, 8)).unwrap();
                    let volume = dest.join(volume_dir_name("/data"));
                    prop_assert!(escapes(&volume).is_empty(), "{tree:?}");
                    prop_assert!(differences(&checked, &dest, UnpackLimits::for_size(1 << 20, 8)).unwrap().is_empty());
                    // Read-only, all of it.
                    for path in list(&volume) {
                        let meta = fs::symlink_metadata(&path).unwrap();
                        prop_assert!(meta.is_symlink() || meta.permissions().mode() & 0o222 == 0);
                    }
                    make_removable(&dest);
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("link") || text.contains("name"), "{text}");
                }
            }
        }
    }

    fn make_removable(dir: &Path) {
        for path in list(dir).into_iter().chain([dir.to_path_buf()]) {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }

    #[test]
    fn a_tampered_volume_is_told_apart() {
        let mut made = BTreeMap::new();
        made.insert(vec!["a".to_string()], Made::Dir);
        made.insert(vec!["a".to_string(), "f".to_string()], Made::File);
        made.insert(vec!["l".to_string()], Made::Link("a/f".into()));
        let checked = open(container(&made).unwrap()).unwrap();
        let store = tempfile::tempdir().unwrap();
        let dest = store.path().join("unpacked");
        fs::create_dir(&dest).unwrap();
        unpack_volumes(&checked, &dest, UnpackLimits::for_size(1 << 20, 8)).unwrap();
        assert!(
            differences(&checked, &dest, UnpackLimits::for_size(1 << 20, 8))
                .unwrap()
                .is_empty()
        );
        let file = dest.join(volume_dir_name("/data")).join("a/f");
        // Writable but the same: only its mode is off, and it can be put back.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let found = differences(&checked, &dest, UnpackLimits::for_size(1 << 20, 8)).unwrap();
        assert!(found.changed.is_empty(), "{found:?}");
        assert_eq!(found.writable, vec![file.clone()]);
        make_read_only(&found.writable).unwrap();
        assert!(
            differences(&checked, &dest, UnpackLimits::for_size(1 << 20, 8))
                .unwrap()
                .is_empty()
        );
        // Changed.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&file, "changed").unwrap();
        let found = differences(&checked, &dest, UnpackLimits::for_size(1 << 20, 8)).unwrap();
        assert_eq!(found.changed.len(), 1, "{found:?}");
        assert!(found.changed[0].contains("was changed"), "{found:?}");
        make_removable(&dest);
    }
}
