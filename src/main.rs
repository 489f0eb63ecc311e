//! `webcpm`, the client's command line: installs and runs WebC packages. The work is done by
//! the library crates (`webcpm-client` and the crates below it); this binary parses arguments,
//! prints, and ends with an exit code ([`cli`]). The registry is another binary,
//! `webcpm-registry`, which `webcpm registry …` and `webcpm demo` run.

mod cli;
mod demo;
mod printer;

use webcpm_client::{
    artifacts, capabilities, cooldown, credentials, fetch, fleet, http, install, local, lock_graph,
    lockfile, package, policy, publishers, registry, resolver, rollout, run, runtime, sbom,
    settings, shared_cache, show, store, vendor,
};

fn main() {
    std::process::exit(cli::main());
}
