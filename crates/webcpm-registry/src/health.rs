//! The routes a load balancer and an orchestrator probe:
//! - `GET /healthz`: `200 ok` while the process serves requests (liveness);
//! - `GET /readyz`: `200` when the database answers a query and the blob store is reachable
//!   (the directory is writable, or the OCI registry answers), else `503`; the JSON body says
//!   which part failed and why (readiness: take the replica out of rotation, do not restart it).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::blobs::BlobStore;
use super::db::Pool;
use super::db::sql::args;

/// How long a readiness check waits for each part.
const PROBE: Duration = Duration::from_secs(3);

struct Parts {
    pool: Arc<Pool>,
    blobs: BlobStore,
}

pub(crate) fn routes(pool: Arc<Pool>, blobs: BlobStore) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Arc::new(Parts { pool, blobs }))
}

fn database(pool: &Pool) -> Result<(), String> {
    pool.with(|db| {
        let e = db.sql();
        db.conn().query("SELECT 1", args![]).map_err(e)
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

async fn blob_store(blobs: &BlobStore) -> Result<(), String> {
    match blobs {
        BlobStore::Dir { root } => {
            let tmp = root.join("tmp");
            let probe = tmp.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&probe)?;
                tempfile::tempfile_in(&probe).map(drop)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{} is not writable: {e}", tmp.display()))
        }
        BlobStore::Oci(repo) => repo.ping().await.map_err(|e| e.to_string()),
    }
}

async fn ready(State(parts): State<Arc<Parts>>) -> Response {
    let pool = Arc::clone(&parts.pool);
    let db = tokio::time::timeout(PROBE, tokio::task::spawn_blocking(move || database(&pool)));
    let db = match db.await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {PROBE:?}")),
    };
    let blobs = match tokio::time::timeout(PROBE, blob_store(&parts.blobs)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {PROBE:?}")),
    };
    let ok = db.is_ok() && blobs.is_ok();
    let word = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let body = serde_json::json!({
        "ready": ok,
        "database": word(&db),
        "blobs": word(&blobs),
    });
    if !ok {
        tracing::warn!("not ready: {body}");
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
