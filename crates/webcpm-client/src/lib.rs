//! webcpm's client library: everything between the command line and the engines.
//!
//! The parts, in the order data flows through them (nothing flows back):
//!
//! | module | job |
//! |---|---|
//! | [`settings`] | the effective configuration, with the layer each value came from |
//! | [`resolver`] | picks versions for a whole dependency tree, without any IO |
//! | [`fleet`] | the registry's signed rollout policy (fetched, verified, kept) and outcome reports |
//! | [`credentials`] | the token for a registry: environment, credential process, keychain, files |
//! | [`registry`] | the GraphQL client: one query, answers turned into [`package`] types |
//! | [`fetch`] | streaming downloads, verified by SHA-256 and size while they arrive |
//! | [`install`] | drives the parts above for `install`, `resolve`, `uninstall` |
//! | [`lockfile`] | `webcpm.lock`: resolved trees with both formats, read and written as TOML |
//! | [`publishers`] | who published what the store and lockfile hold, and when a package changes hands |
//! | [`sbom`] | a lockfile's packages, their distributions and atoms as CycloneDX or SPDX |
//! | [`rollout`] | re-points installs when the format policy changes (rollback, resume) |
//! | [`artifacts`] | at install: unpacks volumes and compiles every atom into the store |
//! | [`shared_cache`] | compiled code shared by a fleet through an OCI registry, signed |
//! | [`capabilities`] | what a package's commands ask of the host (network, commands, mounts) and what of it the user has not granted |
//! | [`local`] | `run` of a local `.webc`, `.wasm`, package directory or URL: into the store as a blob |
//! | [`run`] | `run`: from an installed package to a ready module and its WASI setup |
//!
//! It stands on the crates below it, re-exported under their module names: `webcpm-formats`
//! ([`package`], [`container`], [`package_dir`], [`policy`], [`error_text`]), `webcpm-net`
//! ([`http`], [`oci`]), `webcpm-store` ([`store`]) and `webcpm-runtime` ([`runtime`]). It
//! prints nothing: what the user sees is the command line's business.

pub use webcpm_formats::{abi, container, error_text, package, package_dir, policy};
pub use webcpm_net::{http, oci};
pub use webcpm_runtime as runtime;
pub use webcpm_store as store;

pub mod artifacts;
pub mod capabilities;
pub mod cooldown;
pub mod credentials;
mod early;
pub mod fetch;
pub mod fleet;
pub mod install;
pub mod local;
pub mod lock_graph;
pub mod lockfile;
pub mod publishers;
pub mod registry;
pub mod resolver;
pub mod rollout;
pub mod run;
pub mod sbom;
pub mod settings;
pub mod shared_cache;
pub mod show;
pub mod vendor;
pub mod write_behind;
