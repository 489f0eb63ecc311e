//! A volume as the entry checks see it: every entry's path and kind, read once when a package
//! enters the store, within a budget of entries and bytes that is checked as the walk goes (so
//! that a small file whose entries share one large byte range, or whose directories share one
//! subtree, is refused before anything processes gigabytes); and its symbolic links resolved the
//! way the kernel resolves them, through the links before them, so that no chain of links that
//! each look harmless leads out of the volume.

use std::collections::BTreeMap;

use super::base::{ContainerError, catch, safe_name, volume_path};

/// How deep directories may nest.
const MAX_DEPTH: usize = 256;

/// How many links one resolution may follow, as Linux allows (`ELOOP` past it).
const MAX_HOPS: u32 = 40;

/// What is at a path of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File,
    Link(String),
}

/// Every entry of one volume by its path components; the root (no components) is a directory.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub nodes: BTreeMap<Vec<String>, Node>,
}

/// What unpacking a package may cost at most: entries (files, directories, links) and bytes of
/// file content, over all its volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl UnpackLimits {
    /// The default ratio of unpacked bytes to the container's size (`store.unpack_ratio`).
    pub const DEFAULT_RATIO: u64 = 8;
    /// Bytes and entries every package may have whatever its size.
    const FLOOR_BYTES: u64 = 64 << 20;
    const FLOOR_ENTRIES: u64 = 100_000;

    /// The limits for a container of `size` bytes: `ratio` times its size in bytes (plus 64 MiB),
    /// and one entry for every 32 of those bytes (plus 100,000). WebC does not compress, so an
    /// honest package unpacks to about its own size; files with identical contents share their
    /// bytes, which is what the ratio leaves room for.
    pub fn for_size(size: u64, ratio: u64) -> UnpackLimits {
        let bytes = size.saturating_mul(ratio.max(1));
        UnpackLimits {
            max_entries: Self::FLOOR_ENTRIES.saturating_add(bytes / 32),
            max_bytes: Self::FLOOR_BYTES.saturating_add(bytes),
        }
    }
}

/// What a walk has used of its [`UnpackLimits`], over every volume of a package. The path
/// components of all entries are counted too (at most 32 per entry on average), so that deep
/// directories sharing one subtree cannot make the walk itself hold gigabytes of paths.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: UnpackLimits,
    entries: u64,
    bytes: u64,
    components: u64,
}

impl Budget {
    pub(super) fn new(limits: UnpackLimits) -> Budget {
        Budget {
            limits,
            entries: 0,
            bytes: 0,
            components: 0,
        }
    }

    fn spend(&mut self, bytes: u64, depth: usize) -> Result<(), ContainerError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        self.components = self.components.saturating_add(depth as u64);
        let max_components = self.limits.max_entries.saturating_mul(32);
        if self.components > max_components {
            return Err(ContainerError::TooLarge {
                what: "path components",
                limit: max_components,
            });
        }
        if self.entries > self.limits.max_entries {
            return Err(ContainerError::TooLarge {
                what: "entries",
                limit: self.limits.max_entries,
            });
        }
        if self.bytes > self.limits.max_bytes {
            return Err(ContainerError::TooLarge {
                what: "bytes of files",
                limit: self.limits.max_bytes,
            });
        }
        Ok(())
    }
}

/// Every volume of a container with its tree, read within one budget for the whole package.
pub(crate) fn volumes(
    container: &webc::Container,
    limits: UnpackLimits,
) -> Result<Vec<(String, webc::Volume, Tree)>, ContainerError> {
    let volumes = catch(|| container.volumes()).map_err(|reason| ContainerError::Malformed {
        format: "volume".into(),
        reason,
    })?;
    let mut budget = Budget::new(limits);
    volumes
        .into_iter()
        .map(|(name, volume)| {
            let tree = walk(&name, &volume, &mut budget)?;
            Ok((name, volume, tree))
        })
        .collect()
}

/// Reads a volume's tree, checking every name and charging every entry to `budget`.
fn walk(
    volume_name: &str,
    volume: &webc::Volume,
    budget: &mut Budget,
) -> Result<Tree, ContainerError> {
    let mut tree = Tree::default();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(dir) = pending.pop() {
        if dir.len() > MAX_DEPTH {
            return Err(unsafe_path(
                volume_name,
                &dir,
                "directories nested too deep",
            ));
        }
        let entries = catch(|| volume.read_dir(volume_path(&dir).as_str()))
            .map_err(|reason| ContainerError::Malformed {
                format: "volume".into(),
                reason,
            })?
            .unwrap_or_default();
        for (name, _, meta) in entries {
            let mut path = dir.clone();
            path.push(name.as_str().to_string());
            if !safe_name(name.as_str()) {
                return Err(unsafe_path(
                    volume_name,
                    &path,
                    "a name may not be empty, `.`, `..` or hold a separator",
                ));
            }
            if tree.nodes.contains_key(&path) {
                return Err(unsafe_path(
                    volume_name,
                    &path,
                    "a name may appear only once in a directory",
                ));
            }
            let depth = path.len();
            let node = match meta {
                webc::Metadata::Dir { .. } => {
                    budget.spend(0, depth)?;
                    pending.push(path.clone());
                    Node::Dir
                }
                webc::Metadata::File { length, .. } => {
                    budget.spend(length as u64, depth)?;
                    Node::File
                }
                webc::Metadata::Symlink { target_length, .. } => {
                    budget.spend(target_length as u64, depth)?;
                    let inner = volume_path(&path);
                    let target = catch(|| volume.read_link(inner.as_str()))
                        .ok()
                        .flatten()
                        .map(|(t, _)| t)
                        .unwrap_or_default();
                    Node::Link(target)
                }
            };
            tree.nodes.insert(path, node);
        }
    }
    Ok(tree)
}

pub(crate) fn unsafe_path(volume: &str, path: &[String], reason: &'static str) -> ContainerError {
    ContainerError::UnsafePath {
        volume: volume.to_string(),
        path: volume_path(path),
        reason,
    }
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Absolute,
    Escapes,
    Loops,
}

impl Refusal {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Refusal::Absolute => "a link may not point to an absolute path",
            Refusal::Escapes => {
                "a link may not point outside its volume (followed through the links before it)"
            }
            Refusal::Loops => "a chain of links goes round in a loop or is longer than 40 links",
        }
    }
}

/// Where following a path ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reached {
    /// At this entry (a directory, or a file at the end of the path).
    At(Vec<String>),
    /// The path names nothing (a missing entry, or a file with more path after it): the kernel
    /// stops there with an error, and so does nothing else.
    Nowhere,
}

impl Tree {
    fn node(&self, path: &[String]) -> Option<&Node> {
        match path.is_empty() {
            true => Some(&Node::Dir),
            false => self.nodes.get(path),
        }
    }

    /// Checks every link of the tree: its text must stay inside the volume read as plain text,
    /// and it must resolve, through the links before it, to somewhere inside the volume (or to
    /// nothing).
    pub(super) fn check_links(&self, volume_name: &str) -> Result<(), ContainerError> {
        for (path, node) in &self.nodes {
            let Node::Link(target) = node else { continue };
            let dir = &path[..path.len() - 1];
            let refusal = match (
                lexically_inside(dir, target),
                self.follow(dir, target, &mut 0),
            ) {
                (_, Err(refusal)) => Some(refusal),
                (false, _) => Some(Refusal::Escapes),
                (true, Ok(_)) => None,
            };
            if let Some(refusal) = refusal {
                return Err(unsafe_path(volume_name, path, refusal.reason()));
            }
        }
        Ok(())
    }

    /// Resolves `target` from the directory `dir` as the kernel would: component by component,
    /// following each link it meets (relative to the link's own directory), `..` of a link's
    /// destination rather than of its name. `hops` counts the links followed.
    pub(super) fn follow(
        &self,
        dir: &[String],
        target: &str,
        hops: &mut u32,
    ) -> Result<Reached, Refusal> {
        if target.starts_with('/') {
            return Err(Refusal::Absolute);
        }
        let parts: Vec<&str> = target
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let mut at = dir.to_vec();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if *part == ".." {
                if at.pop().is_none() {
                    return Err(Refusal::Escapes);
                }
                continue;
            }
            at.push(part.to_string());
            match self.node(&at) {
                Some(Node::Dir) => {}
                Some(Node::File) if last => {}
                None | Some(Node::File) => return Ok(Reached::Nowhere),
                Some(Node::Link(next)) => {
                    *hops += 1;
                    if *hops > MAX_HOPS {
                        return Err(Refusal::Loops);
                    }
                    let parent = at[..at.len() - 1].to_vec();
                    match self.follow(&parent, next, hops)? {
                        Reached::At(real) => at = real,
                        Reached::Nowhere => return Ok(Reached::Nowhere),
                    }
                }
            }
        }
        Ok(Reached::At(at))
    }

    /// Whether `path` (relative to the volume's root) names a directory, through links.
    pub(super) fn is_dir(&self, path: &str) -> Result<bool, Refusal> {
        Ok(match self.follow(&[], path, &mut 0)? {
            Reached::At(at) => self.node(&at) == Some(&Node::Dir),
            Reached::Nowhere => false,
        })
    }
}

/// Whether a link's text, read without following anything, stays inside the volume.
fn lexically_inside(dir: &[String], target: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, Node)]) -> Tree {
        let mut tree = Tree::default();
        for (path, node) in entries {
            let parts = path.split('/').map(str::to_string).collect();
            tree.nodes.insert(parts, node.clone());
        }
        tree
    }

    fn link(t: &str) -> Node {
        Node::Link(t.to_string())
    }

    #[test]
    fn a_chain_of_harmless_looking_links_is_refused() {
        // a -> . ; l1 -> a/.. ; l2 -> l1/.. : each text stays inside, the chain reaches `/..`.
        let t = tree(&[
            ("a", link(".")),
            ("l1", link("a/..")),
            ("l2", link("l1/..")),
        ]);
        assert_eq!(t.follow(&[], "l1", &mut 0), Err(Refusal::Escapes));
        assert!(t.check_links("v").is_err());
    }

    #[test]
    fn dotdot_applies_to_the_links_destination() {
        // d/x -> .. (the root, though its name is two deep); up -> d/x/.. leaves the volume,
        // though its text alone would stay inside.
        let t = tree(&[
            ("d", Node::Dir),
            ("d/x", link("..")),
            ("up", link("d/x/..")),
        ]);
        assert!(lexically_inside(&[], "d/x/.."));
        assert_eq!(t.follow(&[], "up", &mut 0), Err(Refusal::Escapes));
        let fine = tree(&[
            ("d", Node::Dir),
            ("x", Node::Dir),
            ("x/y", Node::Dir),
            ("d/deep", link("../x/y")),
            ("back", link("d/deep/..")),
        ]);
        fine.check_links("v").unwrap();
        assert_eq!(
            fine.follow(&[], "back", &mut 0),
            Ok(Reached::At(vec!["x".to_string()]))
        );
    }

    #[test]
    fn loops_absolute_links_and_missing_targets() {
        let t = tree(&[("a", link("b")), ("b", link("a"))]);
        assert_eq!(t.follow(&[], "a", &mut 0), Err(Refusal::Loops));
        let t = tree(&[("etc", link("/etc"))]);
        assert!(t.check_links("v").is_err());
        // A link to nothing resolves to nothing, as long as its text stays inside.
        let t = tree(&[("gone", link("missing/file"))]);
        t.check_links("v").unwrap();
        let t = tree(&[("gone", link("missing/../../x"))]);
        assert!(t.check_links("v").is_err());
    }

    #[test]
    fn limits_grow_with_the_file() {
        let small = UnpackLimits::for_size(1000, 8);
        assert_eq!(small.max_bytes, (64 << 20) + 8000);
        let big = UnpackLimits::for_size(1 << 30, 8);
        assert_eq!(big.max_bytes, (64 << 20) + (8 << 30));
        let mut budget = Budget::new(UnpackLimits {
            max_entries: 2,
            max_bytes: 10,
        });
        budget.spend(4, 1).unwrap();
        assert!(budget.spend(7, 1).is_err());
        let mut deep = Budget::new(UnpackLimits {
            max_entries: 10,
            max_bytes: 1 << 20,
        });
        deep.spend(0, 256).unwrap();
        assert!(
            deep.spend(0, 256).is_err(),
            "more than 32 path components an entry, on average"
        );
    }
}
