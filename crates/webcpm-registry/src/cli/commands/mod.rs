//! One file per group of the registry's commands: each reads its arguments, calls the library,
//! prints.

pub(super) mod add;
pub(super) mod rollout;
pub(super) mod serve;
pub(super) mod token;
