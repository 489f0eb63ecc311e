//! The registry's rollout policy as stored: the last row of `policy_changes` is in force, and
//! every change adds a row with the next `policy_version` and who made it, when and why. A
//! [`Change`] is applied as a pure function of the state in force ([`Change::apply`]), inside one
//! immediate transaction, so that two operators (or an operator and the automation) never give
//! two policies one version.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::DbError;
use crate::db::Db;
use crate::db::sql::{Conn, Row, SqlError, args};
use crate::package::{PackageName, WebcVersion};
use crate::policy::PackageRule;

/// Why a rollout change or report was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Refused(String),
    #[error(
        "the stored rollout policy is damaged ({0}); set it again with `webcpm registry rollout set`"
    )]
    Corrupt(String),
    #[error("outcome reports need a report token")]
    Unauthorized,
}

/// The rollout policy in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyState {
    pub policy_version: u64,
    pub v3_percent: u8,
    pub packages: BTreeMap<String, PackageRule>,
    pub rolled_back: bool,
    pub halted: bool,
}

impl Default for PolicyState {
    fn default() -> Self {
        PolicyState {
            policy_version: 0,
            v3_percent: 100,
            packages: BTreeMap::new(),
            rolled_back: false,
            halted: false,
        }
    }
}

/// One change an operator (or the automation) makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The global percentage, or one package's.
    Percent {
        package: Option<PackageName>,
        v3_percent: u8,
    },
    /// One package's format.
    Format {
        package: PackageName,
        webc: WebcVersion,
    },
    /// Removes one package's rule.
    Clear { package: PackageName },
    /// Freezes the percentage.
    Halt,
    /// v2 first for every package.
    Rollback,
    /// Lifts the rollback and the halt.
    Resume,
}

impl Change {
    /// The action's name in the history.
    pub fn action(&self) -> String {
        match self {
            Change::Percent {
                package: None,
                v3_percent,
            } => format!("set v3_percent {v3_percent}"),
            Change::Percent {
                package: Some(p),
                v3_percent,
            } => format!("set {p} v3_percent {v3_percent}"),
            Change::Format { package, webc } => format!("set {package} webc {webc}"),
            Change::Clear { package } => format!("clear {package}"),
            Change::Halt => "halt".into(),
            Change::Rollback => "rollback".into(),
            Change::Resume => "resume".into(),
        }
    }

    /// Whether the change can only move clients toward v2 (what automation may do).
    pub fn toward_v2(&self) -> bool {
        matches!(
            self,
            Change::Halt
                | Change::Rollback
                | Change::Format {
                    webc: WebcVersion::V2,
                    ..
                }
        )
    }

    /// The state after the change (its version not yet bumped), or why it is refused.
    pub fn apply(&self, state: &PolicyState) -> Result<PolicyState, FleetError> {
        let mut next = state.clone();
        match self {
            Change::Percent {
                package: None,
                v3_percent,
            } => {
                if state.halted && *v3_percent > state.v3_percent {
                    return Err(FleetError::Refused(format!(
                        "the rollout is halted at {}%: raising it needs `webcpm registry rollout resume` first",
                        state.v3_percent
                    )));
                }
                next.v3_percent = *v3_percent;
            }
            Change::Percent {
                package: Some(p),
                v3_percent,
            } => {
                next.packages.insert(
                    p.to_string(),
                    PackageRule {
                        v3_percent: Some(*v3_percent),
                        webc: None,
                    },
                );
            }
            Change::Format { package, webc } => {
                next.packages.insert(
                    package.to_string(),
                    PackageRule {
                        v3_percent: None,
                        webc: Some(*webc),
                    },
                );
            }
            Change::Clear { package } => {
                next.packages.remove(package.as_str());
            }
            Change::Halt => next.halted = true,
            Change::Rollback => next.rolled_back = true,
            Change::Resume => {
                next.halted = false;
                next.rolled_back = false;
            }
        }
        Ok(next)
    }
}

/// One row of the history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeRecord {
    pub policy_version: u64,
    pub action: String,
    pub actor: String,
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub at: i64,
}

/// What the registry does when v3 fails more than v2.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum OnRegression {
    Off,
    Halt,
    Rollback,
}

impl OnRegression {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRegression::Off => "off",
            OnRegression::Halt => "halt",
            OnRegression::Rollback => "rollback",
        }
    }
}

/// The automation's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Automation {
    pub on_regression: OnRegression,
    /// Reports needed of each format before anything is compared.
    pub min_samples: u32,
    /// How many percentage points worse v3's failure rate must be.
    pub threshold: f64,
    #[serde(with = "seconds")]
    pub window: Duration,
}

impl std::fmt::Display for Automation {
    /// "halt on a regression: v3 failing on more than 10 points more of the clients than v2,
    /// with at least 20 clients of each, over 600 s".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on a regression: v3 failing on more than {} points more of the clients than v2, with at least {} clients of each, over {} s",
            self.on_regression.as_str(),
            self.threshold,
            self.min_samples,
            self.window.as_secs()
        )
    }
}

mod seconds {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

impl Default for Automation {
    fn default() -> Self {
        Automation {
            on_regression: OnRegression::Halt,
            min_samples: 20,
            threshold: 5.0,
            window: Duration::from_secs(3600),
        }
    }
}

impl From<SqlError> for FleetError {
    /// A transaction that could not begin or commit.
    fn from(source: SqlError) -> Self {
        FleetError::Db(DbError::Sql {
            place: "the registry database".into(),
            source,
        })
    }
}

/// The error of a failed statement on `db` (owning its name, so that `db` may be borrowed
/// mutably meanwhile).
pub(super) fn db_error(db: &Db) -> impl Fn(SqlError) -> FleetError + use<> {
    let sql = db.sql();
    move |source| FleetError::Db(sql(source))
}

/// The policy in force.
pub(super) fn current(db: &mut Db) -> Result<PolicyState, FleetError> {
    let err = db_error(db);
    read_current(db.conn(), &err)
}

fn read_current(
    conn: &mut Conn,
    err: &impl Fn(SqlError) -> FleetError,
) -> Result<PolicyState, FleetError> {
    let row = conn
        .query_opt(
            "SELECT version, v3_percent, packages, rolled_back, halted FROM policy_changes
             ORDER BY version DESC LIMIT 1",
            &[],
        )
        .map_err(err)?;
    let Some(row) = row else {
        return Ok(PolicyState::default());
    };
    let read = |row: &Row| -> Result<_, SqlError> {
        Ok((
            row.int(0)?,
            row.int(1)?,
            row.text(2)?,
            row.flag(3)?,
            row.flag(4)?,
        ))
    };
    let (version, percent, packages, rolled_back, halted) = read(&row).map_err(err)?;
    Ok(PolicyState {
        policy_version: version as u64,
        v3_percent: percent.clamp(0, 100) as u8,
        packages: serde_json::from_str(&packages)
            .map_err(|e| FleetError::Corrupt(format!("packages of v{version}: {e}")))?,
        rolled_back,
        halted,
    })
}

/// Applies a change and records it with a new version; `None` when it changes nothing. Two
/// operators who change the policy at once cannot both write the same version: the second is
/// refused and asked to try again.
pub(super) fn change(
    db: &mut Db,
    change: &Change,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<Option<(PolicyState, ChangeRecord)>, FleetError> {
    let err = db_error(db);
    db.conn().transaction(|tx| {
        let state = read_current(tx, &err)?;
        let mut next = change.apply(&state)?;
        if next == state {
            return Ok(None);
        }
        next.policy_version = state.policy_version + 1;
        let record = ChangeRecord {
            policy_version: next.policy_version,
            action: change.action(),
            actor: actor.to_string(),
            reason: reason.to_string(),
            at: now,
        };
        tx.execute(
            "INSERT INTO policy_changes
               (version, v3_percent, packages, rolled_back, halted, action, actor, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            args![
                next.policy_version as i64,
                next.v3_percent,
                serde_json::to_string(&next.packages).expect("plain data serializes"),
                next.rolled_back,
                next.halted,
                record.action.as_str(),
                record.actor.as_str(),
                record.reason.as_str(),
                record.at
            ],
        )
        .map_err(|e| {
            if e.is_unique_violation() {
                FleetError::Refused(format!(
                    "policy version {} was written by someone else at the same moment; look at `registry rollout status` and try again",
                    next.policy_version
                ))
            } else {
                err(e)
            }
        })?;
        Ok(Some((next, record)))
    })
}

/// The last `limit` changes, newest first.
pub(super) fn history(db: &mut Db, limit: usize) -> Result<Vec<ChangeRecord>, FleetError> {
    let err = db_error(db);
    let rows = db
        .conn()
        .query(
            "SELECT version, action, actor, reason, at FROM policy_changes
             ORDER BY version DESC LIMIT $1",
            args![limit as i64],
        )
        .map_err(&err)?;
    let read = |r: &Row| -> Result<ChangeRecord, SqlError> {
        Ok(ChangeRecord {
            policy_version: r.int(0)? as u64,
            action: r.text(1)?,
            actor: r.text(2)?,
            reason: r.text(3)?,
            at: r.int(4)?,
        })
    };
    rows.iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&err)
}

/// The automation's settings (the defaults until an operator sets them).
pub(super) fn automation(db: &mut Db) -> Result<Automation, FleetError> {
    let err = db_error(db);
    let row = db
        .conn()
        .query_opt(
            "SELECT action, min_samples, threshold, window_secs FROM automation WHERE id = 1",
            &[],
        )
        .map_err(&err)?;
    let Some(row) = row else {
        return Ok(Automation::default());
    };
    let read =
        |r: &Row| -> Result<_, SqlError> { Ok((r.text(0)?, r.int(1)?, r.real(2)?, r.int(3)?)) };
    let (action, min_samples, threshold, window) = read(&row).map_err(&err)?;
    let on_regression = match action.as_str() {
        "off" => OnRegression::Off,
        "rollback" => OnRegression::Rollback,
        _ => OnRegression::Halt,
    };
    Ok(Automation {
        on_regression,
        min_samples: min_samples.clamp(1, u32::MAX as i64) as u32,
        threshold,
        window: Duration::from_secs(window.max(1) as u64),
    })
}

pub(super) fn set_automation(db: &mut Db, automation: &Automation) -> Result<(), FleetError> {
    let err = db_error(db);
    db.conn()
        .execute(
            "INSERT INTO automation (id, action, min_samples, threshold, window_secs)
             VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET action = $1, min_samples = $2, threshold = $3,
               window_secs = $4",
            args![
                automation.on_regression.as_str(),
                automation.min_samples,
                automation.threshold,
                automation.window.as_secs() as i64
            ],
        )
        .map_err(&err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_get_growing_versions_and_a_halt_freezes_the_percentage() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&crate::Database::new(dir.path(), None).unwrap()).unwrap();
        assert_eq!(current(&mut db).unwrap(), PolicyState::default());
        let set = |p| Change::Percent {
            package: None,
            v3_percent: p,
        };
        let (s, r) = change(&mut db, &set(10), "ana", "start", 5)
            .unwrap()
            .unwrap();
        assert_eq!((s.policy_version, s.v3_percent), (1, 10));
        assert_eq!(r.actor, "ana");
        assert!(
            change(&mut db, &set(10), "ana", "again", 6)
                .unwrap()
                .is_none()
        );
        change(&mut db, &Change::Halt, "bo", "bad", 7)
            .unwrap()
            .unwrap();
        assert!(matches!(
            change(&mut db, &set(30), "ana", "more", 8),
            Err(FleetError::Refused(_))
        ));
        change(&mut db, &set(5), "ana", "less", 9).unwrap().unwrap();
        let now = current(&mut db).unwrap();
        assert_eq!(
            (now.policy_version, now.v3_percent, now.halted),
            (3, 5, true)
        );
        let h = history(&mut db, 10).unwrap();
        assert_eq!(h[0].action, "set v3_percent 5");
        assert_eq!(h[1].reason, "bad");
    }

    #[test]
    fn only_halts_rollbacks_and_v2_formats_move_toward_v2() {
        let p: PackageName = "ns/p".parse().unwrap();
        assert!(Change::Halt.toward_v2() && Change::Rollback.toward_v2());
        assert!(
            Change::Format {
                package: p.clone(),
                webc: WebcVersion::V2
            }
            .toward_v2()
        );
        assert!(!Change::Resume.toward_v2());
        assert!(
            !Change::Percent {
                package: Some(p),
                v3_percent: 0
            }
            .toward_v2()
        );
    }
}
