//! `webcpm uninstall`: removes an install; its files stay in the store until `cache gc`.

use crate::printer::out;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure, FailureKind};
use crate::package::PackageName;

pub(crate) fn uninstall(ctx: &Context, package: &PackageName) -> Result<ExitStatus, Failure> {
    let store = ctx.store()?;
    if !store.index().remove_install(package)? {
        return Err(
            Failure::new(FailureKind::Package, format!("{package} is not installed"))
                .hint("`webcpm list` shows what is installed"),
        );
    }
    if ctx.global.json {
        out!("{}", json!({"uninstalled": package}));
    } else {
        ctx.say(format!("Uninstalled {package}"));
    }
    Ok(ExitStatus::Success)
}
