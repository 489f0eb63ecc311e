//! What of the host the user gives a program, from the `run` and `grant` flags (`--net`,
//! `--dir`, `--volume`, `--mapdir`, `--forward-host-env`): as the store's typed capabilities,
//! with every host directory made absolute and checked to exist, so that a grant stays right
//! wherever the next run starts.

use crate::cli::args::HostArgs;
use crate::cli::failure::Failure;
use crate::store::Capability;

/// The capabilities the flags name.
pub fn capabilities(args: &HostArgs) -> Result<Vec<Capability>, Failure> {
    let mut out = Vec::new();
    if args.net {
        out.push(Capability::Network);
    }
    if args.forward_host_env {
        out.push(Capability::HostEnv);
    }
    for (host, guest) in args.all_dirs() {
        let absolute = host.canonicalize().map_err(|e| {
            Failure::usage(format!("cannot give the directory {}: {e}", host.display()))
                .hint("name a directory that exists on this machine")
        })?;
        if !absolute.is_dir() {
            return Err(Failure::usage(format!(
                "{} is not a directory",
                host.display()
            )));
        }
        out.push(Capability::Dir {
            host: absolute,
            guest: guest.clone(),
        });
    }
    Ok(out)
}
