//! The shape of the code. The direction of the data flow is the compiler's to keep: each layer
//! is a crate of its own (see the workspace's `Cargo.toml`). What it cannot see is checked here:
//! functions stay short, and the client's binary links none of the registry server's crates.

use std::path::{Path, PathBuf};

/// The client binary is built without the server's crates: none of their code is in it.
#[test]
fn the_client_binary_links_no_server_crate() {
    let client = env!("CARGO_BIN_EXE_webcpm");
    let registry = env!("CARGO_BIN_EXE_webcpm-registry");
    // Symbols and panic locations name their crate; grep reads the binaries fast.
    let contains = |file: &str, needle: &str| {
        std::process::Command::new("grep")
            .args(["-q", "-a", "-F", needle, file])
            .status()
            .unwrap()
            .success()
    };
    for krate in [
        "async_graphql",
        "axum",
        "postgres",
        "maud",
        "webcpm_registry",
    ] {
        assert!(
            contains(registry, krate),
            "the check is blind: `{krate}` is not in the registry binary either"
        );
        assert!(
            !contains(client, krate),
            "the client binary links `{krate}`"
        );
    }
}

/// Functions of `src/` (tests aside) longer than 80 lines, as `(file, name, lines, explained)`:
/// `explained` when the comment above the function says why it is long.
fn long_functions(src: &Path) -> Vec<(String, String, usize, bool)> {
    let mut out = Vec::new();
    for file in rs_files(src) {
        let text = std::fs::read_to_string(&file).unwrap();
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

/// The `.rs` files under `src`.
fn rs_files(src: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The source directories of the workspace: the command line's `src/` and each crate's.
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(entry.unwrap().path().join("src"));
    }
    dirs.sort();
    dirs
}

#[test]
fn at_most_three_long_functions_each_saying_why() {
    let long: Vec<_> = sources()
        .iter()
        .flat_map(|src| long_functions(src))
        .collect();
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
