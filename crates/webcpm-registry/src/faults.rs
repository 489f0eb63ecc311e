//! Chaos mode for the local registry: `webcpm-registry serve --faults FILE` makes the server fail
//! or lie on purpose. Operators use it to rehearse a rollout before they stage v3 on a fleet
//! (serve a corrupt or truncated v3 to a canary and watch its clients fall back to v2 and record
//! why; cut downloads and watch them resume); the tests use it to show webcpm's retries, resume,
//! fallback and refusals against a real process. It ships in the binary for that first reason.
//! Without `--faults` nothing here runs, and the server logs a warning while rules are active.
//!
//! `FILE` is TOML, a list of rules tried in file order; the first rule that matches a request
//! and has not used up its `times` decides what happens to it (at most one rule per request):
//!
//! ```toml
//! [[fault]]
//! action = "cut"        # what to do (below)
//! after = 4096          # its parameters (below)
//! # Which requests (every key is optional; all that are given must hold):
//! blob = "<sha256hex>"  # downloads of this blob
//! format = "v3"         # blobs or GraphQL nodes of this format (v2 or v3)
//! package = "ns/name"   # blobs, or GraphQL queries (`$name`), of this package
//! on = "blob"           # `blob` (the default) or `graphql`; only `status` and `reset` choose
//! times = 3             # only the first 3 matching requests (default: all of them)
//! ```
//!
//! Actions on downloads (`GET /blobs/…`):
//! - `flip`: serve the bytes with one byte inverted (`offset`, default the middle of the file);
//! - `cut`: send `after` bytes of the body, then close the connection;
//! - `stall`: send `after` bytes, sleep `seconds`, then send the rest;
//! - `wrong-length`: announce `Content-Length: length` (default one more than the body);
//! - `pad`: send `bytes` extra bytes after the file, without a `Content-Length`;
//! - `ignore-range`: answer a `Range` request with the whole file (`200`), as servers without
//!   range support do.
//!
//! Actions on downloads or, with `on = "graphql"`, on `POST /graphql`:
//! - `status`: answer HTTP `status` (500, 503, 429…) with `Retry-After: retry_after` if given;
//! - `reset`: close the connection without an answer.
//!
//! Actions on GraphQL answers:
//! - `claim-v3`: the v3 node of the package points at its v2 file (true hash and size) and says
//!   `webcVersion: V3`;
//! - `bad-manifest`: the `webcManifest` of the nodes (of `format`, or both) is not JSON;
//! - `url`: the download URL of the nodes (of `format`, or both) is `url` (any text);
//! - `graphql-errors`: the answer is `{"data": null, "errors": [...]}`;
//! - `bad-schema`: the answer does not have the schema's shape (`versions` is a string).
//!
//! A blob's package and format come from the registry database, so `format` and `package` match
//! every file that a version of that package offers in that format. The access log names the
//! rule that fired (`fault=cut`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use serde::Deserialize;

use super::db::Db;
use crate::package::{PackageName, Sha256Digest, WebcVersion};

/// Why a fault file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("cannot read the fault file {path}: {source}; check the path")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fault file {path}: {reason}; see `webcpm-registry serve --help` and docs/chaos.md")]
    Invalid { path: PathBuf, reason: String },
}

/// What a rule applies to, as written: every key is optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeText {
    blob: Option<String>,
    format: Option<String>,
    package: Option<String>,
    on: Option<String>,
    times: Option<u32>,
}

impl ScopeText {
    const KEYS: [&str; 5] = ["blob", "format", "package", "on", "times"];
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    fault: Vec<toml::Table>,
}

/// What a rule does: the table's `action` and that action's own keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    Flip {
        offset: Option<u64>,
    },
    Cut {
        after: u64,
    },
    Stall {
        after: u64,
        seconds: u64,
    },
    WrongLength {
        length: Option<u64>,
    },
    Pad {
        bytes: u64,
    },
    IgnoreRange,
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Reset,
    ClaimV3,
    BadManifest,
    Url {
        url: String,
    },
    GraphqlErrors,
    BadSchema,
}

impl Action {
    /// The name used in the file and the access log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Flip { .. } => "flip",
            Action::Cut { .. } => "cut",
            Action::Stall { .. } => "stall",
            Action::WrongLength { .. } => "wrong-length",
            Action::Pad { .. } => "pad",
            Action::IgnoreRange => "ignore-range",
            Action::Status { .. } => "status",
            Action::Reset => "reset",
            Action::ClaimV3 => "claim-v3",
            Action::BadManifest => "bad-manifest",
            Action::Url { .. } => "url",
            Action::GraphqlErrors => "graphql-errors",
            Action::BadSchema => "bad-schema",
        }
    }

    /// The checks the file's types cannot say: an error status, at least one padding byte.
    fn checked(self) -> Result<Action, String> {
        match self {
            Action::Status { status, .. } if !(400..=599).contains(&status) => {
                Err(format!("status {status} is not an error status (400-599)"))
            }
            Action::Pad { bytes } => Ok(Action::Pad {
                bytes: bytes.max(1),
            }),
            action => Ok(action),
        }
    }
}

/// Which endpoint a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Blob,
    Graphql,
}

#[derive(Debug)]
struct Rule {
    action: Action,
    target: Target,
    blob: Option<Sha256Digest>,
    format: Option<WebcVersion>,
    package: Option<PackageName>,
    times: Option<u32>,
    hits: AtomicU32,
}

impl Rule {
    /// Takes one of the rule's `times`; false when they are used up.
    fn take(&self) -> bool {
        match self.times {
            None => true,
            Some(times) => self
                .hits
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < times).then_some(n + 1)
                })
                .is_ok(),
        }
    }
}

/// A TOML error as one line, without the file excerpt around it.
fn toml_message(e: toml::de::Error) -> String {
    e.message().replace('\n', " ").trim().to_string()
}

/// A `[[fault]]` table split into its scope (the keys every action shares) and its action (the
/// rest, `action` included), each read by serde.
fn split(mut table: toml::Table) -> Result<(Action, ScopeText), String> {
    let mut scope = toml::Table::new();
    for key in ScopeText::KEYS {
        if let Some(value) = table.remove(key) {
            scope.insert(key.to_string(), value);
        }
    }
    let action = Action::deserialize(toml::Value::Table(table)).map_err(toml_message)?;
    let scope = ScopeText::deserialize(toml::Value::Table(scope)).map_err(toml_message)?;
    Ok((action.checked()?, scope))
}

/// What the action applies to: downloads or GraphQL answers (`on`), where the action allows it.
fn parse_target(action: &Action, on: Option<&str>) -> Result<Target, String> {
    let graphql_only = matches!(
        action,
        Action::ClaimV3
            | Action::BadManifest
            | Action::Url { .. }
            | Action::GraphqlErrors
            | Action::BadSchema
    );
    let either = matches!(action, Action::Status { .. } | Action::Reset);
    match (on, graphql_only) {
        (None, true) => Ok(Target::Graphql),
        (None | Some("blob"), false) => Ok(Target::Blob),
        (Some("graphql"), _) if graphql_only || either => Ok(Target::Graphql),
        (Some(on @ ("blob" | "graphql")), _) => Err(format!("this action cannot apply to `{on}`")),
        (Some(on), _) => Err(format!("`on` is `{on}`; expected blob or graphql")),
    }
}

fn parse_rule(i: usize, table: toml::Table) -> Result<Rule, String> {
    let name = table
        .get("action")
        .and_then(toml::Value::as_str)
        .unwrap_or("?")
        .to_string();
    let at = |reason: String| format!("rule {} (`{name}`): {reason}", i + 1);
    let (action, text) = split(table).map_err(at)?;
    let target = parse_target(&action, text.on.as_deref()).map_err(at)?;
    let blob = text
        .blob
        .as_deref()
        .map(str::parse::<Sha256Digest>)
        .transpose()
        .map_err(|e| at(e.to_string()))?;
    if blob.is_some() && target == Target::Graphql {
        return Err(at("`blob` applies to downloads only".into()));
    }
    let format = text
        .format
        .as_deref()
        .map(str::parse::<WebcVersion>)
        .transpose()
        .map_err(|e| at(e.to_string()))?;
    let package = text
        .package
        .as_deref()
        .map(str::parse::<PackageName>)
        .transpose()
        .map_err(|e| at(e.to_string()))?;
    if text.times == Some(0) {
        return Err(at("`times` must be at least 1".into()));
    }
    Ok(Rule {
        action,
        target,
        blob,
        format,
        package,
        times: text.times,
        hits: AtomicU32::new(0),
    })
}

/// The rules of a fault file, with what they have used of their `times`.
#[derive(Debug)]
pub struct Faults {
    rules: Vec<Rule>,
    /// The registry database, to tell which package and format a blob belongs to.
    db: Option<Mutex<Db>>,
}

/// A GraphQL rule that fired for one query; resolvers read it from the request's data.
#[derive(Debug, Clone)]
pub struct NodeFault {
    pub action: Action,
    format: Option<WebcVersion>,
    package: Option<PackageName>,
}

impl NodeFault {
    /// Whether a `claim-v3` rule fired for `package`.
    pub fn claims_v3(&self, package: &PackageName) -> bool {
        self.action == Action::ClaimV3 && self.package.as_ref().is_none_or(|p| p == package)
    }

    fn names(&self, package: &PackageName, webc: WebcVersion) -> bool {
        self.package.as_ref().is_none_or(|p| p == package) && self.format.is_none_or(|f| f == webc)
    }

    /// Whether the `webcManifest` of `package`'s `webc` node is to be broken.
    pub fn breaks_manifest(&self, package: &PackageName, webc: WebcVersion) -> bool {
        self.action == Action::BadManifest && self.names(package, webc)
    }

    /// The download URL to put in `package`'s `webc` node instead of the true one.
    pub fn url_for(&self, package: &PackageName, webc: WebcVersion) -> Option<&str> {
        match &self.action {
            Action::Url { url } if self.names(package, webc) => Some(url),
            _ => None,
        }
    }
}

/// The `webcManifest` a `bad-manifest` rule serves.
pub(crate) const BAD_MANIFEST: &str = "{\"this is\": not JSON";

/// What the GraphQL handler is to do with a query.
pub enum GraphqlFault {
    /// Answer this instead.
    Answer(Response),
    /// Execute the query with this in its data.
    Nodes(NodeFault),
}

/// A response marker naming the rule that fired, for the access log.
#[derive(Debug, Clone, Copy)]
pub struct Applied(pub &'static str);

fn mark(mut response: Response, action: &Action) -> Response {
    response.extensions_mut().insert(Applied(action.name()));
    response
}

impl Faults {
    /// Reads and checks a fault file.
    pub fn load(path: &Path) -> Result<Faults, FaultError> {
        let text = std::fs::read_to_string(path).map_err(|source| FaultError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| FaultError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the TOML text of a fault file.
    pub fn parse(text: &str) -> Result<Faults, String> {
        let file: FileText = toml::from_str(text).map_err(toml_message)?;
        let rules = file
            .fault
            .into_iter()
            .enumerate()
            .map(|(i, rule)| parse_rule(i, rule))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Faults { rules, db: None })
    }

    /// Gives the rules the registry database, so that `format` and `package` match blobs.
    pub fn with_db(mut self, db: Db) -> Self {
        self.db = Some(Mutex::new(db));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The (package, format) pairs that offer a blob.
    fn owners(&self, digest: &Sha256Digest) -> Vec<(PackageName, WebcVersion)> {
        let Some(db) = &self.db else {
            return Vec::new();
        };
        let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
        db.blob_owners(digest).unwrap_or_else(|e| {
            tracing::warn!("faults: {e}");
            Vec::new()
        })
    }

    /// The action for a download of `digest`, if a rule fires. Blocks on the database: call it
    /// off the async threads.
    pub fn for_blob(&self, digest: &Sha256Digest) -> Option<Action> {
        let needs_owners = self
            .rules
            .iter()
            .any(|r| r.target == Target::Blob && (r.format.is_some() || r.package.is_some()));
        let owners = if needs_owners {
            self.owners(digest)
        } else {
            Vec::new()
        };
        self.rules
            .iter()
            .filter(|r| r.target == Target::Blob)
            .filter(|r| r.blob.is_none_or(|b| b == *digest))
            .filter(|r| {
                (r.format.is_none() && r.package.is_none())
                    || owners.iter().any(|(p, f)| {
                        r.package.as_ref().is_none_or(|want| want == p)
                            && r.format.is_none_or(|want| want == *f)
                    })
            })
            .find(|r| r.take())
            .map(|r| r.action.clone())
    }

    /// What to do with a GraphQL query about `packages` (its `$name`, or each name of a batch),
    /// if a rule fires.
    pub fn for_graphql(&self, packages: &[&str]) -> Option<GraphqlFault> {
        let asked: Vec<PackageName> = packages.iter().filter_map(|p| p.parse().ok()).collect();
        let rule = self
            .rules
            .iter()
            .filter(|r| r.target == Target::Graphql)
            .filter(|r| r.package.as_ref().is_none_or(|want| asked.contains(want)))
            .find(|r| r.take())?;
        let package = rule.package.clone().or_else(|| asked.first().cloned());
        let answer = |response: Response| Some(GraphqlFault::Answer(mark(response, &rule.action)));
        match &rule.action {
            Action::GraphqlErrors => answer(
                axum::Json(serde_json::json!({
                    "data": null,
                    "errors": [{"message": "injected failure: the registry is having a bad day"}],
                }))
                .into_response(),
            ),
            Action::BadSchema => answer(
                axum::Json(serde_json::json!({
                    "data": {"getPackage": {"name": package.as_ref().map(|p| p.to_string()), "versions": "not a list"}},
                }))
                .into_response(),
            ),
            action @ (Action::Status { .. } | Action::Reset) => answer(early_response(action)?),
            action => Some(GraphqlFault::Nodes(NodeFault {
                action: action.clone(),
                format: rule.format,
                package: rule.package.clone(),
            })),
        }
    }
}

/// The answer for actions that need no file: `status` and `reset`.
pub(crate) fn early_response(action: &Action) -> Option<Response> {
    let response = match action {
        Action::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response =
                (status, format!("injected failure: HTTP {status}\n")).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            response
        }
        // A body that fails before its first byte: hyper drops the connection without sending
        // the head it had buffered.
        Action::Reset => Response::new(Body::from_stream(futures_util::stream::once(async {
            Err::<Bytes, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected failure: reset",
            ))
        }))),
        _ => return None,
    };
    Some(mark(response, action))
}

/// Shapes a blob response for a body-level action: `stream` yields the `count` bytes of the
/// file that start at `start`; `len` is the file's length.
pub(crate) fn shape_blob(
    action: &Action,
    mut response: axum::http::response::Builder,
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    start: u64,
    count: u64,
    len: u64,
) -> Result<Response, axum::http::Error> {
    let boxed = |s: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>| s;
    let body = match *action {
        Action::Flip { offset } => {
            let at = offset.unwrap_or(len / 2);
            response = response.header(header::CONTENT_LENGTH, count);
            boxed(Box::pin(flip(stream, start, at)))
        }
        Action::Cut { after } => {
            response = response.header(header::CONTENT_LENGTH, count);
            boxed(Box::pin(cut(stream, after)))
        }
        Action::Stall { after, seconds } => {
            response = response.header(header::CONTENT_LENGTH, count);
            boxed(Box::pin(stall(stream, after, Duration::from_secs(seconds))))
        }
        Action::WrongLength { length } => {
            response = response.header(header::CONTENT_LENGTH, length.unwrap_or(count + 1));
            // A body that ends short of its length is an error for hyper, which would drop the
            // head it has not flushed yet: pause first, so that the client sees the answer.
            let pause = futures_util::stream::once(tokio::time::sleep(Duration::from_millis(20)))
                .filter_map(|()| futures_util::future::ready(None));
            boxed(Box::pin(stream.chain(pause)))
        }
        Action::Pad { bytes } => {
            let pad = Bytes::from(vec![
                0x5a;
                usize::try_from(bytes)
                    .unwrap_or(usize::MAX)
                    .min(1 << 24)
            ]);
            boxed(Box::pin(
                stream.chain(futures_util::stream::once(async { Ok(pad) })),
            ))
        }
        _ => {
            response = response.header(header::CONTENT_LENGTH, count);
            boxed(Box::pin(stream))
        }
    };
    response
        .body(Body::from_stream(body))
        .map(|r| mark(r, action))
}

/// Inverts the byte at absolute offset `at`; the stream starts at `start`.
fn flip(
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    start: u64,
    at: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    stream.scan(start, move |pos, chunk| {
        let chunk = chunk.map(|chunk| {
            let begin = *pos;
            *pos += chunk.len() as u64;
            if (begin..*pos).contains(&at) {
                let mut owned = BytesMut::from(&chunk[..]);
                owned[(at - begin) as usize] ^= 0xff;
                owned.freeze()
            } else {
                chunk
            }
        });
        futures_util::future::ready(Some(chunk))
    })
}

/// The first `after` bytes, then an error that closes the connection.
fn cut(
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    after: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let stream = Box::pin(stream);
    futures_util::stream::unfold(
        (stream, 0u64, false),
        move |(mut stream, sent, done)| async move {
            if done {
                return None;
            }
            let cut_here = || {
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "injected failure: cut",
                ))
            };
            if sent >= after {
                // Let hyper flush what was sent before the connection goes: an error that
                // comes at once would drop the buffered bytes (and the head) with it.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Some((cut_here(), (stream, sent, true)));
            }
            match stream.next().await {
                None => None,
                Some(Err(e)) => Some((Err(e), (stream, sent, true))),
                Some(Ok(chunk)) => {
                    let room = usize::try_from(after - sent).unwrap_or(usize::MAX);
                    let part = chunk.slice(..chunk.len().min(room));
                    let sent = sent + part.len() as u64;
                    Some((Ok(part), (stream, sent, false)))
                }
            }
        },
    )
}

/// The first `after` bytes, a pause of `pause`, then the rest.
fn stall(
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    after: u64,
    pause: Duration,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let stream = Box::pin(stream);
    // State: the stream, bytes sent, a chunk held back until the pause is over, paused yet.
    futures_util::stream::unfold(
        (stream, 0u64, None::<Bytes>, false),
        move |(mut stream, sent, held, paused)| async move {
            if let Some(rest) = held {
                tokio::time::sleep(pause).await;
                return Some((Ok(rest), (stream, sent, None, true)));
            }
            let chunk = match stream.next().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(e), (stream, sent, None, paused))),
            };
            if paused || sent + chunk.len() as u64 <= after {
                let sent = sent + chunk.len() as u64;
                return Some((Ok(chunk), (stream, sent, None, paused)));
            }
            let room = (after - sent) as usize;
            let (now, later) = (chunk.slice(..room), chunk.slice(room..));
            Some((Ok(now), (stream, after, Some(later), paused)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        data: &[u8],
        size: usize,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let parts: Vec<_> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures_util::stream::iter(parts)
    }

    async fn collect(
        stream: impl Stream<Item = std::io::Result<Bytes>>,
    ) -> (Vec<u8>, Option<std::io::Error>) {
        let mut out = Vec::new();
        let mut stream = Box::pin(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[test]
    fn the_file_format_parses_and_refuses_mistakes() {
        let faults = Faults::parse(
            r#"
            [[fault]]
            action = "status"
            status = 503
            retry_after = 1
            times = 2
            format = "v3"
            [[fault]]
            action = "cut"
            after = 10
            package = "test/hello"
            [[fault]]
            action = "claim-v3"
            [[fault]]
            action = "reset"
            on = "graphql"
            "#,
        )
        .unwrap();
        assert_eq!(faults.rules.len(), 4);
        assert_eq!(faults.rules[3].target, Target::Graphql);
        for (bad, why) in [
            (
                "[[fault]]\naction = \"explode\"",
                "unknown variant `explode`",
            ),
            ("[[fault]]\nafter = 3", "missing field `action`"),
            ("[[fault]]\naction = \"cut\"", "missing field `after`"),
            (
                "[[fault]]\naction = \"status\"\nstatus = 200",
                "not an error status",
            ),
            (
                "[[fault]]\naction = \"flip\"\non = \"graphql\"",
                "cannot apply",
            ),
            ("[[fault]]\naction = \"flip\"\nformat = \"v9\"", "v9"),
            ("[[fault]]\naction = \"flip\"\ntimes = 0", "at least 1"),
            ("[[fault]]\naction = \"flip\"\nwhat = 1", "unknown field"),
            ("[[fault]]\naction = \"flip\"\nblob = \"xyz\"", "SHA-256"),
        ] {
            let err = Faults::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn times_limit_a_rule_and_later_rules_take_over() {
        let faults = Faults::parse(
            "[[fault]]\naction = \"status\"\nstatus = 500\ntimes = 2\n\
             [[fault]]\naction = \"cut\"\nafter = 1\ntimes = 1\n",
        )
        .unwrap();
        let d = Sha256Digest::of(b"x");
        let seen: Vec<_> = (0..4)
            .map(|_| faults.for_blob(&d).map(|a| a.name()))
            .collect();
        assert_eq!(seen, [Some("status"), Some("status"), Some("cut"), None]);
        // Rules naming a format or a package match nothing without the database.
        let faults = Faults::parse("[[fault]]\naction = \"reset\"\nformat = \"v2\"\n").unwrap();
        assert_eq!(faults.for_blob(&d), None);
    }

    #[test]
    fn graphql_rules_match_the_package_asked_for() {
        let faults = Faults::parse(
            "[[fault]]\naction = \"bad-manifest\"\npackage = \"test/a\"\nformat = \"v3\"\n",
        )
        .unwrap();
        assert!(faults.for_graphql(&["test/b"]).is_none());
        assert!(faults.for_graphql(&[]).is_none());
        let Some(GraphqlFault::Nodes(node)) = faults.for_graphql(&["test/b", "Test/A"]) else {
            panic!("the rule fires");
        };
        let a: PackageName = "test/a".parse().unwrap();
        let b: PackageName = "test/b".parse().unwrap();
        assert!(node.breaks_manifest(&a, WebcVersion::V3));
        assert!(!node.breaks_manifest(&a, WebcVersion::V2));
        assert!(!node.breaks_manifest(&b, WebcVersion::V3));
        assert!(!node.claims_v3(&a));
    }

    #[tokio::test]
    async fn body_actions_change_the_bytes_as_described() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let (out, err) = collect(cut(chunks(&data, 64), 300)).await;
        assert_eq!(out, data[..300]);
        assert!(err.is_some());
        let (out, err) = collect(cut(chunks(&data, 64), 5000)).await;
        assert_eq!(out, data);
        assert!(err.is_none());
        // A range starting at 100: absolute offset 500 is the 400th byte sent.
        let (out, _) = collect(flip(chunks(&data[100..], 64), 100, 500)).await;
        assert_eq!(out.len(), 900);
        assert_eq!(out[400], data[500] ^ 0xff);
        assert_eq!(out[..400], data[100..500]);
        assert_eq!(out[401..], data[501..]);
        let started = std::time::Instant::now();
        let (out, err) = collect(stall(chunks(&data, 64), 100, Duration::from_millis(50))).await;
        assert_eq!(out, data);
        assert!(err.is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
