//! A few open connections to one database, shared by a server's request handlers: each request
//! takes one (opening a new one when all are busy) and puts it back when it is done, so that
//! requests do not wait for one another and a replica keeps its connections to PostgreSQL open.

use std::sync::Mutex;

use super::{Database, Db, DbError};

/// How many idle connections a pool keeps: as many as requests a replica serves at once, so
/// that a busy replica does not connect anew for each request.
const KEEP: usize = 64;

#[derive(Debug)]
pub(crate) struct Pool {
    database: Database,
    idle: Mutex<Vec<Db>>,
}

impl Pool {
    /// A pool that starts with `first`, an open connection to `database`.
    pub(crate) fn new(database: Database, first: Db) -> Pool {
        Pool {
            database,
            idle: Mutex::new(vec![first]),
        }
    }

    /// Runs `f` on a connection of the pool. Blocking: call it off the async threads.
    pub(crate) fn with<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        let taken = self.lock().pop();
        let mut db = match taken {
            Some(db) => db,
            // The first connection migrated the schema: the others only connect.
            None => Db::connect(&self.database)?,
        };
        let result = f(&mut db);
        // A connection whose statement failed may be broken (a PostgreSQL server that went
        // away): it is dropped rather than handed to the next request.
        if result.is_ok() {
            let mut idle = self.lock();
            if idle.len() < KEEP {
                idle.push(db);
            }
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Db>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Pool {
    /// Closing a PostgreSQL connection blocks on its own runtime, which may not happen on an
    /// async thread (the last server task may drop the pool as it shuts down): the connections
    /// are closed on a thread of their own there.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.lock());
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}
