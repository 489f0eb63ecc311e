//! Upload sessions, kept where every replica sees them: the session in the database (table
//! `uploads`) and each chunk in the blob store (`DIR/tmp/upload-{id}-{offset}-{sha256}`, or a
//! blob of the OCI registry, which its garbage collection removes once no manifest names it). So
//! any replica takes any chunk of any upload, and publishes it.
//!
//! A chunk is stored first and recorded second, by a conditional update that names the bytes
//! received so far: of two requests racing for the same offset, one is recorded and the other
//! answered `409`. A session whose URL expired more than an hour ago is removed as new ones
//! open.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::blobs::{BlobError, BlobStore};
use super::db::sql::{Row, Val, args};
use super::db::{Db, DbError};
use crate::package::Sha256Digest;

/// How long an upload is kept after its URL expired, for a slow upload to be published.
pub(crate) const SESSION: i64 = 3600;

/// One chunk: where it starts, how long it is, and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Chunk {
    pub start: u64,
    pub len: u64,
    pub sha256: Sha256Digest,
}

/// An upload as the database holds it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub namespace: String,
    /// When its URL expires (Unix time).
    pub expires_at: i64,
    pub received: u64,
    pub total: Option<u64>,
    pub chunks: Vec<Chunk>,
}

impl Session {
    pub(crate) fn complete(&self) -> bool {
        self.total == Some(self.received)
    }
}

/// Why an upload could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("the upload's chunk at byte {0} is missing or damaged in the blob store")]
    Damaged(u64),
    #[error("the upload task failed: {0}")]
    Task(String),
}

/// Whether `id` can name an upload: 64 lower-case hex digits, as [`open`]'s callers make them.
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn read(row: &Row) -> Result<Session, String> {
    let e = |x: super::db::sql::BadColumn| x.to_string();
    let total = match row.0.get(4) {
        Some(Val::Null) | None => None,
        _ => Some(row.int(4).map_err(e)? as u64),
    };
    Ok(Session {
        namespace: row.text(0).map_err(e)?,
        expires_at: row.int(1).map_err(e)?,
        received: row.int(2).map_err(e)? as u64,
        total,
        chunks: serde_json::from_str(&row.text(3).map_err(e)?).map_err(|x| x.to_string())?,
    })
}

/// Opens a session for `namespace`, and removes the stale ones (with their chunks).
pub(crate) fn open(
    db: &mut Db,
    blobs: &BlobStore,
    id: &str,
    namespace: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), UploadError> {
    let e = db.sql();
    let stale = db
        .conn()
        .query(
            "SELECT id, chunks FROM uploads WHERE expires_at < $1",
            args![now - SESSION],
        )
        .map_err(&e)?;
    for row in stale {
        let (Ok(old), Ok(chunks)) = (row.text(0), row.text(1)) else {
            continue;
        };
        let chunks: Vec<Chunk> = serde_json::from_str(&chunks).unwrap_or_default();
        blobs.drop_chunks(&old, &chunks);
        db.conn()
            .execute("DELETE FROM uploads WHERE id = $1", args![old.as_str()])
            .map_err(&e)?;
    }
    db.conn()
        .execute(
            "INSERT INTO uploads (id, namespace, expires_at, received, total, chunks)
             VALUES ($1, $2, $3, 0, NULL, '[]')",
            args![id, namespace, expires_at],
        )
        .map_err(&e)?;
    Ok(())
}

/// The session `id`, if there is one.
pub(crate) fn get(db: &mut Db, id: &str) -> Result<Option<Session>, DbError> {
    let e = db.sql();
    let row = db
        .conn()
        .query_opt(
            "SELECT namespace, expires_at, received, chunks, total FROM uploads WHERE id = $1",
            args![id],
        )
        .map_err(&e)?;
    row.map(|r| read(&r))
        .transpose()
        .map_err(|what| DbError::Corrupt {
            place: db.place().to_string(),
            what: format!("upload {id}: {what}"),
        })
}

/// Records `chunk` (already in the blob store) when the session still stands where `seen` did;
/// `false` when another request moved it first (its chunk is then dropped, unless it is the
/// same bytes at the same place). A chunk at 0 starts the upload afresh.
pub(crate) fn record(
    db: &mut Db,
    blobs: &BlobStore,
    id: &str,
    seen: &Session,
    chunk: Chunk,
    total: u64,
) -> Result<bool, UploadError> {
    let e = db.sql();
    let mut chunks = if chunk.start == 0 {
        Vec::new()
    } else {
        seen.chunks.clone()
    };
    let end = chunk.start + chunk.len;
    chunks.push(chunk.clone());
    let before = serde_json::to_string(&seen.chunks).expect("plain data serializes");
    let after = serde_json::to_string(&chunks).expect("plain data serializes");
    let changed = db
        .conn()
        .execute(
            "UPDATE uploads SET received = $1, total = $2, chunks = $3
             WHERE id = $4 AND received = $5 AND chunks = $6",
            args![
                end as i64,
                total as i64,
                after,
                id,
                seen.received as i64,
                before
            ],
        )
        .map_err(&e)?;
    if changed != 1 {
        let now = get(db, id)?;
        if !now.is_some_and(|s| s.chunks.contains(&chunk)) {
            blobs.drop_chunks(id, std::slice::from_ref(&chunk));
        }
        return Ok(false);
    }
    if chunk.start == 0 {
        let replaced: Vec<Chunk> = seen
            .chunks
            .iter()
            .filter(|c| **c != chunk)
            .cloned()
            .collect();
        blobs.drop_chunks(id, &replaced);
    }
    Ok(true)
}

/// Forgets a published upload: its session, if it still holds the chunks of `seen` (not when
/// a chunk came meanwhile, nor when another publish forgot it first), and then its chunks.
pub(crate) fn finish(
    db: &mut Db,
    blobs: &BlobStore,
    id: &str,
    seen: &Session,
) -> Result<(), DbError> {
    let e = db.sql();
    let chunks = serde_json::to_string(&seen.chunks).expect("plain data serializes");
    let removed = db
        .conn()
        .execute(
            "DELETE FROM uploads WHERE id = $1 AND received = $2 AND chunks = $3",
            args![id, seen.received as i64, chunks],
        )
        .map_err(&e)?;
    if removed == 1 {
        blobs.drop_chunks(id, &seen.chunks);
    }
    Ok(())
}

/// Writes the chunks of a session, in order, into a new file in `tmp`, checking each. The
/// session and its chunks stay until [`finish`]: a publish that fails can be asked again.
pub(crate) fn assemble(
    blobs: &BlobStore,
    tmp: &Path,
    id: &str,
    session: &Session,
) -> Result<PathBuf, UploadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BlobError::Io { path, source }
    };
    std::fs::create_dir_all(tmp).map_err(io(tmp))?;
    let (mut out, path) = tempfile::Builder::new()
        .prefix(&format!("upload-{id}-"))
        .tempfile_in(tmp)
        .and_then(|t| t.keep().map_err(|e| e.error))
        .map_err(io(tmp))?;
    let mut at = 0;
    for chunk in &session.chunks {
        if chunk.start != at {
            let _ = std::fs::remove_file(&path);
            return Err(UploadError::Damaged(at));
        }
        let Some(bytes) = blobs.read_chunk(id, chunk)? else {
            let _ = std::fs::remove_file(&path);
            return Err(UploadError::Damaged(chunk.start));
        };
        out.write_all(&bytes).map_err(io(&path))?;
        at += chunk.len;
    }
    out.sync_all().map_err(io(&path))?;
    Ok(path)
}
