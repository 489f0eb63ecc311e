//! Editing a config file in place: `config set/unset`, `rollout set/pin/unpin/rollback/resume`.
//!
//! The file is edited with toml_edit, so its comments and layout survive. The new text is
//! written to a temporary file beside it, checked by loading the settings with it, and only then
//! renamed over the old file: a bad value never reaches the file, and a crash leaves the old one.
//! The new file's mode says who may read it ([`Readers`]): a user's file is the user's alone, and
//! the system file is read by every user's webcpm.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use super::SettingsError;
use crate::package::{PackageName, WebcVersion};

/// One change to a config file.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Set a dotted key (`rollout.v3_percent`) to a value.
    Set(String, toml::Value),
    /// Remove a dotted key.
    Unset(String),
    Pin(PackageName, WebcVersion),
    Unpin(PackageName),
}

/// Who may read a config file once it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Its owner alone (0600): a user's file, which may hold a token.
    Owner,
    /// Everyone (0644): the system file, which every user's webcpm reads.
    Everyone,
}

impl Readers {
    pub fn mode(self) -> u32 {
        match self {
            Readers::Owner => 0o600,
            Readers::Everyone => 0o644,
        }
    }
}

/// Why a config file could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot edit config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("`{key}` is set to a value that is not a table in {path}")]
    NotATable { path: PathBuf, key: String },
    #[error(transparent)]
    Invalid(#[from] SettingsError),
}

fn table_for<'a>(
    doc: &'a mut DocumentMut,
    path: &Path,
    parents: &[&str],
) -> Result<&'a mut Table, EditError> {
    let mut table = doc.as_table_mut();
    for part in parents {
        let item = table
            .entry(part)
            .or_insert_with(|| Item::Table(Table::new()));
        table = item.as_table_mut().ok_or_else(|| EditError::NotATable {
            path: path.to_path_buf(),
            key: part.to_string(),
        })?;
    }
    Ok(table)
}

fn to_edit_value(value: &toml::Value) -> toml_edit::Value {
    // toml's Display writes a TOML value that toml_edit reads back.
    value
        .to_string()
        .parse::<toml_edit::Value>()
        .unwrap_or_else(|_| toml_edit::Value::from(value.to_string()))
}

fn apply(doc: &mut DocumentMut, path: &Path, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::Set(key, value) => {
            let parts: Vec<&str> = key.split('.').collect();
            let (last, parents) = parts.split_last().expect("keys are not empty");
            let table = table_for(doc, path, parents)?;
            match table.get_mut(last).and_then(Item::as_value_mut) {
                // Keep the comment that decorates an existing value.
                Some(existing) => {
                    let decor = existing.decor().clone();
                    *existing = to_edit_value(value);
                    *existing.decor_mut() = decor;
                }
                None => {
                    table.insert(last, Item::Value(to_edit_value(value)));
                }
            }
        }
        Edit::Unset(key) => {
            let parts: Vec<&str> = key.split('.').collect();
            let (last, parents) = parts.split_last().expect("keys are not empty");
            let mut table = doc.as_table_mut();
            for part in parents {
                match table.get_mut(part).and_then(Item::as_table_mut) {
                    Some(t) => table = t,
                    None => return Ok(()),
                }
            }
            table.remove(last);
        }
        Edit::Pin(name, webc) => {
            let packages = table_for(doc, path, &["packages"])?;
            packages.set_implicit(true);
            let entry = packages
                .entry(name.as_str())
                .or_insert_with(|| Item::Table(Table::new()));
            let table = entry.as_table_mut().ok_or_else(|| EditError::NotATable {
                path: path.to_path_buf(),
                key: format!("packages.\"{name}\""),
            })?;
            table.insert("webc", toml_edit::value(webc.as_str()));
        }
        Edit::Unpin(name) => {
            if let Some(packages) = doc.get_mut("packages").and_then(Item::as_table_mut) {
                packages.remove(name.as_str());
            }
        }
    }
    Ok(())
}

/// Applies `edits` to the file at `path` (created when missing), checking the result with
/// `check` (given the path of the new text) before it replaces the file, which `readers` may
/// then read.
pub fn edit_file(
    path: &Path,
    edits: &[Edit],
    readers: Readers,
    check: &dyn Fn(&Path) -> Result<(), SettingsError>,
) -> Result<(), EditError> {
    let io = |source| EditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| EditError::Parse {
                path: path.to_path_buf(),
                reason: e.message().to_string(),
            })?;
    for edit in edits {
        apply(&mut doc, path, edit)?;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".config-")
        .suffix(".toml")
        .tempfile_in(&dir)
        .map_err(io)?;
    temp.write_all(doc.to_string().as_bytes()).map_err(io)?;
    // tempfile creates files readable by their owner only; the mode is set whatever the umask.
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(readers.mode()))
        .map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    check(temp.path())?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_survive_and_pins_are_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "# fleet settings\n[rollout]\n# staged\nv3_percent = 10 # ten percent\n",
        )
        .unwrap();
        let name: PackageName = "ns/app".parse().unwrap();
        edit_file(
            &path,
            &[
                Edit::Set("rollout.v3_percent".into(), toml::Value::Integer(30)),
                Edit::Pin(name.clone(), WebcVersion::V2),
                Edit::Set("rollout.rolled_back".into(), toml::Value::Boolean(true)),
            ],
            Readers::Owner,
            &|_| Ok(()),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# fleet settings"), "{text}");
        assert!(text.contains("# staged"), "{text}");
        assert!(text.contains("v3_percent = 30"), "{text}");
        assert!(text.contains("[packages.\"ns/app\"]"), "{text}");
        edit_file(
            &path,
            &[Edit::Unpin(name), Edit::Unset("rollout.rolled_back".into())],
            Readers::Everyone,
            &|_| Ok(()),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("ns/app") && !text.contains("rolled_back"),
            "{text}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_refused_edit_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[rollout]\nv3_percent = 10\n").unwrap();
        let err = edit_file(
            &path,
            &[Edit::Set(
                "rollout.v3_percent".into(),
                toml::Value::Integer(300),
            )],
            Readers::Owner,
            &|_| Err(SettingsError::UnknownKey("rollout.v3_percent".into())),
        )
        .unwrap_err();
        assert!(matches!(err, EditError::Invalid(_)));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[rollout]\nv3_percent = 10\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
