//! The integration tests: the webcpm binary as real processes against a real local registry
//! process on 127.0.0.1 and real SQLite files.

mod backends;
mod common;
mod demo;
mod faults;
mod install;
mod layout;
mod readme;
mod registry;
mod rollout;
mod run;
mod store;
