//! What a package's commands ask of the host, read from the package itself: its commands (each
//! one a program that may run), the network (a command whose module imports WASIX sockets, name
//! resolution or the HTTP client) and the directories where it mounts its own files. The client
//! compares it with what the user granted; the registry shows it on the package's page.

use std::collections::{BTreeMap, BTreeSet};

use super::{Checked, catch, command, mounts};
use crate::abi::network_imports;

/// What one package version asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requests {
    pub commands: BTreeSet<String>,
    /// The commands that can use the network, with the imports that say so.
    pub network: BTreeMap<String, Vec<String>>,
    /// Where it mounts its own files (read-only), in the program's file system.
    pub mounts: BTreeSet<String>,
    /// The commands whose module is not this package's to read (a dependency's, or one that
    /// cannot be read): whether they can use the network is not known from this package.
    #[serde(default)]
    pub unknown: BTreeSet<String>,
}

/// Reads what a checked container's commands ask for. A command whose atom is in a dependency
/// is listed, and its network use is the dependency's to say.
pub fn requests(checked: &Checked) -> Requests {
    let manifest = checked.manifest();
    let mut out = Requests::default();
    for name in manifest.commands.keys() {
        out.commands.insert(name.clone());
        let wasm = command(manifest, Some(name))
            .ok()
            .filter(|c| c.dependency.is_none())
            .and_then(|c| catch(|| checked.container.get_atom(&c.atom)).ok().flatten());
        let Some(wasm) = wasm else {
            out.unknown.insert(name.clone());
            continue;
        };
        let imports = network_imports(&wasm);
        if !imports.is_empty() {
            out.network.insert(name.clone(), imports);
        }
    }
    out.mounts = mounts(manifest).into_iter().map(|m| m.guest).collect();
    out
}
