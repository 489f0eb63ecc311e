//! What a package's commands ask of the host, read from the package itself, and what of that
//! the user has not granted. A package asks; only the user grants (`run` flags, `run.network`,
//! `webcpm grant`): `install` and `update` show a package that asks for more than before, or
//! for the network without having it, and change nothing.
//!
//! What a package can ask for is read from the package by [`crate::container::requests`].

use crate::artifacts::{self, PrepareError};
use crate::package::Sha256Digest;
use crate::store::{Capability, Store};

pub use crate::container::Requests;

/// Reads what the stored blob's commands ask for.
pub fn requests(store: &Store, blob: &Sha256Digest) -> Result<Requests, PrepareError> {
    let checked = artifacts::open_blob(store, blob)?;
    Ok(crate::container::requests(&checked))
}

/// The lines to show when a package moves from `before` (nothing: a first install) to `after`,
/// given what it was granted and whether every program gets the network (`run.network`).
pub fn changes(
    before: Option<&Requests>,
    after: &Requests,
    granted: &[Capability],
    network_for_all: bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    let has_network = network_for_all || granted.contains(&Capability::Network);
    for (command, imports) in &after.network {
        let new = before.is_none_or(|b| !b.network.contains_key(command));
        if new && !has_network {
            lines.push(format!(
                "command `{command}` can use the network ({}); it gets none unless granted: run it with --net, or `webcpm grant PACKAGE --net`",
                imports.join(", ")
            ));
        }
    }
    let Some(before) = before else {
        return lines;
    };
    let added: Vec<&String> = after.commands.difference(&before.commands).collect();
    if !added.is_empty() {
        let names: Vec<String> = added.iter().map(|c| format!("`{c}`")).collect();
        lines.push(format!("new command(s): {}", names.join(", ")));
    }
    let mounts: Vec<&String> = after.mounts.difference(&before.mounts).collect();
    if !mounts.is_empty() {
        let paths: Vec<&str> = mounts.iter().map(|m| m.as_str()).collect();
        lines.push(format!(
            "mounts its own files at new paths (read-only): {}",
            paths.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(commands: &[&str], network: &[&str], mounts: &[&str]) -> Requests {
        Requests {
            commands: commands.iter().map(|c| c.to_string()).collect(),
            network: network
                .iter()
                .map(|c| (c.to_string(), vec!["sock_listen".to_string()]))
                .collect(),
            mounts: mounts.iter().map(|m| m.to_string()).collect(),
            unknown: Default::default(),
        }
    }

    #[test]
    fn a_widened_request_is_shown_and_a_granted_one_is_not() {
        let old = asks(&["greet"], &[], &["/data"]);
        let new = asks(&["greet", "serve"], &["serve"], &["/data", "/www"]);
        let lines = changes(Some(&old), &new, &[], false);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("`serve` can use the network (sock_listen)"));
        assert!(lines[1].contains("`serve`"));
        assert!(lines[2].contains("/www"));
        let granted = changes(Some(&old), &new, &[Capability::Network], false);
        assert_eq!(granted.len(), 2, "{granted:?}");
        assert!(changes(Some(&new), &new, &[], false).is_empty());
        assert_eq!(changes(None, &new, &[], false).len(), 1);
    }
}
