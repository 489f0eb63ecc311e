//! The paths a manifest names, checked when a package enters the store: each `fs` mapping's
//! mount path (where the program sees it), volume and path inside that volume (`host_path`, which
//! must name a directory of the package's own volume, found through its links without leaving
//! it), and the directories that command annotations name (`wasi.cwd`,
//! `wasi.mount-atom-in-volume`). A refusal names the field and its value.

use webc::metadata::Manifest;

use super::base::ContainerError;
use super::tree::Tree;

fn refuse(field: String, value: &str, reason: &'static str) -> ContainerError {
    ContainerError::UnsafeField {
        field,
        value: value.to_string(),
        reason,
    }
}

/// Whether a path is one the program may be shown: no `..`, no NUL, no backslash.
fn plain(path: &str) -> bool {
    !path.contains(['\0', '\\']) && !path.split('/').any(|part| part == "..")
}

/// Checks the `fs` mappings and the command annotations against the package's volumes.
pub(crate) fn check(
    manifest: &Manifest,
    volumes: &[(String, webc::Volume, Tree)],
) -> Result<(), ContainerError> {
    let mappings = match manifest.filesystem() {
        Ok(Some(fs)) => fs.0,
        _ => Vec::new(),
    };
    for (i, mapping) in mappings.iter().enumerate() {
        let field = |name: &str| format!("package.fs[{i}].{name}");
        let mount = &mapping.mount_path;
        if !mount.starts_with('/') || !plain(mount) || mount.split('/').any(|s| s == ".") {
            return Err(refuse(
                field("mount_path"),
                mount,
                "a mount path must be absolute, with no `.` or `..`",
            ));
        }
        if !plain(&mapping.volume_name) {
            return Err(refuse(
                field("volume_name"),
                &mapping.volume_name,
                "a volume name may not hold `..`, NUL or `\\`",
            ));
        }
        let Some(host) = &mapping.host_path else {
            continue;
        };
        if !plain(host) {
            return Err(refuse(
                field("host_path"),
                host,
                "a path inside a volume may not hold `..`, NUL or `\\`",
            ));
        }
        // A dependency's volume is checked when that package enters the store.
        if mapping.from.is_some() {
            continue;
        }
        let tree = volumes
            .iter()
            .find(|(name, _, _)| *name == mapping.volume_name)
            .map(|(_, _, tree)| tree);
        let Some(tree) = tree else {
            return Err(refuse(
                field("volume_name"),
                &mapping.volume_name,
                "the package holds no volume of that name",
            ));
        };
        let inside = host.trim_start_matches('/');
        match tree.is_dir(if inside.is_empty() { "." } else { inside }) {
            Ok(true) => {}
            Ok(false) => {
                return Err(refuse(
                    field("host_path"),
                    host,
                    "it names no directory of its volume",
                ));
            }
            Err(refusal) => return Err(refuse(field("host_path"), host, refusal.reason())),
        }
    }
    check_annotations(manifest)
}

/// The directories a command's `wasi` annotation names are paths the program sees: absolute or
/// relative, never with `..`.
fn check_annotations(manifest: &Manifest) -> Result<(), ContainerError> {
    for (name, command) in &manifest.commands {
        let Ok(Some(wasi)) = command.wasi() else {
            continue;
        };
        let field = |key: &str| format!("commands.{name}.annotations.wasi.{key}");
        if let Some(cwd) = &wasi.cwd {
            let text = cwd.to_string_lossy();
            if !plain(&text) {
                return Err(refuse(
                    field("cwd"),
                    &text,
                    "a working directory may not hold `..`, NUL or `\\`",
                ));
            }
        }
        if let Some(path) = &wasi.mount_atom_in_volume
            && !plain(path)
        {
            return Err(refuse(
                field("mount-atom-in-volume"),
                path,
                "a path inside a volume may not hold `..`, NUL or `\\`",
            ));
        }
    }
    Ok(())
}
