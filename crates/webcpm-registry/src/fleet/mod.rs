//! Fleet control on the registry: the rollout policy it signs and serves, the operator's changes
//! to it, the clients' outcome reports, and the automation that halts or rolls back a bad v3.
//!
//! The operator's commands (`webcpm-registry rollout ...`) write the registry root's database
//! directly; a running `registry serve` reads the policy in force on every request, so a change
//! reaches clients at their next refresh without a restart. Every change is a new
//! `policy_version` with who, when and why (`state.rs`). The signing key lives beside the
//! database (`keys.rs`).

mod automation;
mod keys;
mod outcomes;
mod serve;
mod state;
mod view;

pub use keys::{
    DEFAULT_VALIDITY, KEY_FILE, KeyError, KeyReport, KeygenOptions, RevokeReport, keygen,
    revoke as revoke_key,
};
pub use outcomes::{Rate, Rates, Taken, Window};
pub use serve::Service;
pub(crate) use serve::router;
pub use state::{Automation, Change, ChangeRecord, FleetError, OnRegression, PolicyState};
pub use view::{BUCKETS, Bucket, Count, Overview, PHASES, Step, overview};

use std::sync::Arc;

use crate::db::{Db, Pool};
use crate::storage::Storage;

/// What `registry rollout status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolloutStatus {
    pub policy: PolicyState,
    /// The root key clients pin, `None` before `keygen`.
    pub public_key: Option<String>,
    /// The key policies are signed with, and until when the root endorses it.
    pub signing_key: Option<String>,
    pub endorsement_expires_at: Option<i64>,
    /// Signing keys the root revoked.
    pub revoked_keys: Vec<String>,
    pub automation: Automation,
    /// The failure rates over the automation's window.
    pub rates: Window,
    /// The last changes, newest first.
    pub history: Vec<ChangeRecord>,
}

fn open(storage: &Storage) -> Result<Db, FleetError> {
    let root = &storage.root;
    if !root.is_dir() {
        std::fs::create_dir_all(root).map_err(|source| {
            FleetError::Refused(format!(
                "cannot create the registry root {}: {source}",
                root.display()
            ))
        })?;
    }
    Ok(Db::open(&storage.database)?)
}

/// The policy in force, its history, the automation and the live rates; the keys are read from
/// `keys` (the key directory).
pub fn status(
    storage: &Storage,
    keys: &std::path::Path,
    now: i64,
) -> Result<RolloutStatus, FleetError> {
    let mut db = open(storage)?;
    let automation = state::automation(&mut db)?;
    let signer = keys::signer(keys).map_err(|e| FleetError::Refused(e.to_string()))?;
    let signer = signer.as_ref();
    Ok(RolloutStatus {
        policy: state::current(&mut db)?,
        public_key: signer.map(|s| s.root.clone()),
        signing_key: signer
            .map(|s| webcpm_formats::policy_document::key_hex(&s.key.verifying_key())),
        endorsement_expires_at: signer
            .and_then(|s| s.endorsement.as_ref())
            .map(|e| e.expires_at),
        revoked_keys: signer
            .and_then(|s| s.revocations.as_ref())
            .map(|r| r.list.keys.clone())
            .unwrap_or_default(),
        automation,
        rates: outcomes::window(&mut db, automation.window, now)?,
        history: state::history(&mut db, 10)?,
    })
}

/// Makes a change as `actor`, for `reason`: the new policy and its history row, or `None` when
/// the change changes nothing.
pub fn change(
    storage: &Storage,
    change: &Change,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<Option<(PolicyState, ChangeRecord)>, FleetError> {
    state::change(&mut open(storage)?, change, actor, reason, now)
}

/// Sets what the registry does on a regression.
pub fn automate(storage: &Storage, automation: &Automation) -> Result<(), FleetError> {
    state::set_automation(&mut open(storage)?, automation)
}

/// The service behind the rollout routes for the registry in `root`, on its database's pool.
pub(crate) fn service(
    keys: &std::path::Path,
    pool: Arc<Pool>,
    ttl: std::time::Duration,
    metrics: Arc<crate::metrics::Metrics>,
    open_reports: bool,
) -> Service {
    Service {
        keys: keys.to_path_buf(),
        pool,
        ttl,
        metrics,
        open_reports,
    }
}

/// The policy in force (for the metrics).
pub(crate) fn policy_in_force(db: &mut Db) -> Result<PolicyState, FleetError> {
    state::current(db)
}
