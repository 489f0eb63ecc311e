//! `webcpm-registry`: the registry server and the operator's commands (serve, add, archive,
//! keygen, rollout, token). It links none of the client's engines.

fn main() {
    std::process::exit(webcpm_registry::cli::main());
}
