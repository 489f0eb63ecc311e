//! The `events` table: an append-only log of what changed the store (installs, repoints,
//! uninstalls, gc, clean), newest last.
//!
//! An event that goes with a change is written in that change's transaction
//! ([`insert_event`]), so the log never names a change that did not happen. Rows are never
//! updated or deleted: even `cache clean`, which empties every other table but `meta`, only adds
//! an event saying so.

use rusqlite::{Connection, params};

use super::{Index, IndexError, now_ms};
use webcpm_formats::package::PackageName;

/// An entry of the event log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub at_ms: i64,
    pub kind: String,
    pub package: Option<String>,
    pub detail: String,
}

/// Appends an event, on `conn` or in the transaction it derefs from.
pub(super) fn insert_event(
    conn: &Connection,
    at: i64,
    kind: &str,
    package: Option<&PackageName>,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO events (at, kind, package, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![at, kind, package, detail])
        .map(drop)
}

impl Index {
    pub fn log_event(
        &self,
        kind: &str,
        package: Option<&PackageName>,
        detail: &str,
    ) -> Result<(), IndexError> {
        insert_event(&self.conn(), now_ms(), kind, package, detail).map_err(self.sql())
    }

    /// The last `limit` events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, IndexError> {
        let mut events = self.rows(
            "SELECT at, kind, package, detail FROM events ORDER BY id DESC LIMIT ?1",
            [limit as i64],
            |r| {
                Ok(Event {
                    at_ms: r.get(0)?,
                    kind: r.get(1)?,
                    package: r.get(2)?,
                    detail: r.get(3)?,
                })
            },
        )?;
        events.reverse();
        Ok(events)
    }
}
