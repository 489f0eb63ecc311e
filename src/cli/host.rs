//! What of the host the user gives a program, from the `run` and `grant` flags (`--net`,
//! `--dir`, `--volume`, `--mapdir`, `--forward-host-env`): as the store's typed capabilities,
//! with every host directory made absolute and checked to exist, so that a grant stays right
//! wherever the next run starts.

use crate::cli::args::HostArgs;
use crate::cli::failure::Failure;
use crate::store::Capability;

/// The capabilities the flags name, each host directory made absolute (it must exist).
pub(super) fn capabilities(args: &HostArgs) -> Result<Vec<Capability>, Failure> {
    named(args, true)
}

/// The capabilities the flags name, host directories as given (to take a grant back, even of
/// a directory that is gone: it is matched absolute, as granted, when it still exists).
pub(super) fn named_as_given(args: &HostArgs) -> Result<Vec<Capability>, Failure> {
    named(args, false)
}

fn named(args: &HostArgs, resolve: bool) -> Result<Vec<Capability>, Failure> {
    let mut out = Vec::new();
    if args.net {
        out.push(Capability::Network);
    }
    if args.forward_host_env {
        out.push(Capability::HostEnv);
    }
    for (host, guest) in args.all_dirs() {
        if host.to_str().is_none() {
            return Err(Failure::usage(format!(
                "{} is not valid UTF-8; name the directory by a path that is",
                host.display()
            )));
        }
        if !resolve {
            let host = host.canonicalize().unwrap_or_else(|_| host.clone());
            out.push(Capability::Dir {
                host,
                guest: guest.clone(),
            });
            continue;
        }
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
