//! After `install` and `update`: what a package version asks of the host that it did not ask
//! before (a first install: the network it cannot have), shown and never granted
//! ([`crate::capabilities`]). Reading what was installed before happens before the install;
//! failing to read it only means nothing is shown.

use std::collections::BTreeMap;

use crate::capabilities::{self, Requests};
use crate::cli::context::Context;
use crate::package::{PackageName, Sha256Digest};
use crate::store::Store;

/// What the installed versions of some packages asked for, before an install.
#[derive(Debug, Default)]
pub(super) struct Before(BTreeMap<PackageName, Requests>);

impl Before {
    /// Reads what the installs of `names` ask for now.
    pub(super) fn read(ctx: &Context, names: &[PackageName]) -> Before {
        let Ok(Some(store)) = Store::open_existing(&ctx.home) else {
            return Before::default();
        };
        let mut before = BTreeMap::new();
        for name in names {
            let Ok(Some(install)) = store.index().installed(name) else {
                continue;
            };
            match capabilities::requests(&store, &install.sha256) {
                Ok(requests) => {
                    before.insert(name.clone(), requests);
                }
                Err(e) => tracing::debug!("cannot read what {name} asks for: {e}"),
            }
        }
        Before(before)
    }

    /// Says what `package@version` (blob `blob`) asks for beyond what it asked before and was
    /// granted.
    pub(super) fn show(
        &self,
        ctx: &Context,
        package: &PackageName,
        version: &str,
        blob: &Sha256Digest,
    ) {
        let Ok(Some(store)) = Store::open_existing(&ctx.home) else {
            return;
        };
        let (after, granted) = match (
            capabilities::requests(&store, blob),
            store.index().grants(package),
        ) {
            (Ok(after), Ok(granted)) => (after, granted),
            _ => return,
        };
        let lines = capabilities::changes(
            self.0.get(package),
            &after,
            &granted,
            ctx.settings.run.network.val,
        );
        for line in lines {
            ctx.note(format!(
                "note: {package}@{version} {}",
                line.replace("PACKAGE", package.as_str())
            ));
        }
    }
}
