//! Request ids and the access log.
//!
//! Every request has an id: the client's `x-request-id` when it sent a sane one (1 to 64 of
//! `A-Z a-z 0-9 . _ -`), else 16 random bytes in hex. It is echoed in the answer's
//! `x-request-id` and named in the log.
//!
//! `--access-log FILE` gets one line per request, appended and written at once when the answer
//! starts. The text format (the default):
//! `METHOD PATH RANGE_OR_- STATUS BYTES auth=yes|no fault=NAME|- t=MILLIS id=ID`, where `BYTES`
//! is the body's length as sent in `Content-Length` (0 for `HEAD` and for bodies of unknown
//! length), `auth` says whether the request carried an `Authorization` header (never its value),
//! `fault` names the fault rule that fired ([`super::faults`]), and `t` is when the request
//! arrived, in milliseconds since the Unix epoch. With `--access-log-format json`, the same
//! fields as one JSON object per line, with the client's address and the milliseconds taken:
//! `{"t":…,"id":…,"client":…,"method":…,"path":…,"range":…,"status":…,"bytes":…,"auth":…,
//! "fault":…,"ms":…}`. An upload's path is logged with the first 8 digits of its id only: the
//! whole id is the right to write to the upload.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::faults;

/// The header that carries a request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// How the access log is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of space-separated columns
    #[default]
    Text,
    /// One JSON object per line
    Json,
}

/// The `--access-log` file, opened for appending.
pub(crate) struct AccessLog {
    file: Mutex<std::fs::File>,
    format: LogFormat,
}

impl AccessLog {
    pub(crate) fn new(file: std::fs::File, format: LogFormat) -> Self {
        AccessLog {
            file: Mutex::new(file),
            format,
        }
    }

    fn write_line(&self, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            tracing::warn!("cannot write the access log: {e}");
        }
    }
}

/// The client's id when it is sane, else a new one.
fn request_id(request: &Request) -> String {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    match given {
        Some(id) => id.to_string(),
        None => {
            let mut bytes = [0u8; 16];
            // Without a random source the id is still unique enough to read a log by.
            if getrandom::fill(&mut bytes).is_err() {
                bytes[..8].copy_from_slice(&now_millis().to_le_bytes()[..8]);
            }
            hex::encode(bytes)
        }
    }
}

fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// What one log line says.
struct Entry<'a> {
    arrived: u128,
    id: &'a str,
    client: Option<SocketAddr>,
    method: &'a Method,
    path: &'a str,
    range: &'a str,
    status: u16,
    bytes: u64,
    auth: bool,
    fault: &'a str,
    millis: u128,
}

impl Entry<'_> {
    fn line(&self, format: LogFormat) -> String {
        let auth = if self.auth { "yes" } else { "no" };
        match format {
            LogFormat::Text => format!(
                "{} {} {} {} {} auth={auth} fault={} t={} id={}",
                self.method,
                self.path,
                self.range,
                self.status,
                self.bytes,
                self.fault,
                self.arrived,
                self.id
            ),
            LogFormat::Json => serde_json::json!({
                "t": self.arrived as u64,
                "id": self.id,
                "client": self.client.map(|c| c.ip().to_string()),
                "method": self.method.as_str(),
                "path": self.path,
                "range": self.range,
                "status": self.status,
                "bytes": self.bytes,
                "auth": self.auth,
                "fault": self.fault,
                "ms": self.millis as u64,
            })
            .to_string(),
        }
    }
}

/// Gives the request its id, then writes the access log line and a tracing event.
pub(crate) async fn log_request(
    State(log): State<Option<Arc<AccessLog>>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let arrived = now_millis();
    let id = request_id(&request);
    let method = request.method().clone();
    let path = shown_path(request.uri().path());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let auth = request.headers().contains_key(header::AUTHORIZATION);
    let range: String = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let bytes = if method == Method::HEAD {
        0
    } else {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or_else(|| HttpBody::size_hint(response.body()).exact())
            .unwrap_or(0)
    };
    let entry = Entry {
        arrived,
        id: &id,
        client,
        method: &method,
        path: &path,
        range: if range.is_empty() { "-" } else { &range },
        status: response.status().as_u16(),
        bytes,
        auth,
        fault: response
            .extensions()
            .get::<faults::Applied>()
            .map_or("-", |a| a.0),
        millis: started.elapsed().as_millis(),
    };
    tracing::debug!("{}", entry.line(LogFormat::Text));
    if let Some(log) = &log {
        log.write_line(&entry.line(log.format));
    }
    response
}

/// The path as logged: `/uploads/{id}` keeps 8 digits of its id.
fn shown_path(path: &str) -> String {
    match path.strip_prefix("/uploads/") {
        Some(id) if id.len() > 8 => format!("/uploads/{}…", &id[..id.floor_char_boundary(8)]),
        _ => path.to_string(),
    }
}
