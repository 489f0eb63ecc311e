//! Edits of the user (or system) config file, shared by `config set/unset` and the `rollout`
//! commands: the file is chosen from the flags, and an edit is written only if the settings
//! still load with it.

use std::path::{Path, PathBuf};

use super::args::GlobalArgs;
use super::context::{config_files, sources};
use super::failure::Failure;
use crate::settings::{Edit, EditError, Readers, Settings, Sources, edit_file, env};

/// Which config file an edit goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    User,
    /// The fleet-wide file.
    System,
}

impl Target {
    pub(super) fn from_flag(system: bool) -> Target {
        if system { Target::System } else { Target::User }
    }

    /// Who may read the file: every user reads the system file.
    fn readers(self) -> Readers {
        match self {
            Target::User => Readers::Owner,
            Target::System => Readers::Everyone,
        }
    }
}

/// The file an edit goes to.
pub(super) fn target_file(global: &GlobalArgs, target: Target) -> Result<PathBuf, Failure> {
    let (system_file, user_file) = config_files(global);
    match target {
        Target::System => Ok(system_file),
        Target::User => user_file.ok_or_else(|| {
            Failure::usage("cannot tell where the user config file lives")
                .hint(format!("pass --config FILE or set {}", env::CONFIG))
        }),
    }
}

/// Applies edits to the target's file, checking that the settings still load with the result.
/// Returns the file.
pub(super) fn apply(
    global: &GlobalArgs,
    target: Target,
    edits: &[Edit],
) -> Result<PathBuf, Failure> {
    let file = target_file(global, target)?;
    let base = sources(global, Vec::new());
    let check = |candidate: &Path| {
        let candidate = Some(candidate.to_path_buf());
        let sources = match target {
            Target::System => Sources {
                system_file: candidate,
                ..base.clone()
            },
            Target::User => Sources {
                user_file: candidate,
                ..base.clone()
            },
        };
        Settings::load(&sources).map(drop)
    };
    edit_file(&file, edits, target.readers(), &check).map_err(|e| match e {
        EditError::Invalid(e) => Failure::from(e),
        other => Failure::usage(other.to_string()),
    })?;
    Ok(file)
}
