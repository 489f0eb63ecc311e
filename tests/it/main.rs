//! The integration tests: the webcpm binary as real processes against a real local registry
//! process on 127.0.0.1 and real SQLite files.

// A test shows what it ran and measured on the harness's captured output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use webcpm_test_support as common;

mod backends;
mod cooldown;
mod credentials;
mod demo;
mod docs;
mod faults;
mod fleet;
mod install;
mod layout;
mod local;
mod lockfile;
mod mirror;
mod network;
mod publish;
mod publishers;
mod readme;
mod real_shapes;
mod registry;
mod replay;
mod rollout;
mod round_trips;
mod run;
mod sandbox;
mod sbom;
mod scale;
mod search;
mod service;
mod services;
mod store;
mod tiers;
mod web;
mod yank;
