//! webcpm's names, digests and file formats, the layer every other crate stands on:
//!
//! | module | job |
//! |---|---|
//! | [`package`] | package names, version requests, digests, WebC versions, ABIs, the registry's answers as types |
//! | [`abi`] | which system interface a module needs, and which of its imports reach the network, read from its imports |
//! | [`container`] | WebC containers: parsed through the `webc` crate and checked whole as they enter a store (paths, links, unpack limits), converted between versions, unpacked read-only |
//! | [`package_dir`] | a package directory (`wasmer.toml` or `wapm.toml`) checked and built into WebC v3 |
//! | [`error_text`] | errors as one line, with their causes |
//! | [`policy`] | the WebC format priority, fallback, the rollout's rules and the reasons for each choice |
//! | [`policy_document`] | the registry's rollout policy as a signed document (ed25519), and its keys |
//! | [`report`] | the outcome reports a client posts and the registry takes |
//!
//! Nothing here touches the network or a store.

pub mod abi;
pub mod container;
pub mod error_text;
pub mod package;
pub mod package_dir;
pub mod policy;
pub mod policy_document;
pub mod report;
#[cfg(feature = "sql")]
pub mod sql;
