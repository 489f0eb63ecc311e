//! The registry: `webcpm-registry add` stores packages in a directory, `webcpm-registry serve`
//! offers them over the Wasmer registry protocol (GraphQL, `schema/registry.graphql`) with
//! every version in both WebC v2 and v3, and serves the files with `Content-Length`, `ETag` and
//! `Range`.
//!
//! It shares with the client only the schema (`schema/` and `graphql/`), the crate of names and
//! formats (`webcpm-formats`: package names, digests, WebC containers and their entry checks,
//! the format policy, the signed policy document, outcome reports) and the network crate
//! (`webcpm-net`: OCI registries). The compiler keeps it so: this crate depends on nothing else
//! of webcpm, and the `webcpm` binary does not link it.
//!
//! Where it keeps its state is a [`Storage`]: the root directory, the database (SQLite in the
//! root, or PostgreSQL with `--database`) and the package files (the root's `blobs/`, or an OCI
//! registry with `--blobs`); replicas on one PostgreSQL and one OCI registry
//! share nothing else. By default the registry root `DIR` holds:
//! ```text
//! DIR/registry.sqlite          packages, versions and the hashes of publish tokens (see db.rs;
//!                              WAL, migrations by user_version)
//! DIR/blobs/<sha256hex>.webc   every stored container, content-addressed, never rewritten
//! DIR/tmp/                     files being written, renamed into blobs/ when complete, and
//!                              uploads in progress
//! DIR/policy-key               the rollout policy's signing key (see fleet/keys.rs)
//! ```
//!
//! Routes: `/graphql` (the queries, and the publish mutations of `publish_api.rs` for a token
//! made by `registry token create`, see `tokens.rs`), `/blobs/{sha256}.webc`, `/uploads/{id}`
//! (the signed upload URLs), the web page: `/` and `/packages/{ns}/{name}` (`web.rs`), and next
//! to them `/rollout/policy.json`, the signed rollout policy, and `/rollout/reports`, which takes
//! the clients' outcome reports ([`fleet`]).
//!
//! Download URLs are absolute: `{base}/blobs/{sha256}.webc`. `base` is `http://{bound address}`,
//! or `--public-url` when given (for a registry behind a proxy): that URL names the server's root
//! (`https://host/prefix`); a trailing `/` or `/graphql` is removed, so the GraphQL URL printed by
//! `webcpm-registry serve` may be passed as it is.
//!
//! By default the server listens on loopback addresses only; another address must be allowed
//! explicitly. Logs go to stderr through `tracing`; nothing outside [`cli`] prints
//! (which prints `listening on URL` once the socket is bound).
//!
//! Chaos mode, `--faults FILE`, makes the server fail or lie on purpose ([`faults`]), to rehearse
//! how clients behave before a rollout (and for the tests); without it every request is served
//! faithfully. `--real-shapes` answers in the shapes of the real Wasmer
//! registry ([`shapes`]: null sizes, one file behind both nodes, a broken version, signed URLs
//! that expire).

mod access;
mod add;
mod blobs;
mod db;
pub mod faults;
pub mod fleet;
mod graphql;
mod graphql_search;
mod health;
mod limits;
mod metrics;
mod mirror;
mod publish_api;
mod routes;
mod schema;
mod server;
pub mod shapes;
mod staging;
mod storage;
mod tokens;
mod uploads;
mod web;
mod yank_api;

// The operator's command line: the one part of this crate that prints.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;

use webcpm_formats::{container, error_text, package, package_dir, policy};
use webcpm_net::oci;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use access::{LogFormat, REQUEST_ID};
pub use add::{AddOptions, AddReport, BlobReport, PublishError, Publisher, add, set_archived};
pub use blobs::{AUTH_ENV as OCI_AUTH_ENV, BlobError};
pub use db::{Database, DbError};
pub use limits::{Limits, Rate};
pub use mirror::MirrorOptions;
pub use schema::sdl;
pub use storage::{Storage, StorageError};
pub use tokens::{
    NewReportToken, NewToken, Revoked, TokenError, create as create_token, create_report_token,
    revoke as revoke_token,
};

/// How long a shutdown waits for the requests in flight before it cuts them.
const GRACE: Duration = Duration::from_secs(30);

/// What `registry serve` was told.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The registry root, its database and its package files.
    pub storage: Storage,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The URL clients reach the server at, when it is not `http://{listen}`.
    pub public_url: Option<String>,
    /// The base of the upload URLs this server hands out, when not the public URL: uploads are
    /// kept by the replica that handed out the URL, so replicas behind one address each give
    /// their own.
    pub upload_url: Option<String>,
    /// A file that gets one line per request.
    pub access_log: Option<PathBuf>,
    /// How those lines are written.
    pub access_log_format: LogFormat,
    /// What a request, an address and a token may take.
    pub limits: Limits,
    /// Allow a listen address that is not loopback.
    pub allow_public: bool,
    /// A fault file ([`faults`], chaos mode); `None` serves faithfully.
    pub faults: Option<PathBuf>,
    /// Answer in the real registry's shapes ([`shapes`]), with download URLs that live this
    /// long; `None`: complete nodes and permanent URLs.
    pub real_shapes: Option<Duration>,
    /// How long a signed rollout policy stays valid ([`DEFAULT_POLICY_TTL`]).
    pub policy_ttl: Duration,
    /// Let `publishPackage` replace a version that is already published.
    pub allow_republish: bool,
    /// Take outcome reports without a report token (a closed network's fleet).
    pub open_reports: bool,
    /// Be a pull-through mirror of another registry ([`mirror`]).
    pub mirror: Option<MirrorOptions>,
}

/// How long a signed rollout policy stays valid by default: a day.
pub const DEFAULT_POLICY_TTL: Duration = Duration::from_secs(86_400);

impl ServeOptions {
    /// `registry serve`'s defaults for this storage: a free port on 127.0.0.1, served
    /// faithfully, the default policy lifetime, no republishing.
    pub fn new(storage: Storage) -> Self {
        ServeOptions {
            storage,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            upload_url: None,
            access_log: None,
            access_log_format: LogFormat::Text,
            limits: Limits::default(),
            allow_public: false,
            faults: None,
            real_shapes: None,
            policy_ttl: DEFAULT_POLICY_TTL,
            allow_republish: false,
            open_reports: false,
            mirror: None,
        }
    }
}

/// Why the registry server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "refusing to listen on {0}: it is not a loopback address; listen on 127.0.0.1 or allow public access explicitly"
    )]
    NotLoopback(SocketAddr),
    #[error("invalid public URL `{url}`: {reason}; pass an http(s) URL such as https://host/")]
    PublicUrl { url: String, reason: &'static str },
    #[error(
        "registry root {0} does not exist; create it or add a package there with `webcpm registry add`"
    )]
    NoRoot(PathBuf),
    #[error("cannot create the registry root {path}: {source}; check the path and its permissions")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot open the access log {path}: {source}; check the path and its permissions")]
    AccessLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}; choose another address or port")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the registry server failed: {0}; see the log and restart it")]
    Serve(std::io::Error),
    #[error("the registry server task failed: {0}; see the log and restart it")]
    Task(String),
    #[error(transparent)]
    Faults(#[from] faults::FaultError),
    #[error(transparent)]
    Fleet(#[from] fleet::FleetError),
    #[error("{0}")]
    Mirror(String),
}

/// A server started by [`start`]. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The address the server listens on (with the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The GraphQL endpoint: `{base}/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base_url)
    }

    /// Stops the server: no new connections, requests in flight get 10 s to finish.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.stop().await {
            tracing::warn!("{e}");
        }
    }

    /// Serves until Ctrl-C or SIGTERM (then stops taking connections and finishes the requests
    /// in flight, for up to 10 s) or until the server fails.
    pub async fn wait(mut self) -> Result<(), ServerError> {
        tokio::select! {
            result = &mut self.task => return flatten(result),
            signal = stop_signal() => tracing::info!("{signal}: shutting down"),
        }
        self.stop().await
    }

    async fn stop(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(GRACE, &mut self.task).await {
            Ok(result) => flatten(result),
            Err(_) => {
                tracing::warn!("requests still running after {GRACE:?}: cutting them");
                self.task.abort();
                Ok(())
            }
        }
    }
}

/// The first of Ctrl-C and (on Unix) SIGTERM, by name.
async fn stop_signal() -> &'static str {
    let interrupted = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot watch for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminated = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        () = interrupted => "interrupted",
        () = terminated => "terminated",
    }
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServerError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServerError::Serve(e)),
        Err(e) => Err(ServerError::Task(e.to_string())),
    }
}

/// Turns `--public-url` into the base of every URL the server hands out.
fn public_base(url: &str) -> Result<String, ServerError> {
    let bad = |reason| ServerError::PublicUrl {
        url: url.to_string(),
        reason,
    };
    let text = url.trim();
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| bad("the scheme must be http or https"))?;
    if text.contains(['?', '#']) || text.chars().any(char::is_whitespace) {
        return Err(bad("it may not hold a query, a fragment or spaces"));
    }
    let mut base = text.trim_end_matches('/');
    if let Some(stripped) = base.strip_suffix("/graphql") {
        base = stripped.trim_end_matches('/');
    }
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Err(bad("it has no host"));
    }
    Ok(base.to_string())
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServerError::Task(e.to_string()))
}

/// Opens `--access-log` for appending.
fn open_access_log(
    path: &std::path::Path,
    format: LogFormat,
) -> Result<access::AccessLog, ServerError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ServerError::AccessLog {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(access::AccessLog::new(file, format))
}

/// Opens the database (migrating it), for the request handlers and for the fault rules when
/// `--faults` names a file.
async fn open_database(
    storage: &Storage,
    faults: Option<&std::path::Path>,
) -> Result<(Arc<db::Pool>, Option<Arc<faults::Faults>>), ServerError> {
    let database = storage.database.clone();
    let db = blocking(move || db::Db::open(&database)).await??;
    let faults = match faults {
        Some(path) => {
            let rules = faults::Faults::load(path)?;
            let database = storage.database.clone();
            let db = blocking(move || db::Db::open(&database)).await??;
            tracing::warn!("fault rules from {} are active", path.display());
            Some(Arc::new(rules.with_db(db)))
        }
        None => None,
    };
    Ok((
        Arc::new(db::Pool::new(storage.database.clone(), db)),
        faults,
    ))
}

/// The layers around every route, outermost last: a panic becomes a 500, the limits hold, the
/// request is counted, and it gets an id and an access log line.
fn guard(
    app: axum::Router,
    limiter: &Arc<limits::Limiter>,
    metrics: Arc<metrics::Metrics>,
    access_log: Option<Arc<access::AccessLog>>,
) -> axum::Router {
    use axum::middleware::from_fn_with_state;
    app.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        limits::panicked,
    ))
    .layer(from_fn_with_state(Arc::clone(limiter), limits::limit))
    .layer(from_fn_with_state(metrics, metrics::count))
    .layer(from_fn_with_state(access_log, access::log_request))
}

/// Every minute, lets the rate limiter forget addresses and tokens it has not seen lately;
/// ends with the server.
async fn forget_idle(limiter: std::sync::Weak<limits::Limiter>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        match limiter.upgrade() {
            Some(limiter) => limiter.forget_idle(),
            None => return,
        }
    }
}

/// Binds, then serves the registry in `opts.root` on the current tokio runtime; returns at once.
pub async fn start(opts: ServeOptions) -> Result<RunningServer, ServerError> {
    if !opts.allow_public && !opts.listen.ip().is_loopback() {
        return Err(ServerError::NotLoopback(opts.listen));
    }
    let public = opts.public_url.as_deref().map(public_base).transpose()?;
    prepare_root(&opts.storage, opts.mirror.is_some())?;
    let (pool, faults) = open_database(&opts.storage, opts.faults.as_deref()).await?;
    let access_log = opts
        .access_log
        .as_deref()
        .map(|path| open_access_log(path, opts.access_log_format))
        .transpose()?
        .map(Arc::new);
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: opts.listen,
        source,
    })?;
    let base_url = public.unwrap_or_else(|| format!("http://{addr}"));
    let metrics = Arc::new(metrics::Metrics::new());
    let app = app(&opts, pool, faults, &base_url, Arc::clone(&metrics))?;
    let limiter = Arc::new(limits::Limiter::new(
        opts.limits.clone(),
        Arc::clone(&metrics),
    ));
    let app = guard(app, &limiter, metrics, access_log);
    tokio::spawn(forget_idle(Arc::downgrade(&limiter)));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, app, opts.limits.clone(), stopped));
    tracing::info!(
        "serving the registry in {} (database {}, blobs {:?}) on http://{addr} (URLs based on {base_url})",
        opts.storage.root.display(),
        opts.storage.database.place(),
        opts.storage.blobs,
    );
    Ok(RunningServer {
        addr,
        base_url,
        stop: Some(stop),
        task,
    })
}

/// Makes sure the registry's root exists: a local registry must have been made; a replica whose
/// database and files live elsewhere keeps little in its root, and a new one starts empty, as
/// does a mirror.
fn prepare_root(storage: &Storage, mirror: bool) -> Result<(), ServerError> {
    if storage.root.is_dir() {
        return Ok(());
    }
    if storage.is_local() && !mirror {
        return Err(ServerError::NoRoot(storage.root.clone()));
    }
    std::fs::create_dir_all(&storage.root).map_err(|source| ServerError::Root {
        path: storage.root.clone(),
        source,
    })
}

/// Every route of the registry, before the guards of [`guard`].
fn app(
    opts: &ServeOptions,
    pool: Arc<db::Pool>,
    faults: Option<Arc<faults::Faults>>,
    base_url: &str,
    metrics: Arc<metrics::Metrics>,
) -> Result<axum::Router, ServerError> {
    let storage = &opts.storage;
    let uploads = opts.upload_url.as_deref().map(public_base).transpose()?;
    let shapes = opts.real_shapes.map(shapes::Shapes::new);
    let mirror = opts
        .mirror
        .clone()
        .map(|m| mirror::Mirror::new(m, storage.clone()).map(Arc::new))
        .transpose()
        .map_err(ServerError::Mirror)?;
    let catalog = Arc::new(graphql::Catalog::new(
        Arc::clone(&pool),
        base_url.to_string(),
        shapes.clone(),
        mirror,
    ));
    let publishing = Arc::new(publish_api::Publishing::new(
        storage.clone(),
        Arc::clone(&pool),
        uploads.unwrap_or_else(|| base_url.to_string()),
        opts.allow_republish,
    ));
    let state = Arc::new(routes::AppState {
        blobs: storage.blobs.clone(),
        pool: Arc::clone(&pool),
        schema: schema::build_schema(Some(catalog), Some(publishing.clone()), Some(&metrics)),
        metrics: Arc::clone(&metrics),
        faults,
        shapes,
        publishing,
        keys: storage.keys.clone(),
    });
    let rollout = fleet::service(
        &storage.keys,
        Arc::clone(&pool),
        opts.policy_ttl,
        Arc::clone(&metrics),
        opts.open_reports,
    );
    let operator = health::routes(Arc::clone(&pool), storage.blobs.clone())
        .merge(metrics::routes(metrics, pool));
    Ok(routes::router(
        state,
        fleet::router(Arc::new(rollout)),
        operator,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that panics is answered 500 with a plain message: the panic's text (which may
    /// hold anything) stays in the log.
    #[tokio::test]
    async fn a_panic_is_answered_500_without_its_trace() {
        use tower::ServiceExt;
        let app = axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                panic!("secret detail of the server");
                #[allow(unreachable_code)]
                ""
            }),
        );
        let metrics = Arc::new(metrics::Metrics::new());
        let limiter = Arc::new(limits::Limiter::new(
            Limits::default(),
            Arc::clone(&metrics),
        ));
        let request = axum::http::Request::builder()
            .uri("/boom")
            .extension(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                9,
            ))))
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = guard(app, &limiter, metrics, None)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(answer.status(), 500);
        let body = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("secret detail"), "{text}");
        assert!(text.contains("internal error"), "{text}");
    }

    #[test]
    fn public_urls_are_normalised() {
        let ok = |u: &str| public_base(u).unwrap();
        assert_eq!(ok("http://example.com"), "http://example.com");
        assert_eq!(ok("https://example.com/"), "https://example.com");
        assert_eq!(ok("https://example.com/graphql"), "https://example.com");
        assert_eq!(
            ok("https://example.com/reg/graphql/"),
            "https://example.com/reg"
        );
        assert_eq!(ok("http://127.0.0.1:8080/reg"), "http://127.0.0.1:8080/reg");
        for bad in [
            "ftp://x",
            "example.com",
            "http://",
            "https:///graphql",
            "http://x/?a=b",
        ] {
            assert!(public_base(bad).is_err(), "{bad} accepted");
        }
    }

    #[tokio::test]
    async fn refuses_public_addresses_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = ServeOptions {
            listen: "0.0.0.0:0".parse().unwrap(),
            ..ServeOptions::new(Storage::local(tmp.path()))
        };
        assert!(matches!(
            start(opts.clone()).await,
            Err(ServerError::NotLoopback(_))
        ));
        let missing = ServeOptions {
            storage: Storage::local(&tmp.path().join("missing")),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..opts
        };
        assert!(matches!(start(missing).await, Err(ServerError::NoRoot(_))));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn serves_graphql_and_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("registry");
        let mut reports = Vec::new();
        for version in ["0.9.0", "1.0.0", "1.1.0-rc.1", "1.2.0"] {
            let pkg = tmp.path().join(version);
            std::fs::create_dir(&pkg).unwrap();
            add::package_dir(&pkg, "test/hello", version);
            reports.push(add(&Storage::local(&root), &pkg, &AddOptions::default()).unwrap());
        }
        set_archived(
            &Storage::local(&root),
            &reports[3].package,
            &semver::Version::new(1, 2, 0),
            true,
            Some("broke the build"),
        )
        .unwrap();
        let log = tmp.path().join("access.log");
        let server = start(ServeOptions {
            access_log: Some(log.clone()),
            ..ServeOptions::new(Storage::local(&root))
        })
        .await
        .unwrap();
        let base = format!("http://{}", server.addr());
        assert_eq!(server.graphql_url(), format!("{base}/graphql"));
        let client = reqwest::Client::new();
        let query = |q: &str, vars: serde_json::Value| {
            let request = client
                .post(server.graphql_url())
                .json(&serde_json::json!({"query": q, "variables": vars}));
            async move {
                let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
                assert!(answer.get("errors").is_none(), "{answer}");
                answer["data"].clone()
            }
        };

        let data = query(
            include_str!("../../../graphql/get_package.graphql"),
            serde_json::json!({"name": "Test/Hello"}),
        )
        .await;
        let versions = data["getPackage"]["versions"].as_array().unwrap();
        let listed: Vec<_> = versions.iter().map(|v| v["version"].clone()).collect();
        assert_eq!(listed, ["0.9.0", "1.0.0", "1.1.0-rc.1", "1.2.0"]);
        assert_eq!(versions[3]["isArchived"], true);
        let v2 = &versions[1]["v2"];
        assert_eq!(v2["webcVersion"], "V2");
        assert_eq!(v2["piritaSha256Hash"], reports[1].v2.sha256.hex());
        assert_eq!(v2["piritaSize"], reports[1].v2.size);
        let url = format!("{base}/blobs/{}.webc", reports[1].v2.sha256.hex());
        assert_eq!(v2["piritaDownloadUrl"], url.as_str());
        let manifest = v2["webcManifest"].as_str().expect("a JSON string");
        let _: webc::metadata::Manifest = serde_json::from_str(manifest).unwrap();
        assert_eq!(versions[1]["v3"]["webcVersion"], "V3");

        let data = query(
            "{ getPackageVersion(name: \"test/hello\") { version isLastVersion
                 package { name namespace packageName isArchived lastVersion { version } }
                 distribution { webcVersion downloadUrl size webcSize webcSha256Hash } } }",
            serde_json::json!({}),
        )
        .await;
        let latest = &data["getPackageVersion"];
        assert_eq!(latest["version"], "1.0.0");
        assert_eq!(latest["isLastVersion"], true);
        assert_eq!(latest["package"]["packageName"], "hello");
        assert_eq!(latest["package"]["lastVersion"]["version"], "1.0.0");
        assert_eq!(latest["distribution"]["webcVersion"], "V2");
        let data = query(
            "{ a: getPackageVersion(name: \"test/hello\", version: \"1.2.0\") { version }
               b: getPackageVersion(name: \"test/hello\", version: \"7.0.0\") { version }
               c: getPackage(name: \"test/nothing\") { name }
               d: getPackage(name: \"not a name\") { name } }",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(data["a"]["version"], "1.2.0");
        assert!(data["b"].is_null() && data["c"].is_null() && data["d"].is_null());

        let bytes = std::fs::read(
            root.join("blobs")
                .join(format!("{}.webc", reports[1].v2.sha256.hex())),
        )
        .unwrap();
        let len = bytes.len();
        let full = client.get(&url).send().await.unwrap();
        assert_eq!(full.status(), 200);
        let etag = format!("\"{}\"", reports[1].v2.sha256.hex());
        assert_eq!(full.headers()["etag"], etag.as_str());
        assert_eq!(full.headers()["accept-ranges"], "bytes");
        assert_eq!(full.headers()["content-type"], "application/webc");
        assert_eq!(full.headers()["content-length"], len.to_string().as_str());
        assert_eq!(full.bytes().await.unwrap(), bytes);

        let part = client
            .get(&url)
            .header("range", "bytes=8-")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 8-{}/{len}", len - 1).as_str()
        );
        assert_eq!(part.bytes().await.unwrap(), bytes[8..]);
        let tail = client
            .get(&url)
            .header("range", "bytes=-4")
            .send()
            .await
            .unwrap();
        assert_eq!(tail.bytes().await.unwrap(), bytes[len - 4..]);
        let past = client
            .get(&url)
            .header("range", format!("bytes={len}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(past.status(), 416);
        assert_eq!(
            past.headers()["content-range"],
            format!("bytes */{len}").as_str()
        );
        let stale = client
            .get(&url)
            .header("range", "bytes=0-3")
            .header("if-range", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], len.to_string().as_str());
        let unknown = format!("{base}/blobs/{}.webc", "0".repeat(64));
        assert_eq!(client.get(&unknown).send().await.unwrap().status(), 404);
        let junk = format!("{base}/blobs/..%2Fregistry.sqlite");
        assert_eq!(client.get(&junk).send().await.unwrap().status(), 404);

        server.shutdown().await;
        let log = std::fs::read_to_string(&log).unwrap();
        let path = format!("/blobs/{}.webc", reports[1].v2.sha256.hex());
        // The first five columns; the rest (auth, fault, time) are checked below.
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains(&path))
            .map(|l| l.split(' ').take(5).collect::<Vec<_>>().join(" "))
            .collect();
        assert!(
            log.lines().all(|l| l.contains(" auth=no fault=- t=")),
            "{log}"
        );
        assert_eq!(
            lines,
            [
                format!("GET {path} - 200 {len}"),
                format!("GET {path} bytes=8- 206 {}", len - 8),
                format!("GET {path} bytes=-4 206 4"),
                format!("GET {path} bytes={len}- 416 0"),
                format!("GET {path} bytes=0-3 200 {len}"),
                format!("HEAD {path} - 200 0"),
            ]
        );
        assert!(
            log.lines()
                .next()
                .unwrap()
                .starts_with("POST /graphql - 200 ")
        );
    }
}
