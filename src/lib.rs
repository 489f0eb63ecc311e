//! webcpm: a package manager and registry client for WebAssembly packages in the WebC format.
//!
//! The parts, in the order data flows through them (nothing flows back):
//!
//! | module | job |
//! |---|---|
//! | [`settings`] | the effective configuration, with the layer each value came from |
//! | [`resolver`] | picks versions for a whole dependency tree, without any IO |
//! | [`policy`] | the WebC format priority, fallback and the reasons for each choice |
//! | [`fleet`] | the registry's signed rollout policy (fetched, verified, kept) and outcome reports |
//! | [`registry`] | the GraphQL client: one query, answers turned into [`package`] types |
//! | [`fetch`] | streaming downloads, verified by SHA-256 and size while they arrive |
//! | [`store`] | the content-addressed store on disk and its SQLite index |
//! | [`install`] | drives the parts above for `install`, `resolve`, `uninstall` |
//! | [`lockfile`] | `webcpm.lock`: resolved trees with both formats, read and written as TOML |
//! | [`rollout`] | re-points installs when the format policy changes (rollback, resume) |
//! | [`artifacts`] | at install: unpacks volumes and compiles every atom into the store |
//! | [`capabilities`] | what a package's commands ask of the host (network, commands, mounts) and what of it the user has not granted |
//! | [`runtime`] | the engines behind one `Backend` trait, chosen per atom by its ABI: wasmtime (WASI preview 0 and 1), Wasmer (WASIX, feature `wasix`); precompiles, memory-maps artifacts, runs commands |
//! | [`local`] | `run` of a local `.webc`, `.wasm`, package directory or URL: into the store as a blob |
//! | [`run`] | `run`: from an installed package to a ready module and its WASI setup |
//! | [`demo`] | `webcpm demo`: the whole story on a built-in local registry |
//! | [`server`] | the local registry (`registry add`, `registry serve`), sharing only the schema |
//! | `cli` | the shell around it all: arguments → context → one file per command → exit code |
//!
//! The lowest layers are crates of their own under `crates/`, so that the compiler keeps them
//! below everything else, and are re-exported here under their module names:
//! `webcpm-formats` ([`package`], [`container`], [`package_dir`], [`error_text`]: the domain
//! types and the WebC checks every part uses), `webcpm-store` ([`store`]) and `webcpm-runtime`
//! ([`runtime`]). Within this crate no file depends on itself through others:
//! `tests/it/layout.rs` checks the graph of every path a file names.

pub use webcpm_formats::{container, error_text, package, package_dir};
pub use webcpm_runtime as runtime;
pub use webcpm_store as store;

pub mod artifacts;
pub mod capabilities;
pub mod demo;
pub mod fetch;
pub mod fleet;
pub mod http;
pub mod install;
pub mod local;
pub mod lockfile;
pub mod oci;
pub mod policy;
pub mod registry;
pub mod resolver;
pub mod rollout;
pub mod run;
pub mod server;
pub mod settings;
pub mod shared_cache;
pub mod write_behind;

#[doc(hidden)]
pub mod cli;
