//! `webcpm list`: the installed packages, their versions and formats.

use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::store::Store;

pub fn list(ctx: &Context) -> Result<ExitStatus, Failure> {
    let installs = match Store::open_existing(&ctx.home)? {
        Some(store) => store.index().installs()?,
        None => Vec::new(),
    };
    if ctx.global.json {
        let packages: Vec<_> = installs
            .iter()
            .map(|i| {
                json!({
                    "package": i.package,
                    "version": i.version.to_string(),
                    "webc": i.webc,
                    "sha256": i.sha256,
                    "size": i.size,
                    "fell_back_from": i.fell_back_from,
                    "reason": i.reason,
                })
            })
            .collect();
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
