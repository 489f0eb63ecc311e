//! `webcpm demo`: the whole story on a built-in local registry.

use std::path::PathBuf;

use crate::cli::failure::{ExitStatus, Failure};

pub async fn demo(home: Option<PathBuf>) -> Result<ExitStatus, Failure> {
    crate::demo::run(home)
        .await
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(ExitStatus::Success)
}
