//! webcpm's names, digests and file formats, the layer every other crate stands on:
//!
//! | module | job |
//! |---|---|
//! | [`package`] | package names, version requests, digests, WebC versions, ABIs, the registry's answers as types |
//! | [`container`] | WebC containers: parsed through the `webc` crate and checked whole as they enter a store (paths, links, unpack limits), converted between versions, unpacked read-only |
//! | [`package_dir`] | a package directory (`wasmer.toml` or `wapm.toml`) checked and built into WebC v3 |
//! | [`error_text`] | errors as one line, with their causes |
//!
//! Nothing here touches the network or a store.

pub mod container;
pub mod error_text;
pub mod package;
pub mod package_dir;
#[cfg(feature = "sql")]
pub mod sql;
