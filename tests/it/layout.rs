//! The shape of the code: data flows one way between the files of `src/`. Every path a file
//! names (`crate::a::b`, `super::c`, `child::d`) is an edge to the file that defines it; the
//! graph of those edges must have no cycle. A module's `pub use child::Item` is naming, not
//! use: it adds no edge, and a path through it leads to the child's file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module path of each `.rs` file under `src/` (`store/index.rs` → `["store", "index"]`).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// `(module, item) -> child module` for every `pub use child::{Item, ..};` of every module.
type Reexports = BTreeMap<(Vec<String>, String), Vec<String>>;

/// The `pub use child::...;` statements of a file, whole.
fn reexport_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("pub use ") {
        let tail = &rest[at + "pub use ".len()..];
        let end = tail.find(';').unwrap_or(tail.len());
        out.push(tail[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        rest = &tail[end..];
    }
    out
}

fn reexports(modules: &BTreeMap<Vec<String>, PathBuf>) -> Reexports {
    let mut out = Reexports::new();
    for (me, file) in modules {
        let text = std::fs::read_to_string(file).unwrap();
        for statement in reexport_statements(&text) {
            let Some((child, items)) = statement.split_once("::") else {
                continue;
            };
            let child_path: Vec<String> = me.iter().cloned().chain([child.to_string()]).collect();
            if !modules.contains_key(&child_path) {
                continue;
            }
            for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
                let name = item.rsplit(" as ").next().unwrap_or(item).trim();
                if !name.is_empty() {
                    out.insert((me.clone(), name.to_string()), child_path.clone());
                }
            }
        }
    }
    out
}

/// The file that defines what `path` names: the longest prefix that is a module with a file,
/// followed through that module's re-exports.
fn resolve<'a>(
    modules: &'a BTreeMap<Vec<String>, PathBuf>,
    reexports: &Reexports,
    path: &[String],
) -> Option<&'a PathBuf> {
    let n = (1..=path.len())
        .rev()
        .find(|n| modules.contains_key(&path[..*n]))?;
    if let Some(item) = path.get(n)
        && let Some(child) = reexports.get(&(path[..n].to_vec(), item.clone()))
    {
        let rest: Vec<String> = child.iter().chain(&path[n..]).cloned().collect();
        return resolve(modules, reexports, &rest);
    }
    modules.get(&path[..n])
}

/// The paths a file names, made absolute: `crate::x::y`, `super::x`, `self::x`, and the
/// children it declares with `mod` and then names (`pub use child::Item`).
fn named_paths(text: &str, me: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    // A `mod.rs` is its module; a leaf file's `super` is its parent.
    let here: Vec<String> = me.to_vec();
    let parent: Vec<String> = if is_mod_file || me.is_empty() {
        me.iter()
            .take(me.len().saturating_sub(1))
            .cloned()
            .collect()
    } else {
        me[..me.len() - 1].to_vec()
    };
    let children: BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let l = l
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            l.strip_prefix("mod ")
                .map(|rest| rest.trim_end_matches(';').trim().to_string())
        })
        .collect();
    let mut out = Vec::new();
    // A file's own tests (`mod tests { use super::*; }`) name the file itself.
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    // Re-exports name, they do not use.
    while let Some(at) = code.find("pub use ") {
        let end = code[at..].find(';').map_or(code.len(), |e| at + e + 1);
        code.replace_range(at..end, "");
    }
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains("::"))
        .collect();
    for word in words {
        let parts: Vec<String> = word
            .split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let Some(first) = parts.first() else { continue };
        let absolute = match first.as_str() {
            "crate" => parts[1..].to_vec(),
            "super" => parent
                .iter()
                .cloned()
                .chain(parts[1..].iter().cloned())
                .collect(),
            "self" => here
                .iter()
                .cloned()
                .chain(parts[1..].iter().cloned())
                .collect(),
            child if children.contains(child) => {
                here.iter().cloned().chain(parts.iter().cloned()).collect()
            }
            _ => continue,
        };
        out.push(absolute);
    }
    out
}

#[test]
fn no_file_in_src_depends_on_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let reexports = reexports(&modules);
    let mut edges: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = BTreeMap::new();
    for (me, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        for path in named_paths(&text, me, is_mod_file) {
            if let Some(target) = resolve(&modules, &reexports, &path)
                && target != file
            {
                edges.entry(file).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit<'a>(
        node: &'a PathBuf,
        edges: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>,
        stack: &mut Vec<&'a PathBuf>,
        done: &mut BTreeSet<&'a PathBuf>,
    ) -> Option<Vec<&'a PathBuf>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for file in modules.values() {
        if let Some(cycle) = visit(file, &edges, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle
                .iter()
                .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
                .collect();
            panic!("a cycle between files: {}", names.join(" -> "));
        }
    }
    assert!(
        edges.len() > 20,
        "the scan found the crate's files and their edges"
    );
}

/// Functions of `src/` (tests aside) longer than 80 lines, as `(file, name, lines, explained)`:
/// `explained` when the comment above the function says why it is long.
fn long_functions(src: &Path) -> Vec<(String, String, usize, bool)> {
    let mut out = Vec::new();
    for file in modules(src).values() {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or(&text);
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            // A declaration without a body (a trait's) is not a function to measure.
            let Some(name) = fn_name(trimmed).filter(|_| !trimmed.trim_end().ends_with(';')) else {
                i += 1;
                continue;
            };
            let end = (i..lines.len())
                .find(|&j| lines[j].trim_end() == format!("{indent}}}"))
                .unwrap_or(i);
            let length = end - i + 1;
            if length > 80 {
                let above = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| {
                        let t = l.trim_start();
                        t.starts_with("//") || t.starts_with("#[")
                    })
                    .any(|l| l.contains("long"));
                let rel = file.strip_prefix(src).unwrap().display().to_string();
                out.push((rel, name.to_string(), length, above));
            }
            i = end + 1;
        }
    }
    out
}

/// The name of the function a line declares, if it declares one.
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "unsafe ",
        "const ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
}

#[test]
fn at_most_three_long_functions_each_saying_why() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long = long_functions(&src);
    assert!(
        long.len() <= 3,
        "more than three functions over 80 lines: {long:?}"
    );
    for (file, name, length, explained) in &long {
        assert!(
            explained,
            "{file}: `{name}` has {length} lines and no comment above it says why it is long"
        );
    }
}
