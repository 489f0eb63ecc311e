//! The registry's web page.

use std::path::PathBuf;

use axum::Router;

/// The page's routes.
pub fn routes(_root: PathBuf) -> Router {
    Router::new()
}
