//! What one request, one address and one token may take of the server ([`Limits`]), and the
//! middleware that holds them:
//! - **bodies:** at most `body` bytes (1 MiB) on every route but the uploads, which take
//!   `MAX_CHUNK` per request; a larger `Content-Length` is answered `413` before a byte is read,
//!   a body that grows past it or arrives slower than `body_timeout` allows is cut with `413` or
//!   `408`. So a slow or endless body holds no memory and no handler;
//! - **time:** a handler that has not answered within `request_timeout` is answered `503` with
//!   `Retry-After`; downloads stream past that (the limit is on the answer's start);
//! - **rates:** a token bucket per client address and one per publish token (the SHA-256 of the
//!   bearer token), each `RATE:BURST` requests per second (default 100, bursts of 200; `0` turns
//!   one off); past it, `429` with `Retry-After`, which webcpm's client honours. Behind a proxy,
//!   `--trust-forwarded-for` takes the address the proxy appends to `X-Forwarded-For`. The
//!   health and metrics routes are not counted;
//! - **panics:** a handler that panics is answered `500` with a one-line body (the panic goes to
//!   the log, never to the client);
//! - **connections** ([`super::server`]): at most `max_connections`, `connections_per_address`
//!   from one address, and `header_timeout` to send a request's headers.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::BodyExt;

use super::metrics::Metrics;
use super::publish_api::MAX_CHUNK;
use crate::package::Sha256Digest;

/// A request rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(self.per_second))?;
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `RATE` or `RATE:BURST` (requests per second; `0` is no limit).
    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || format!("`{text}` is not a rate: give RATE or RATE:BURST, such as 100:200");
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let per_second: u32 = rate.trim().parse().map_err(|_| bad())?;
        let burst = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => per_second.saturating_mul(2),
        };
        Ok(Rate { per_second, burst })
    }
}

/// Every limit of the server, with [`Limits::default`] for a service on the internet.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body outside the uploads (1 MiB).
    pub body: usize,
    /// How long a body may take to arrive (30 s; uploads get four times as long).
    pub body_timeout: Duration,
    /// How long a handler may take to start its answer (120 s: a publish converts the package).
    pub request_timeout: Duration,
    /// Requests per client address.
    pub per_address: Rate,
    /// Requests per publish token.
    pub per_token: Rate,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a proxy).
    pub trust_forwarded_for: bool,
    /// Open connections at most (1024).
    pub max_connections: usize,
    /// Open connections from one address at most (64).
    pub connections_per_address: usize,
    /// How long a client may take to send a request's headers (10 s).
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body: 1 << 20,
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            per_address: Rate {
                per_second: 100,
                burst: 200,
            },
            per_token: Rate {
                per_second: 100,
                burst: 200,
            },
            trust_forwarded_for: false,
            max_connections: 1024,
            connections_per_address: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// The state of the limiting middleware.
pub(crate) struct Limiter {
    limits: Limits,
    by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    by_token: Option<DefaultKeyedRateLimiter<Sha256Digest>>,
    /// Permits for upload bodies in memory ([`UPLOADS_AT_ONCE`]).
    uploads: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
}

/// The route that is never rate limited: a load balancer's liveness probe, which touches
/// nothing but the process. (`/readyz` and `/metrics` ask the database: they are limited as
/// every other route is.)
const UNCOUNTED: &[&str] = &["/healthz"];

/// Upload bodies read at once, at most (each up to [`MAX_CHUNK`]): past that, `503` with
/// `Retry-After`, so that uploads cannot hold more than this many chunks' memory.
const UPLOADS_AT_ONCE: usize = 16;

/// The network a rate counts by: an IPv4 address, or an IPv6 address's /64 (one machine is
/// commonly given a whole /64, and could otherwise take a new address for every request).
pub(crate) fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
        v4 => v4,
    }
}

impl Limiter {
    pub(crate) fn new(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Limiter {
            by_address: limits.per_address.quota().map(RateLimiter::dashmap),
            by_token: limits.per_token.quota().map(RateLimiter::dashmap),
            uploads: Arc::new(tokio::sync::Semaphore::new(UPLOADS_AT_ONCE)),
            limits,
            metrics,
        }
    }

    /// The client's address, as a rate's key: the peer's, or behind a trusted proxy the last
    /// forwarded one (what the proxy saw; anything before it, the client may have written).
    fn address(&self, request: &Request) -> Option<IpAddr> {
        let forwarded = self.limits.trust_forwarded_for.then(|| {
            let last = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .next_back()?;
            last.to_str()
                .ok()?
                .rsplit(',')
                .next()?
                .trim()
                .parse::<IpAddr>()
                .ok()
        });
        let ip = match forwarded.flatten() {
            Some(ip) => ip,
            None => request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()?
                .0
                .ip(),
        };
        Some(network(ip))
    }

    /// `Some(wait)` when the request is over a rate.
    fn over(&self, request: &Request) -> Option<(&'static str, Duration)> {
        let now = DefaultClock::default().now();
        if let Some(limiter) = &self.by_token
            && let Some(token) = super::routes::bearer(request.headers())
            && let Err(not_until) = limiter.check_key(&Sha256Digest::of(token.as_bytes()))
        {
            return Some(("token", not_until.wait_time_from(now)));
        }
        if let Some(limiter) = &self.by_address
            && let Some(ip) = self.address(request)
            && let Err(not_until) = limiter.check_key(&ip)
        {
            return Some(("address", not_until.wait_time_from(now)));
        }
        None
    }

    /// Forgets buckets that are full again, so that the maps do not grow with every address
    /// ever seen.
    pub(crate) fn forget_idle(&self) {
        for limiter in self.by_address.iter() {
            limiter.retain_recent();
        }
        for limiter in self.by_token.iter() {
            limiter.retain_recent();
        }
    }
}

fn refuse(status: StatusCode, text: &str, retry_after: Option<Duration>) -> Response {
    let mut answer = (status, format!("{text}\n")).into_response();
    if let Some(wait) = retry_after {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    answer
}

/// Rate limits, then the body limits, then the handler under its deadline.
pub(crate) async fn limit(
    State(limiter): State<Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if UNCOUNTED.contains(&path) {
        return next.run(request).await;
    }
    if let Some((key, wait)) = limiter.over(&request) {
        limiter.metrics.rate_limited(key);
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "too many requests from this {key}; slow down and retry after the time in Retry-After"
            ),
            Some(wait),
        );
    }
    let upload = path.starts_with("/uploads/");
    if upload && !crate::uploads::valid_id(&path["/uploads/".len()..]) {
        return refuse(StatusCode::NOT_FOUND, "no such upload", None);
    }
    // Held until the body is read and handled: what an upload's chunk occupies.
    let _reading = if upload {
        match Arc::clone(&limiter.uploads).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the registry is taking as many uploads as it can; retry",
                    Some(Duration::from_secs(1)),
                );
            }
        }
    } else {
        None
    };
    let request = match read_body(&limiter.limits, request).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    match tokio::time::timeout(limiter.limits.request_timeout, next.run(request)).await {
        Ok(answer) => answer,
        Err(_) => {
            tracing::warn!(
                "a request took longer than {:?}",
                limiter.limits.request_timeout
            );
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry took too long to answer; retry",
                Some(Duration::from_secs(1)),
            )
        }
    }
}

/// Reads the whole body within the route's size and time, so that the handler gets it at once.
async fn read_body(limits: &Limits, request: Request) -> Result<Request, Response> {
    let upload = request.uri().path().starts_with("/uploads/");
    let (most, time) = if upload {
        (MAX_CHUNK, limits.body_timeout * 4)
    } else {
        (limits.body, limits.body_timeout)
    };
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than the {most} bytes this route takes"),
            None,
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > most as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, most);
    match tokio::time::timeout(time, limited.collect()).await {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            &format!("the request body could not be read: {e}"),
            None,
        )),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            &format!("the request body did not arrive within {time:?}"),
            None,
        )),
    }
}

/// The answer to a handler that panicked.
pub(crate) fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the registry failed on this request; the operator's log has the details\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            network(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            network(ip("2001:db8:1:2::7"))
        );
        assert_ne!(network(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(network(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(network(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn rates_parse() {
        assert_eq!(
            "100:200".parse::<Rate>().unwrap(),
            Rate {
                per_second: 100,
                burst: 200
            }
        );
        assert_eq!("5".parse::<Rate>().unwrap().burst, 10);
        assert_eq!("0".parse::<Rate>().unwrap().quota(), None);
        assert!("fast".parse::<Rate>().is_err());
        assert!("1:x".parse::<Rate>().is_err());
    }
}
