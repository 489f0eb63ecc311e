//! `webcpm list`: the installed packages, their versions and formats; with `--json`, also each
//! atom, the ABI its imports say (which decides the engine that runs it), and the tier of its
//! compiled code.

use crate::printer::out;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::runtime::Runtime;
use crate::store::{AtomRow, Store};

/// The tier and compiler of an atom's compiled code: `optimized` (its final code), `baseline`
/// (until the optimizer is done), or none when it has no compiled code.
fn tier(
    store: &Store,
    runtime: &Runtime,
    atom: &AtomRow,
) -> (Option<&'static str>, Option<&'static str>) {
    let Some(abi) = atom.abi else {
        return (None, None);
    };
    let compiled = |backend: &dyn crate::runtime::Backend| {
        let row = store.index().artifact(backend.engine_hash(), &atom.sha256);
        row.ok().flatten().is_some_and(|r| r.size.is_some())
    };
    if let Ok(backend) = runtime.backend(abi)
        && compiled(backend)
    {
        return (Some("optimized"), Some(backend.compiler()));
    }
    match runtime.baseline(abi) {
        Some(baseline) if compiled(baseline) => (Some("baseline"), Some(baseline.compiler())),
        _ => (None, None),
    }
}

pub(crate) fn list(ctx: &Context) -> Result<ExitStatus, Failure> {
    let store = Store::open_existing(&ctx.home)?;
    let installs = match &store {
        Some(store) => store.index().installs()?,
        None => Vec::new(),
    };
    if ctx.global.json {
        let runtime = ctx.runtime().ok();
        let mut packages = Vec::new();
        for i in &installs {
            let atoms = match &store {
                Some(store) => store.index().atoms(&i.sha256)?,
                None => Vec::new(),
            };
            let atoms: Vec<_> = atoms
                .iter()
                .map(|a| {
                    let (tier, compiler) = match (&store, &runtime) {
                        (Some(store), Some(runtime)) => tier(store, runtime, a),
                        _ => (None, None),
                    };
                    json!({
                        "name": a.name, "sha256": a.sha256, "abi": a.abi,
                        "tier": tier, "compiler": compiler,
                    })
                })
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
        out!("{}", json!({ "packages": packages }));
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
