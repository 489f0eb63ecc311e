//! What the registry's rollout page shows, read at once: the policy in force, every change with
//! the state it left (the v3 percentage over time), the automation, the signing key, and the
//! outcome reports of the automation's window counted in [`BUCKETS`] slices, by format and
//! phase.

use std::path::Path;

use super::keys;
use super::state::{self, Automation, ChangeRecord, FleetError, PolicyState};
use crate::db::Db;
use crate::db::sql::{Row, SqlError, args};
use crate::package::WebcVersion;

/// How many slices the window's reports are counted in.
pub const BUCKETS: usize = 12;
/// How many changes the timeline shows at most (the newest).
const CHANGES: usize = 200;

/// One change and the state it left.
#[derive(Debug, Clone)]
pub struct Step {
    pub record: ChangeRecord,
    pub v3_percent: u8,
    pub halted: bool,
    pub rolled_back: bool,
}

impl Step {
    /// A change the automation made (a halt or a rollback on failing reports).
    pub fn automatic(&self) -> bool {
        self.record.actor == "automation"
    }
}

/// Reports and failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub reports: u64,
    pub failures: u64,
}

impl Count {
    /// Failures per 1,000 reports; `None` without reports.
    pub fn per_thousand(&self) -> Option<f64> {
        (self.reports > 0).then(|| self.failures as f64 * 1000.0 / self.reports as f64)
    }
}

/// The phases a report is about.
pub const PHASES: [&str; 2] = ["install", "run"];

/// The reports of one slice of the window: `[format][phase]`, formats as in
/// [`WebcVersion::ALL`], phases as in [`PHASES`].
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    pub start: i64,
    pub counts: [[Count; 2]; 2],
}

/// Everything the rollout page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub policy: PolicyState,
    /// Oldest first.
    pub steps: Vec<Step>,
    pub automation: Automation,
    /// The signing key (hex) and when the root's endorsement of it ends.
    pub signing_key: Option<(String, Option<i64>)>,
    /// The window's reports, oldest slice first.
    pub buckets: Vec<Bucket>,
    pub now: i64,
}

impl Overview {
    /// The window's reports in all, `[format][phase]`.
    pub fn totals(&self) -> [[Count; 2]; 2] {
        let mut out = [[Count::default(); 2]; 2];
        for bucket in &self.buckets {
            for (f, phases) in bucket.counts.iter().enumerate() {
                for (p, c) in phases.iter().enumerate() {
                    out[f][p].reports += c.reports;
                    out[f][p].failures += c.failures;
                }
            }
        }
        out
    }

    /// The window's reports of every format and phase together.
    pub fn sum(&self) -> Count {
        self.totals()
            .iter()
            .flatten()
            .fold(Count::default(), |a, c| Count {
                reports: a.reports + c.reports,
                failures: a.failures + c.failures,
            })
    }
}

/// Reads the overview from the database and the key directory `keys`.
pub fn overview(db: &mut Db, keys: &Path, now: i64) -> Result<Overview, FleetError> {
    let automation = state::automation(db)?;
    let signing_key = keys::signer(keys)
        .map_err(|e| FleetError::Refused(e.to_string()))?
        .map(|s| {
            let key = webcpm_formats::policy_document::key_hex(&s.key.verifying_key());
            (key, s.endorsement.map(|e| e.expires_at))
        });
    Ok(Overview {
        policy: state::current(db)?,
        steps: steps(db)?,
        buckets: buckets(db, automation.window.as_secs().max(BUCKETS as u64), now)?,
        automation,
        signing_key,
        now,
    })
}

fn steps(db: &mut Db) -> Result<Vec<Step>, FleetError> {
    let err = state::db_error(db);
    let rows = db
        .conn()
        .query(
            "SELECT version, action, actor, reason, at, v3_percent, halted, rolled_back
             FROM policy_changes ORDER BY version DESC LIMIT $1",
            args![CHANGES as i64],
        )
        .map_err(&err)?;
    let read = |r: &Row| -> Result<Step, SqlError> {
        Ok(Step {
            record: ChangeRecord {
                policy_version: r.int(0)? as u64,
                action: r.text(1)?,
                actor: r.text(2)?,
                reason: r.text(3)?,
                at: r.int(4)?,
            },
            v3_percent: r.int(5)?.clamp(0, 100) as u8,
            halted: r.flag(6)?,
            rolled_back: r.flag(7)?,
        })
    };
    let mut out = rows
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&err)?;
    out.reverse();
    Ok(out)
}

/// The reports of the last `window` seconds, counted by slice, format and phase in SQL.
fn buckets(db: &mut Db, window: u64, now: i64) -> Result<Vec<Bucket>, FleetError> {
    let err = state::db_error(db);
    let width = (window / BUCKETS as u64).max(1) as i64;
    let start = now - width * BUCKETS as i64;
    let rows = db
        .conn()
        .query(
            "SELECT (received_at - $1) / $2, format, phase, COUNT(*),
                    COUNT(*) FILTER (WHERE ok = 0)
             FROM reports WHERE received_at >= $1
             GROUP BY 1, 2, 3",
            args![start, width],
        )
        .map_err(&err)?;
    let mut out: Vec<Bucket> = (0..BUCKETS)
        .map(|i| Bucket {
            start: start + width * i as i64,
            ..Bucket::default()
        })
        .collect();
    for row in rows {
        let slot = row.int(0).map_err(|e| err(e.into()))?;
        let format = row.text(1).map_err(|e| err(e.into()))?;
        let phase = row.text(2).map_err(|e| err(e.into()))?;
        let f = WebcVersion::ALL.iter().position(|w| w.as_str() == format);
        let p = PHASES.iter().position(|p| *p == phase);
        let (Some(f), Some(p), Ok(slot)) = (f, p, usize::try_from(slot)) else {
            continue;
        };
        let Some(bucket) = out.get_mut(slot.min(BUCKETS - 1)) else {
            continue;
        };
        let count = &mut bucket.counts[f][p];
        count.reports += row.int(3).map_err(|e| err(e.into()))? as u64;
        count.failures += row.int(4).map_err(|e| err(e.into()))? as u64;
    }
    Ok(out)
}
