//! `webcpm demo`: the whole story on a built-in local registry (`webcpm-registry`, started by
//! the demo).

use std::path::PathBuf;

use crate::cli::failure::{ExitStatus, Failure};
use crate::cli::registry_bin;

pub(crate) async fn demo(home: Option<PathBuf>) -> Result<ExitStatus, Failure> {
    let registry = registry_bin::locate()?;
    crate::demo::run(home, registry)
        .await
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(ExitStatus::Success)
}
