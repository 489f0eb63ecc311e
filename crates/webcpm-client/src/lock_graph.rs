//! A lockfile as a graph, for `webcpm tree` and `webcpm why`: each root request, the locked
//! package that answers it, and each package's dependencies (those of both formats, which
//! declare the same ones), each to the locked package of that name.

use std::collections::{BTreeMap, BTreeSet};

use crate::lockfile::Lockfile;
use crate::package::{PackageSpec, VersionRequest};

/// The most paths `why` lists: a lockfile built to have exponentially many ends there.
pub const MAX_PATHS: usize = 100;

/// One locked package version, and what it depends on (`ns/name@version` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    name: String,
    version: String,
    dependencies: Vec<String>,
}

/// The locked package versions by `ns/name@version`, and the roots.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    roots: Vec<String>,
}

/// One line of `tree`: how deep, the package, and whether it was shown above already.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeLine {
    pub depth: usize,
    pub package: String,
    pub version: String,
    /// Its dependencies are listed where it first appears.
    pub repeated: bool,
}

pub fn key(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

impl Graph {
    /// The graph of a lockfile. A dependency is the locked version of its name that its request
    /// matches (the highest, when several do), as an install from the lockfile takes it.
    pub fn of(lock: &Lockfile) -> Graph {
        let versions = |name: &str, request: &VersionRequest| {
            lock.packages
                .iter()
                .filter(|p| p.name == name)
                .filter_map(|p| Some((semver::Version::parse(&p.version).ok()?, p)))
                .filter(|(v, _)| request.matches(v))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, p)| key(&p.name, &p.version))
        };
        let mut nodes = BTreeMap::new();
        for p in &lock.packages {
            let mut dependencies: Vec<String> = [&p.v2, &p.v3]
                .into_iter()
                .flatten()
                .flat_map(|d| &d.dependencies)
                .filter_map(|d| d.request.parse::<PackageSpec>().ok())
                .filter_map(|spec| versions(spec.name.as_str(), &spec.version))
                .collect();
            dependencies.sort();
            dependencies.dedup();
            let node = Node {
                name: p.name.clone(),
                version: p.version.clone(),
                dependencies,
            };
            nodes.insert(key(&p.name, &p.version), node);
        }
        let roots = lock
            .roots
            .iter()
            .map(|r| key(&r.package, &r.version))
            .collect();
        Graph { nodes, roots }
    }

    /// The roots, as `ns/name@version` keys.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// What the locked `ns/name@version` depends on, as keys; empty for one not locked.
    pub fn dependencies(&self, key: &str) -> &[String] {
        self.nodes
            .get(key)
            .map_or(&[][..], |n| n.dependencies.as_slice())
    }

    /// Every root and, under it, its dependencies, depth first; a package met again is marked
    /// and not expanded again (and a cycle ends there).
    pub fn tree(&self) -> Vec<TreeLine> {
        let mut lines = Vec::new();
        let mut shown = Vec::new();
        for root in &self.roots {
            self.walk(root, 0, &mut shown, &mut lines);
        }
        lines
    }

    fn walk(&self, at: &str, depth: usize, shown: &mut Vec<String>, lines: &mut Vec<TreeLine>) {
        let Some(node) = self.nodes.get(at) else {
            return;
        };
        let repeated = shown.iter().any(|s| s == at);
        lines.push(TreeLine {
            depth,
            package: node.name.clone(),
            version: node.version.clone(),
            repeated,
        });
        if repeated {
            return;
        }
        shown.push(at.to_string());
        for dependency in &node.dependencies {
            self.walk(dependency, depth + 1, shown, lines);
        }
    }

    /// Paths from a root to any version of `name`, as `ns/name@version` steps, root first (at
    /// most [`MAX_PATHS`]); none when nothing locked is, or depends on, it.
    pub fn why(&self, name: &str) -> Vec<Vec<String>> {
        let reaching = self.reaching(name);
        let mut paths = Vec::new();
        for root in &self.roots {
            let mut path = Vec::new();
            self.paths_to(root, name, &reaching, &mut path, &mut paths);
        }
        paths
    }

    /// The nodes from which some version of `name` can be reached: only they are walked, so
    /// that every step of `why`'s search leads to a path.
    fn reaching(&self, name: &str) -> BTreeSet<&str> {
        let mut set: BTreeSet<&str> = BTreeSet::new();
        loop {
            let before = set.len();
            for (at, node) in &self.nodes {
                if node.name == name || node.dependencies.iter().any(|d| set.contains(d.as_str())) {
                    set.insert(at.as_str());
                }
            }
            if set.len() == before {
                return set;
            }
        }
    }

    fn paths_to(
        &self,
        at: &str,
        target: &str,
        reaching: &BTreeSet<&str>,
        path: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        let Some(node) = self.nodes.get(at) else {
            return;
        };
        if out.len() >= MAX_PATHS || !reaching.contains(at) || path.iter().any(|p| p == at) {
            return;
        }
        path.push(at.to_string());
        if node.name == target {
            out.push(path.clone());
        } else {
            for dependency in &node.dependencies {
                self.paths_to(dependency, target, reaching, path, out);
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])], roots: &[&str]) -> Graph {
        let at = |name: &str| key(name, "1.0.0");
        let nodes = edges
            .iter()
            .map(|(name, deps)| {
                let node = Node {
                    name: name.to_string(),
                    version: "1.0.0".into(),
                    dependencies: deps.iter().map(|d| at(d)).collect(),
                };
                (at(name), node)
            })
            .collect();
        Graph {
            nodes,
            roots: roots.iter().map(|r| at(r)).collect(),
        }
    }

    #[test]
    fn trees_mark_repeats_and_why_finds_every_path_without_looping() {
        let g = graph(
            &[
                ("a/app", &["a/lib", "a/log"]),
                ("a/lib", &["a/log"]),
                ("a/log", &["a/app"]),
            ],
            &["a/app"],
        );
        let lines = g.tree();
        let tree: Vec<(usize, &str, bool)> = lines
            .iter()
            .map(|l| (l.depth, l.package.as_str(), l.repeated))
            .collect();
        assert_eq!(
            tree,
            [
                (0, "a/app", false),
                (1, "a/lib", false),
                (2, "a/log", false),
                (3, "a/app", true),
                (1, "a/log", true),
            ]
        );
        let why = g.why("a/log");
        assert_eq!(
            why,
            [
                vec!["a/app@1.0.0", "a/lib@1.0.0", "a/log@1.0.0"],
                vec!["a/app@1.0.0", "a/log@1.0.0"],
            ]
        );
        assert!(g.why("a/none").is_empty());
    }

    #[test]
    fn why_stops_at_a_bound_on_a_graph_with_exponentially_many_paths() {
        // 30 layers of two packages, each depending on both of the next layer: 2^30 paths.
        let names: Vec<Vec<String>> = (0..30)
            .map(|i| vec![format!("l/a{i}"), format!("l/b{i}")])
            .collect();
        let mut edges: Vec<(&str, Vec<&str>)> = Vec::new();
        for i in 0..30 {
            let next: Vec<&str> = names
                .get(i + 1)
                .map(|n| n.iter().map(String::as_str).collect())
                .unwrap_or_default();
            for name in &names[i] {
                edges.push((name.as_str(), next.clone()));
            }
        }
        let edges: Vec<(&str, &[&str])> = edges.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        let g = graph(&edges, &["l/a0"]);
        assert_eq!(g.why("l/a29").len(), MAX_PATHS);
        assert!(
            g.why("l/none").is_empty(),
            "an unreachable name is not searched for"
        );
    }
}
