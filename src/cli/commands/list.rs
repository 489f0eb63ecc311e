//! `webcpm list`: the installed packages, their versions and formats; with `--json`, also each
//! atom and the ABI its imports say (which decides the engine that runs it).

use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::store::Store;

pub fn list(ctx: &Context) -> Result<ExitStatus, Failure> {
    let store = Store::open_existing(&ctx.home)?;
    let installs = match &store {
        Some(store) => store.index().installs()?,
        None => Vec::new(),
    };
    if ctx.global.json {
        let mut packages = Vec::new();
        for i in &installs {
            let atoms = match &store {
                Some(store) => store.index().atoms(&i.sha256)?,
                None => Vec::new(),
            };
            let atoms: Vec<_> = atoms
                .iter()
                .map(|a| json!({ "name": a.name, "sha256": a.sha256, "abi": a.abi }))
                .collect();
            packages.push(json!({
                    "package": i.package,
                    "version": i.version.to_string(),
                    "webc": i.webc,
                    "sha256": i.sha256,
                    "size": i.size,
                    "fell_back_from": i.fell_back_from,
                "reason": i.reason,
                "atoms": atoms,
            }));
        }
        println!("{}", json!({ "packages": packages }));
    } else if installs.is_empty() {
        ctx.say("No packages installed.");
    } else {
        for i in &installs {
            ctx.say(format!(
                "{:<32} {:<12} {}  sha256:{}",
                i.package,
                i.version,
                i.webc,
                &i.sha256.hex()[..12]
            ));
        }
    }
    Ok(ExitStatus::Success)
}
