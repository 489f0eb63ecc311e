//! Recorded answers of the real Wasmer registry (`tests/fixtures/wasmer-registry`), replayed by a
//! small HTTP server in the test: every GraphQL request gets the recorded answer, with its
//! download URLs pointed at this server, and is kept so that the test can see what webcpm sent.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};

use crate::common::*;

/// A server that answers every `POST /graphql` with one recorded answer.
pub(crate) struct Replay {
    pub url: String,
    /// The bodies of the GraphQL requests, in order.
    requests: Arc<Mutex<Vec<serde_json::Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Replay {
    pub(crate) fn start(fixture: &str) -> Replay {
        Self::start_with(fixture, false)
    }

    /// A registry of the schema before `publishedBy`: a query that asks for it is refused with
    /// HTTP 400 and a GraphQL error, as a server validating against that schema answers.
    pub(crate) fn start_old(fixture: &str) -> Replay {
        Self::start_with(fixture, true)
    }

    fn start_with(fixture: &str, old: bool) -> Replay {
        let recorded = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/wasmer-registry")
                .join(fixture),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        // The recorded URLs point at the real CDN: here they point at this server.
        let answer = recorded
            .replace(
                "https://storage.googleapis.com/",
                &format!("http://{addr}/cdn/"),
            )
            .replace("https://example.com/", &format!("http://{addr}/cdn/"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = Router::new()
            .route(
                "/graphql",
                post(move |body: axum::Json<serde_json::Value>| {
                    let refused = old && body.0["query"].to_string().contains("publishedBy");
                    seen.lock().unwrap().push(body.0);
                    let (status, answer) = match refused {
                        true => (
                            axum::http::StatusCode::BAD_REQUEST,
                            r#"{"errors":[{"message":"Cannot query field \"publishedBy\" on type \"PackageVersion\"."}]}"#.to_string(),
                        ),
                        false => (axum::http::StatusCode::OK, answer.clone()),
                    };
                    async move { (status, [("content-type", "application/json")], answer) }
                }),
            )
            .route(
                "/cdn/{*path}",
                get(|| async { axum::http::StatusCode::NOT_FOUND }),
            );
        runtime.spawn(async move { axum::serve(listener, app).await });
        Replay {
            url: format!("http://{addr}/graphql"),
            requests,
            _runtime: runtime,
        }
    }

    /// The `name` each GraphQL request asked for.
    pub(crate) fn names(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r["variables"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

#[test]
fn a_registry_that_predates_publishers_is_asked_again_without_them() {
    let tmp = tempfile::tempdir().unwrap();
    let replay = Replay::start_old("wasmer-pack-cli.response.json");
    let out = resolve(
        tmp.path(),
        &replay,
        &["wasmer/wasmer-pack-cli@^0.6", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["version"], "0.6.0");
    let requests = replay.requests.lock().unwrap().clone();
    let asked: Vec<bool> = requests
        .iter()
        .map(|r| r["query"].as_str().unwrap().contains("publishedBy"))
        .collect();
    assert_eq!(
        asked,
        [true, false],
        "once with the publisher, then without"
    );
}

fn resolve(home: &Path, replay: &Replay, args: &[&str]) -> std::process::Output {
    run(webcpm(home)
        .args(["resolve", "--registry", &replay.url])
        .args(args))
}

#[test]
fn the_right_version_and_hash_come_from_one_request() {
    let tmp = tempfile::tempdir().unwrap();
    let replay = Replay::start("wasmer-pack-cli.response.json");
    let out = resolve(
        tmp.path(),
        &replay,
        &["wasmer/wasmer-pack-cli@^0.6", "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let e = json(&out);
    assert_eq!(e["package"], "wasmer/wasmer-pack-cli");
    assert_eq!(e["version"], "0.6.0", "^0.6 excludes 0.7.x");
    let chosen = &e["candidates"][0];
    assert_eq!(chosen["outcome"], "chosen");
    assert_eq!(
        chosen["sha256"],
        "7e1add1640d0037ff6a726cd7e14ea36159ec2db8cb6debd0e42fa2739bea52b"
    );
    assert!(
        chosen["url"].as_str().unwrap().ends_with(
            "/cdn/wapm-registry-prod/webc/wasmer/wasmer-pack-cli/0.6.0/wasmer-pack-cli-0.6.0.webc"
        ),
        "{chosen}"
    );
    assert_eq!(chosen["size"], serde_json::Value::Null);
    assert_eq!(replay.names(), ["wasmer/wasmer-pack-cli"], "one request");
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("left out piritaSize, webcVersion"),
        "{notes}"
    );
    assert!(notes.contains("name the same file"), "{notes}");

    let out = resolve(
        tmp.path(),
        &replay,
        &["wasmer/wasmer-pack-cli", "--explain"],
    );
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with("wasmer/wasmer-pack-cli@0.7.1 -> WebC v3"),
        "{text}"
    );
    assert!(text.contains("size unknown"), "{text}");
    assert!(
        text.contains("note: wasmer/wasmer-pack-cli@0.7.1: the v2 and v3 nodes name the same file"),
        "{text}"
    );
}

#[test]
fn bare_and_global_names_are_one_package_and_broken_versions_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let replay = Replay::start("cowsay-missing-fields.response.json");
    for name in ["cowsay", "_/cowsay", "_/CowSay"] {
        let out = resolve(tmp.path(), &replay, &[name, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let e = json(&out);
        assert_eq!(e["package"], "_/cowsay", "{name}");
        assert_eq!(e["version"], "0.2.0", "{name}");
    }
    assert_eq!(replay.names(), ["_/cowsay", "_/cowsay", "_/cowsay"]);

    // 0.1.3 and 0.1.2 carry the hash `1234asdf`: only 0.2.0 counts.
    for request in ["cowsay@0.1.3", "_/cowsay@^0.1"] {
        let out = resolve(tmp.path(), &replay, &[request]);
        assert_eq!(out.status.code(), Some(1), "{request}");
        let err = stderr(&out);
        assert!(err.contains("_/cowsay@0.1.3 cannot be used"), "{err}");
        assert!(err.contains("`1234asdf`"), "{err}");
    }
    let out = resolve(tmp.path(), &replay, &["cowsay@^0.3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("versions: 0.1.2 (unusable), 0.1.3 (unusable), 0.2.0"),
        "{}",
        stderr(&out)
    );
    let out = resolve(tmp.path(), &replay, &["cowsay@>=0.1.2, <0.2", "--explain"]);
    assert_eq!(out.status.code(), Some(1));

    // Names the registry cannot have are refused before any request.
    let before = replay.names().len();
    for bad in ["wasmer.io:_/cowsay", "./cowsay", "cow say", "cowsay@stable"] {
        let out = resolve(tmp.path(), &replay, &[bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    assert_eq!(replay.names().len(), before);
}

#[test]
fn archived_versions_are_passed_over_unless_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let replay = Replay::start("wasmer-python-archived.response.json");
    let out = resolve(tmp.path(), &replay, &["wasmer/python", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["version"], "3.12.1");
    // Pinned exactly, an archived (yanked) version is still taken, as cargo takes one.
    let out = resolve(tmp.path(), &replay, &["wasmer/python@3.12.2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["version"], "3.12.2");
}
