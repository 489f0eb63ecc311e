//! One file per command. Each takes the [`Context`](super::context::Context) (or the global
//! flags, for the commands that edit settings or serve a registry), calls the library, prints
//! its result, and returns an [`ExitStatus`](super::failure::ExitStatus). No command calls
//! another: what several need lives in the context, the failure mapping or the config edits.

pub mod cache;
pub mod cache_verify;
pub mod config;
pub mod demo;
pub mod grant;
pub mod install;
pub mod list;
pub mod lock;
pub mod outdated;
pub mod publish;
pub mod resolve;
pub mod rollout;
pub mod rollout_status;
pub mod rollout_sync;
pub mod run;
pub mod shell;
pub mod uninstall;
pub mod update;
