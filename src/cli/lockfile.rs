//! The lockfile on disk: read and checked for `install --locked` and `lock --locked`, written
//! whole (a temporary file beside it, then a rename) by `lock`.

use std::io::Write;
use std::path::Path;

use super::args::GlobalArgs;
use super::context::Context;
use super::failure::{Failure, FailureKind};
use crate::lockfile::Lockfile;
use crate::settings::keys;

/// Reads and checks a lockfile.
pub(super) fn read_lockfile(path: &Path) -> Result<Lockfile, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!("cannot read the lockfile {}: {e}", path.display()))
            .hint("write one with `webcpm lock ns/name...`")
    })?;
    Lockfile::parse(&text).map_err(|e| {
        Failure::new(FailureKind::Integrity, format!("{}: {e}", path.display()))
            .hint("write it again with `webcpm lock`")
    })
}

/// Writes the lockfile whole (see [`write_whole`]).
pub(super) fn write_lockfile(path: &Path, text: &str) -> Result<(), Failure> {
    write_whole(path, text, "the lockfile")
}

/// Writes `text` to `path` (`what` names it in errors) so that a reader sees the old file or
/// the new one, never a part.
pub(super) fn write_whole(path: &Path, text: &str, what: &str) -> Result<(), Failure> {
    let failed = |e: std::io::Error| {
        Failure::usage(format!("cannot write {what} {}: {e}", path.display()))
            .hint("check that its directory exists and is writable")
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    temp.write_all(text.as_bytes()).map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    temp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// The context of a command that reads a lockfile: the lockfile's registry is asked, unless
/// `--registry` names another.
pub(super) fn lockfile_context(global: &GlobalArgs, lock: &Lockfile) -> Result<Context, Failure> {
    let registry = (
        keys::REGISTRY_URL.into(),
        toml::Value::String(lock.registry.clone()),
        keys::LOCKED_REGISTRY.into(),
    );
    Context::new(global, vec![registry], None)
}
