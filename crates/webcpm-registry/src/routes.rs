//! The local registry's HTTP side: the routes, blob downloads with `Range` support, and the
//! access log.
//!
//! Routes: `POST`/`GET /graphql` (the schema in [`super::graphql`]), `GET`/`HEAD
//! /blobs/{sha256}.webc`, and the rollout routes under `/rollout`, which the caller builds. A blob response carries `Content-Length`, `ETag: "<sha256hex>"`,
//! `Accept-Ranges: bytes` and `Content-Type: application/webc`; one `Range: bytes=a-b | a- | -n`
//! gives `206` with `Content-Range`, an unsatisfiable one `416`, several ranges or a malformed
//! header the whole file (`200`), and an `If-Range` that is not the ETag the whole file too.
//! Files are streamed in chunks, never read whole into memory. When the blobs are in an OCI
//! registry (`--blobs`), a blob request is answered `307` to the blob there, which serves the
//! same headers and `Range` itself.
//!
//! The access log and request ids are [`super::access`]'s; the limits [`super::limits`]'s.
//!
//! Every handler gets the shared [`AppState`]; the fault rules, when `--faults` was given, are
//! consulted there and shape the answer through [`super::faults`]. With `--real-shapes`, a
//! download needs a valid, unexpired signature in its query ([`super::shapes`]), else `403`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::blobs::{BlobSource, BlobStore};
use super::db::Pool;
use super::faults::{self, Faults, GraphqlFault};
use super::metrics::Metrics;
use super::publish_api::{self, Bearer, FORBIDDEN, Publishing, UNAUTHENTICATED, UNAVAILABLE};
use super::schema::RegistrySchema;
use super::web;
use crate::package::Sha256Digest;

/// The size of the chunks a blob is streamed in.
const CHUNK: usize = 64 * 1024;

/// What every request handler can see.
pub(crate) struct AppState {
    /// Where the package files are.
    pub blobs: BlobStore,
    /// The database's connections.
    pub pool: Arc<Pool>,
    pub schema: RegistrySchema,
    pub metrics: Arc<Metrics>,
    /// The `--faults` rules; `None` serves every request faithfully.
    pub faults: Option<Arc<Faults>>,
    /// `--real-shapes`: downloads need a signed URL.
    pub shapes: Option<super::shapes::Shapes>,
    /// Uploads in progress, shared with the publish mutations.
    pub publishing: Arc<Publishing>,
    /// The rollout policy's key directory, for the web page.
    pub keys: std::path::PathBuf,
}

/// The registry's routes, with the rollout's (`/rollout/...`) and the operator's (`service`:
/// health and metrics) beside them.
pub(crate) fn router(state: Arc<AppState>, rollout: Router, service: Router) -> Router {
    Router::new()
        .route("/graphql", get(graphql).post(graphql))
        .route("/blobs/{file}", get(blob))
        .with_state(state.clone())
        .merge(rollout)
        .merge(publish_api::routes(state.publishing.clone()))
        .merge(web::routes(Arc::clone(&state.pool), state.keys.clone()))
        .merge(service)
        .fallback(not_found)
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// The bearer token of a request's `Authorization` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// A refused publish is answered 401 or 403 (by the code of its first refusal), as the real
/// registry's HTTP layer does, and one left undone for a database that did not answer 503;
/// every other answer is 200.
fn status_of(response: &async_graphql::Response) -> StatusCode {
    let code = response
        .errors
        .iter()
        .find_map(|e| match e.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        });
    match code.as_deref() {
        Some(UNAUTHENTICATED) => StatusCode::UNAUTHORIZED,
        Some(FORBIDDEN) => StatusCode::FORBIDDEN,
        Some(UNAVAILABLE) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    }
}

async fn graphql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: async_graphql_axum::GraphQLRequest,
) -> Response {
    let mut request = request.into_inner().data(Bearer(bearer(&headers)));
    if let Some(faults) = &state.faults {
        // The packages asked about: `$name`, or `$n0`, `$n1`... of a batch.
        let packages: Vec<&str> = request
            .variables
            .values()
            .filter_map(|value| match value {
                async_graphql::Value::String(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        match faults.for_graphql(&packages) {
            Some(GraphqlFault::Answer(response)) => return response,
            Some(GraphqlFault::Nodes(node)) => request = request.data(node),
            None => {}
        }
    }
    let response = state.schema.execute(request).await;
    let status = status_of(&response);
    let mut answer = async_graphql_axum::GraphQLResponse::from(response).into_response();
    if status != StatusCode::OK {
        *answer.status_mut() = status;
    }
    if status == StatusCode::UNAUTHORIZED {
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"webcpm registry\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    answer
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangePlan {
    /// The whole file (no range, several ranges, or a header that does not parse).
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// A valid range that lies outside the file.
    Unsatisfiable,
}

/// Reads a single-range `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
pub(crate) fn parse_range(header: &str, len: u64) -> RangePlan {
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangePlan::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangePlan::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangePlan::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Some(suffix) = number(last) else {
            return RangePlan::Full;
        };
        if suffix == 0 || len == 0 {
            return RangePlan::Unsatisfiable;
        }
        return RangePlan::Partial {
            start: len.saturating_sub(suffix),
            end: len - 1,
        };
    }
    let Some(start) = number(first) else {
        return RangePlan::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return RangePlan::Full,
        }
    };
    if start >= len {
        return RangePlan::Unsatisfiable;
    }
    RangePlan::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// Decides the answer for a blob of `len` bytes from the request's headers.
pub(crate) fn plan_for(headers: &HeaderMap, etag: &str, len: u64) -> RangePlan {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangePlan::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && if_range.to_str().map(str::trim).ok() != Some(etag)
    {
        return RangePlan::Full;
    }
    parse_range(range, len)
}

async fn blob(
    State(state): State<Arc<AppState>>,
    UrlPath(file): UrlPath<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(digest) = file
        .strip_suffix(".webc")
        .and_then(|hex| hex.parse::<Sha256Digest>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(shapes) = &state.shapes
        && let Err(why) = shapes.check(&digest, query.as_deref())
    {
        return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    }
    let fault = match &state.faults {
        Some(faults) if !faults.is_empty() => {
            let faults = Arc::clone(faults);
            tokio::task::spawn_blocking(move || faults.for_blob(&digest))
                .await
                .unwrap_or_default()
        }
        _ => None,
    };
    if let Some(response) = fault.as_ref().and_then(faults::early_response) {
        return response;
    }
    let path = match state.blobs.source(&digest) {
        BlobSource::File(path) => path,
        BlobSource::Redirect(url) => {
            state.metrics.downloaded(StatusCode::TEMPORARY_REDIRECT);
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, url)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return StatusCode::NOT_FOUND.into_response();
        }
        Err(e) => {
            tracing::error!("cannot open {}: {e}", path.display());
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let len = match file.metadata().await {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!("cannot read {}: {e}", path.display());
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let answer = blob_response(file, &digest, len, &method, &headers, fault.as_ref()).await;
    if answer.status().is_success() {
        state.metrics.downloaded(answer.status());
    }
    answer
}

/// The response for one blob request, with the file already open; `fault` is a body-level
/// fault rule that fired for it.
async fn blob_response(
    mut file: tokio::fs::File,
    digest: &Sha256Digest,
    len: u64,
    method: &Method,
    headers: &HeaderMap,
    fault: Option<&faults::Action>,
) -> Response {
    let etag = format!("\"{}\"", digest.hex());
    let plan = match fault {
        Some(faults::Action::IgnoreRange) => RangePlan::Full,
        _ => plan_for(headers, &etag, len),
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    let (start, count) = match plan {
        RangePlan::Full => {
            builder = builder.status(StatusCode::OK);
            (0, len)
        }
        RangePlan::Partial { start, end } => {
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (start, end - start + 1)
        }
        RangePlan::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::ETAG, &etag)
                .header(header::ACCEPT_RANGES, "bytes")
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_LENGTH, HeaderValue::from_static("0"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    builder = builder.header(header::CONTENT_TYPE, "application/webc");
    if *method == Method::HEAD || count == 0 {
        return builder
            .header(header::CONTENT_LENGTH, count)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    if start > 0
        && let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await
    {
        tracing::error!("cannot seek in blob {digest}: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let stream = file_stream(file, count);
    match fault {
        Some(action) => faults::shape_blob(action, builder, stream, start, count, len),
        None => builder
            .header(header::CONTENT_LENGTH, count)
            .body(Body::from_stream(stream)),
    }
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `count` bytes of `file` from its current position, in chunks. A file that ends early is an
/// error, which cuts the response short rather than sending fewer bytes than announced.
fn file_stream(
    file: tokio::fs::File,
    count: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold((file, count), |(mut file, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let want = usize::try_from(remaining).map_or(CHUNK, |r| r.min(CHUNK));
        let mut buf = BytesMut::with_capacity(want);
        match file.read_buf(&mut (&mut buf).limit(want)).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob file is shorter than it was",
                )),
                (file, 0),
            )),
            Ok(n) => Some((Ok(buf.freeze()), (file, remaining - n as u64))),
            Err(e) => Some((Err(e), (file, 0))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        use RangePlan::*;
        let p = |h: &str| parse_range(h, 100);
        assert_eq!(p("bytes=0-9"), Partial { start: 0, end: 9 });
        assert_eq!(p("bytes=10-"), Partial { start: 10, end: 99 });
        assert_eq!(p("bytes=-10"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-1000"), Partial { start: 0, end: 99 });
        assert_eq!(p("bytes=50-1000"), Partial { start: 50, end: 99 });
        assert_eq!(p(" Bytes = 99-99 "), Partial { start: 99, end: 99 });
        assert_eq!(p("bytes=100-"), Unsatisfiable);
        assert_eq!(p("bytes=100-200"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        for ignored in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=1",
        ] {
            assert_eq!(p(ignored), Full, "{ignored:?}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
    }

    #[test]
    fn if_range_must_match_the_etag() {
        let etag = "\"abc\"";
        let mut headers = HeaderMap::new();
        assert_eq!(plan_for(&headers, etag, 10), RangePlan::Full);
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=2-3"));
        assert_eq!(
            plan_for(&headers, etag, 10),
            RangePlan::Partial { start: 2, end: 3 }
        );
        headers.insert(header::IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert_eq!(
            plan_for(&headers, etag, 10),
            RangePlan::Partial { start: 2, end: 3 }
        );
        headers.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(plan_for(&headers, etag, 10), RangePlan::Full);
        headers.insert(header::IF_RANGE, HeaderValue::from_static("W/\"abc\""));
        assert_eq!(plan_for(&headers, etag, 10), RangePlan::Full);
    }
}
