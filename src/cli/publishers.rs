//! The warning that a package changed hands: `install` and `update` compare the publishers of
//! what the store held before with what it holds after; `lock` compares the old lockfile with
//! the new one (see [`crate::publishers`]).

use crate::printer::{err, plain};

use crate::cli::context::Context;
use crate::lockfile::Lockfile;
use crate::publishers::Seen;
use crate::store::Store;

/// The store's publishers, read before an install changes them.
pub(crate) struct StoreBefore(Seen);

impl StoreBefore {
    pub(crate) fn read(ctx: &Context) -> StoreBefore {
        StoreBefore(store_seen(ctx))
    }

    /// Warns about each package that the store now holds from a new publisher.
    pub(crate) fn warn(&self, ctx: &Context) {
        for change in self.0.changes(&store_seen(ctx)) {
            err!("warning: {}", plain(&change.to_string()));
        }
    }
}

fn store_seen(ctx: &Context) -> Seen {
    match Store::open_existing(&ctx.home) {
        Ok(Some(store)) => Seen::of_store(&store).unwrap_or_else(|e| {
            tracing::debug!("cannot read the store's publishers: {e}");
            Seen::default()
        }),
        _ => Seen::default(),
    }
}

/// Warns about each package that `new` locks from a publisher that `old` did not.
pub(crate) fn warn_lockfile(old: &Lockfile, new: &Lockfile) {
    for change in Seen::of_lockfile(old).changes(&Seen::of_lockfile(new)) {
        err!("warning: {}", plain(&change.to_string()));
    }
}
