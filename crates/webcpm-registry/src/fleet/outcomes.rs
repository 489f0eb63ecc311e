//! The clients' outcome reports, as the registry keeps and counts them: a batch is checked and
//! stored in one transaction; the failure rates of v3 and v2, per package and overall, are
//! counted over a sliding window. Reports older than a day past the window are removed as new
//! ones arrive, so the table stays small.
//!
//! A client is its report token and the name it gives (`token:client`). Rates count clients,
//! not reports: a client that failed a thousand times is one failing client, so one machine in
//! a loop, or one holder of a token inventing reports under one name, cannot halt a rollout.
//! And one client keeps at most [`MAX_PER_CLIENT`] reports per window: the rest of a burst is
//! taken and dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use super::state::{FleetError, db_error};
use crate::db::Db;
use crate::db::sql::{Row, SqlError, args};
use crate::package::WebcVersion;
use webcpm_formats::report::Batch;

/// The most reports one batch may hold.
pub(super) const MAX_BATCH: usize = 1000;
/// The most reports kept of one client per window.
pub(super) const MAX_PER_CLIENT: i64 = 1000;

/// Reports and clients of one format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    pub reports: u64,
    pub failures: u64,
    /// Distinct clients that reported.
    pub clients: u64,
    /// Distinct clients that reported a failure.
    pub failing_clients: u64,
}

impl Rate {
    /// Failing clients in percent of the clients that reported.
    pub fn percent(&self) -> f64 {
        if self.clients == 0 {
            0.0
        } else {
            self.failing_clients as f64 * 100.0 / self.clients as f64
        }
    }
}

/// What a batch came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Taken {
    pub stored: usize,
    /// Past the client's bound for the window.
    pub dropped: usize,
}

/// v2 next to v3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rates {
    pub v2: Rate,
    pub v3: Rate,
}

impl Rates {
    fn of(&mut self, webc: WebcVersion) -> &mut Rate {
        match webc {
            WebcVersion::V2 => &mut self.v2,
            WebcVersion::V3 => &mut self.v3,
        }
    }
}

/// The rates over the window, overall and per package.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Window {
    pub seconds: u64,
    pub overall: Rates,
    pub packages: BTreeMap<String, Rates>,
}

/// Checks and stores a batch that came with the report token `token` (its SHA-256; empty on a
/// registry with open reports), up to the client's bound.
pub(super) fn insert(
    db: &mut Db,
    batch: &Batch,
    token: &str,
    now: i64,
    keep: Duration,
) -> Result<Taken, FleetError> {
    if batch.reports.len() > MAX_BATCH {
        return Err(FleetError::Refused(format!(
            "a batch holds at most {MAX_BATCH} reports"
        )));
    }
    let bad = batch.client.len() > 64
        || batch
            .reports
            .iter()
            .any(|r| r.package.len() > 128 || r.version.len() > 64 || r.bucket > 99);
    if bad {
        return Err(FleetError::Refused("a report is malformed".into()));
    }
    let e = db_error(db);
    let since = now - keep.as_secs() as i64;
    db.conn().transaction(|tx| {
        let held = tx
            .query_opt(
                "SELECT COUNT(*) FROM reports WHERE token = $1 AND client = $2 AND received_at > $3",
                args![token, batch.client.as_str(), since],
            )
            .map_err(&e)?
            .map_or(Ok(0), |r| r.int(0))
            .map_err(|x| e(x.into()))?;
        let room = usize::try_from(MAX_PER_CLIENT - held).unwrap_or(0);
        let stored = batch.reports.len().min(room);
        for r in &batch.reports[..stored] {
            let phase = serde_json::to_value(r.phase).expect("plain data serializes");
            tx.execute(
                "INSERT INTO reports
                   (received_at, client, package, version, format, phase, ok, error_class, bucket,
                    token)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                args![
                    now,
                    batch.client.as_str(),
                    r.package.to_ascii_lowercase(),
                    r.version.as_str(),
                    r.format.as_str(),
                    phase.as_str().unwrap_or("run"),
                    r.ok,
                    r.error_class
                        .as_deref()
                        .map(|c| &c[..c.floor_char_boundary(32)]),
                    r.bucket,
                    token
                ],
            )
            .map_err(&e)?;
        }
        let horizon = now - keep.as_secs() as i64 - 86_400;
        tx.execute("DELETE FROM reports WHERE received_at < $1", args![horizon])
            .map_err(&e)?;
        Ok(Taken {
            stored,
            dropped: batch.reports.len() - stored,
        })
    })
}

/// The failure rates of the last `window`.
pub(super) fn window(db: &mut Db, window: Duration, now: i64) -> Result<Window, FleetError> {
    let since = now - window.as_secs() as i64;
    let err = db_error(db);
    let rows = db
        .conn()
        .query(
            "SELECT package, format, COUNT(*), SUM(CASE WHEN ok = 0 THEN 1 ELSE 0 END),
                    COUNT(DISTINCT token || ':' || client),
                    COUNT(DISTINCT CASE WHEN ok = 0 THEN token || ':' || client END)
             FROM reports WHERE received_at > $1 GROUP BY package, format",
            args![since],
        )
        .map_err(&err)?;
    let read = |r: &Row| -> Result<_, SqlError> {
        let counts = [r.int(2)?, r.int(3)?, r.int(4)?, r.int(5)?].map(|n| n.max(0) as u64);
        Ok((r.text(0)?, r.text(1)?, counts))
    };
    let rows = rows
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&err)?;
    let mut out = Window {
        seconds: window.as_secs(),
        ..Window::default()
    };
    // Overall, a client is counted once per package it reported on: the sum of the packages.
    for (package, format, [reports, failures, clients, failing]) in rows {
        let Ok(webc) = format.parse::<WebcVersion>() else {
            continue;
        };
        for rates in [out.packages.entry(package).or_default(), &mut out.overall] {
            let rate = rates.of(webc);
            rate.reports += reports;
            rate.failures += failures;
            rate.clients += clients;
            rate.failing_clients += failing;
        }
    }
    Ok(out)
}
