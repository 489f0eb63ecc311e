//! One file per command. Each takes the [`Context`](super::context::Context) (or the global
//! flags, for the commands that edit settings), calls the library, prints
//! its result, and returns an [`ExitStatus`](super::failure::ExitStatus). No command calls
//! another: what several need lives in the context, the failure mapping or the config edits.

pub(super) mod cache;
pub(super) mod cache_verify;
pub(super) mod config;
pub(super) mod demo;
pub(super) mod grant;
pub(super) mod install;
pub(super) mod list;
pub(super) mod lock;
pub(super) mod login;
pub(super) mod outdated;
pub(super) mod publish;
pub(super) mod resolve;
pub(super) mod rollout;
pub(super) mod rollout_status;
pub(super) mod rollout_sync;
pub(super) mod run;
pub(super) mod sbom;
pub(super) mod search;
pub(super) mod shell;
pub(super) mod show;
pub(super) mod tree;
pub(super) mod uninstall;
pub(super) mod update;
pub(super) mod vendor;
