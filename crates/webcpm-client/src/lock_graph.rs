//! A lockfile as a graph, for `webcpm tree` and `webcpm why`: each root request, the locked
//! package that answers it, and each package's dependencies (those of both formats, which
//! declare the same ones), each to the locked package of that name.

use std::collections::BTreeMap;

use crate::lockfile::Lockfile;
use crate::package::PackageSpec;

/// One locked package: `ns/name@version`, and the names of what it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    version: String,
    dependencies: Vec<String>,
}

/// The locked packages by name, and the roots.
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

impl Graph {
    pub fn of(lock: &Lockfile) -> Graph {
        let mut nodes = BTreeMap::new();
        for p in &lock.packages {
            let mut dependencies: Vec<String> = [&p.v2, &p.v3]
                .into_iter()
                .flatten()
                .flat_map(|d| &d.dependencies)
                .filter_map(|d| d.request.parse::<PackageSpec>().ok())
                .map(|spec| spec.name.to_string())
                .collect();
            dependencies.sort();
            dependencies.dedup();
            let node = Node {
                version: p.version.clone(),
                dependencies,
            };
            nodes.insert(p.name.clone(), node);
        }
        let roots = lock.roots.iter().map(|r| r.package.clone()).collect();
        Graph { nodes, roots }
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

    fn walk(&self, name: &str, depth: usize, shown: &mut Vec<String>, lines: &mut Vec<TreeLine>) {
        let Some(node) = self.nodes.get(name) else {
            return;
        };
        let repeated = shown.iter().any(|s| s == name);
        lines.push(TreeLine {
            depth,
            package: name.to_string(),
            version: node.version.clone(),
            repeated,
        });
        if repeated {
            return;
        }
        shown.push(name.to_string());
        for dependency in &node.dependencies {
            self.walk(dependency, depth + 1, shown, lines);
        }
    }

    /// Every path from a root to `name`, as `ns/name@version` steps, root first; none when
    /// nothing locked depends on it.
    pub fn why(&self, name: &str) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        for root in &self.roots {
            let mut path = Vec::new();
            self.paths_to(root, name, &mut path, &mut paths);
        }
        paths
    }

    fn paths_to(&self, at: &str, target: &str, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some(node) = self.nodes.get(at) else {
            return;
        };
        let step = format!("{at}@{}", node.version);
        if path.contains(&step) {
            return;
        }
        path.push(step);
        if at == target {
            out.push(path.clone());
        } else {
            for dependency in &node.dependencies {
                self.paths_to(dependency, target, path, out);
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])], roots: &[&str]) -> Graph {
        let nodes = edges
            .iter()
            .map(|(name, deps)| {
                let node = Node {
                    version: "1.0.0".into(),
                    dependencies: deps.iter().map(|d| d.to_string()).collect(),
                };
                (name.to_string(), node)
            })
            .collect();
        Graph {
            nodes,
            roots: roots.iter().map(|r| r.to_string()).collect(),
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
}
