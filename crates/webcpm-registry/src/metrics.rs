//! `GET /metrics`: the registry's counters in the Prometheus text format (0.0.4), for a
//! Prometheus server to scrape. Every name starts with `webcpm_registry_`:
//!
//! ```text
//! http_requests_total{route,method,status}       requests answered, by route pattern
//! http_request_duration_seconds{route}           time to the answer's start (histogram)
//! resolves_total                                 packages looked up by GraphQL queries
//! publishes_total{outcome="ok|refused"}          publishPackage mutations
//! downloads_total{status}                        blob answers (200, 206, 307 to the blob store)
//! reports_total{outcome="ok|failed"}             outcome reports stored
//! rate_limited_total{key="address|token"}        requests answered 429
//! rollout_policy_version, rollout_v3_percent,
//! rollout_halted, rollout_rolled_back            the policy in force, read at each scrape
//! ```
//!
//! The route label is the route's pattern (`/blobs/{file}`), never the path a client sent, so
//! that the number of series stays fixed.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::db::Pool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key: &'static str,
}

fn latency() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The registry's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    resolves: Counter,
    publishes: Family<OutcomeLabels, Counter>,
    downloads: Family<StatusLabels, Counter>,
    reports: Family<OutcomeLabels, Counter>,
    limited: Family<KeyLabels, Counter>,
    policy_version: Gauge,
    v3_percent: Gauge,
    halted: Gauge,
    rolled_back: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("webcpm_registry"),
            requests: Family::default(),
            durations: Family::new_with_constructor(latency),
            resolves: Counter::default(),
            publishes: Family::default(),
            downloads: Family::default(),
            reports: Family::default(),
            limited: Family::default(),
            policy_version: Gauge::default(),
            v3_percent: Gauge::default(),
            halted: Gauge::default(),
            rolled_back: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register("http_requests", "Requests answered", m.requests.clone());
        r.register(
            "http_request_duration_seconds",
            "Time to the start of the answer",
            m.durations.clone(),
        );
        r.register("resolves", "Packages looked up", m.resolves.clone());
        r.register("publishes", "Publish mutations", m.publishes.clone());
        r.register("downloads", "Package file answers", m.downloads.clone());
        r.register("reports", "Outcome reports stored", m.reports.clone());
        r.register("rate_limited", "Requests answered 429", m.limited.clone());
        for (name, help, gauge) in [
            (
                "rollout_policy_version",
                "The policy in force",
                &m.policy_version,
            ),
            (
                "rollout_v3_percent",
                "The global v3 percentage",
                &m.v3_percent,
            ),
            ("rollout_halted", "1 while the rollout is halted", &m.halted),
            (
                "rollout_rolled_back",
                "1 while rolled back to v2",
                &m.rolled_back,
            ),
        ] {
            r.register(name, help, gauge.clone());
        }
        m
    }

    pub(crate) fn resolved(&self) {
        self.resolves.inc();
    }

    pub(crate) fn published(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "refused" };
        self.publishes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub(crate) fn downloaded(&self, status: StatusCode) {
        let labels = StatusLabels {
            status: status.as_u16(),
        };
        self.downloads.get_or_create(&labels).inc();
    }

    pub(crate) fn reported(&self, ok: u64, failed: u64) {
        for (outcome, n) in [("ok", ok), ("failed", failed)] {
            self.reports
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n);
        }
    }

    pub(crate) fn rate_limited(&self, key: &'static str) {
        self.limited.get_or_create(&KeyLabels { key }).inc();
    }

    fn observe(&self, route: String, method: String, status: StatusCode, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(seconds);
        let labels = RequestLabels {
            route,
            method,
            status: status.as_u16(),
        };
        self.requests.get_or_create(&labels).inc();
    }
}

/// Counts each request by its route's pattern.
pub(crate) async fn count(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = request.method().as_str().to_string();
    let answer = next.run(request).await;
    metrics.observe(route, method, answer.status(), started);
    answer
}

/// `GET /metrics`.
pub(crate) fn routes(metrics: Arc<Metrics>, pool: Arc<Pool>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, pool))
}

async fn scrape(State((metrics, pool)): State<(Arc<Metrics>, Arc<Pool>)>) -> Response {
    let policy = tokio::task::spawn_blocking(move || pool.with(super::fleet::policy_in_force))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match policy {
        Ok(p) => {
            metrics.policy_version.set(p.policy_version as i64);
            metrics.v3_percent.set(i64::from(p.v3_percent));
            metrics.halted.set(i64::from(p.halted));
            metrics.rolled_back.set(i64::from(p.rolled_back));
        }
        Err(e) => tracing::warn!("metrics: cannot read the rollout policy: {e}"),
    }
    let mut text = String::new();
    if let Err(e) =
        prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics.registry)
    {
        tracing::error!("cannot encode the metrics: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
