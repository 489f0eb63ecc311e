//! The rollout routes, nested under `/rollout` next to `/graphql`:
//! - `GET /rollout/policy.json`: the policy in force, signed ([`webcpm_formats::policy_document`]), with
//!   an `ETag` (the SHA-256 of the body) and `304` for a matching `If-None-Match`. It is signed
//!   afresh per request, with `issued_at` rounded down to a quarter of the lifetime: ed25519 is
//!   deterministic, so the body and its ETag change only when the policy does or a quarter of
//!   its lifetime has passed, and a client always holds a copy valid for three quarters of it.
//!   `503` while the registry has no key.
//! - `POST /rollout/reports`: a batch of outcome reports, with a report token as its bearer
//!   token (`401` without one, unless the registry was started with `--open-reports`); stored up
//!   to the client's bound, then the automation looks at the window and may halt or roll back
//!   (a new policy version). Answers `{"stored": n, "dropped": m}`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::state::{self, FleetError};
use super::{automation, keys, outcomes};
use crate::db::Pool;
use crate::package::Sha256Digest;
use webcpm_formats::policy_document::{self as document, PolicyDocument};
use webcpm_formats::report::Batch;

/// What the rollout routes share: the key directory and the registry's database.
pub struct Service {
    pub(crate) keys: PathBuf,
    pub(crate) pool: Arc<Pool>,
    /// How long a signed policy stays valid.
    pub(crate) ttl: Duration,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Take reports without a report token (`--open-reports`).
    pub(crate) open_reports: bool,
}

/// The routes: `/rollout/policy.json` and `/rollout/reports` (`/rollout` itself is the web
/// page's).
pub(crate) fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/rollout/policy.json", get(policy))
        .route("/rollout/reports", post(take_reports))
        .with_state(service)
}

use webcpm_formats::policy_document::now;

fn failure(status: StatusCode, text: String) -> Response {
    tracing::warn!("{text}");
    (status, text).into_response()
}

/// The signed policy in force, as served now.
pub(super) fn signed(service: &Service, now: i64) -> Result<Option<Vec<u8>>, String> {
    let Some(signer) = keys::signer(&service.keys).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // Said once a minute, not at every client's refresh.
    static SAID_AT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let due = || {
        let said = SAID_AT.load(std::sync::atomic::Ordering::Relaxed);
        now - said >= 60
            && SAID_AT
                .compare_exchange(
                    said,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
    };
    if let Some(e) = signer
        .endorsement
        .as_ref()
        .filter(|e| e.expires_at <= now && due())
    {
        tracing::error!(
            "the policy signing key's endorsement expired at {} (Unix time): clients refuse the policy; run `webcpm registry keygen --rotate`",
            e.expires_at
        );
    }
    let state = service
        .pool
        .with(state::current)
        .map_err(|e| e.to_string())?;
    let quarter = (service.ttl.as_secs() as i64 / 4).max(1);
    let issued_at = now - now.rem_euclid(quarter);
    let policy = PolicyDocument {
        policy_version: state.policy_version,
        v3_percent: state.v3_percent,
        packages: state.packages,
        rolled_back: state.rolled_back,
        halted: state.halted,
        issued_at,
        expires_at: issued_at + service.ttl.as_secs() as i64,
    };
    let envelope = document::sign(&signer.key, policy, signer.endorsement, signer.revocations);
    Ok(Some(
        serde_json::to_vec(&envelope).expect("plain data serializes"),
    ))
}

async fn policy(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let answer = tokio::task::spawn_blocking(move || signed(&service, now())).await;
    let body = match answer {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "this registry has no policy key: run `webcpm registry keygen --root DIR`".into(),
            );
        }
        Ok(Err(e)) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let etag = format!("\"{}\"", Sha256Digest::of(&body).hex());
    let etag_value = HeaderValue::from_str(&etag).expect("hex is a valid header");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Stores a batch that came with `bearer`, then lets the automation look at the window.
pub(super) fn take(
    service: &Service,
    batch: &Batch,
    bearer: Option<&str>,
    now: i64,
) -> Result<outcomes::Taken, FleetError> {
    service.pool.with(|db| {
        let token = match bearer {
            Some(text) => crate::tokens::report_token(db, text)?,
            None => None,
        };
        let token = match token {
            Some(sha256) => sha256,
            None if service.open_reports => String::new(),
            None => return Err(FleetError::Unauthorized),
        };
        let automation = state::automation(db)?;
        let taken = outcomes::insert(db, batch, &token, now, automation.window)?;
        let window = outcomes::window(db, automation.window, now)?;
        let current = state::current(db)?;
        if let Some((change, why)) = automation::decide(&window, &automation, &current) {
            debug_assert!(change.toward_v2());
            if let Some((next, _)) = state::change(db, &change, "automation", &why, now)? {
                tracing::warn!(
                    "{} (policy v{}): {why}",
                    change.action(),
                    next.policy_version
                );
            }
        }
        let kept = &batch.reports[..taken.stored];
        let failed = kept.iter().filter(|r| !r.ok).count() as u64;
        service.metrics.reported(kept.len() as u64 - failed, failed);
        Ok(taken)
    })
}

async fn take_reports(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    batch: axum::Json<Batch>,
) -> Response {
    let batch = batch.0;
    let bearer = crate::routes::bearer(&headers);
    let answer =
        tokio::task::spawn_blocking(move || take(&service, &batch, bearer.as_deref(), now())).await;
    match answer {
        Ok(Ok(taken)) => (StatusCode::OK, axum::Json(taken)).into_response(),
        Ok(Err(FleetError::Unauthorized)) => {
            let mut answer = failure(
                StatusCode::UNAUTHORIZED,
                "this registry takes outcome reports with a report token only: make one with `webcpm-registry token create --reports --name NAME` and give it to clients as telemetry.report_token".into(),
            );
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"webcpm reports\""),
            );
            answer
        }
        Ok(Err(FleetError::Refused(why))) => failure(StatusCode::BAD_REQUEST, why),
        Ok(Err(e)) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
