//! The registry as a service on the open network, tried as an attacker and as an operator would:
//! a real `registry serve` process, raw sockets for the requests a polite client never sends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

/// `127.0.0.1:PORT` of a registry's `http://127.0.0.1:PORT/graphql`.
fn host(registry: &Registry) -> String {
    registry
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/graphql")
        .to_string()
}

fn base(registry: &Registry) -> String {
    registry.url.trim_end_matches("/graphql").to_string()
}

/// Connects, sends `bytes`, and reads what comes back within `limit` (until the server closes
/// or stops sending). `None` when the connection was refused.
fn exchange(addr: &str, bytes: &[u8], limit: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(limit)).unwrap();
    let _ = stream.write_all(bytes);
    Some(read_all(&mut stream))
}

/// Sends `bytes` and waits for the server to answer or close: what came back, and how long it
/// took.
fn stalled(addr: &str, bytes: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let answer = exchange(addr, bytes, Duration::from_secs(10)).expect("the server accepts");
    (answer, started.elapsed())
}

async fn get(client: &reqwest::Client, registry: &Registry, path: &str) -> reqwest::Response {
    client
        .get(format!("{}{path}", base(registry)))
        .send()
        .await
        .unwrap()
}

fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn post_query(client: &reqwest::Client, url: &str, query: &str) -> (u16, serde_json::Value) {
    let r = client
        .post(url)
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_cut_off_and_answered_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let registry = Registry::start_with(
        home,
        &root,
        &["--body-timeout", "2", "--max-connections-per-address", "4"],
    );
    // No idle connections kept: the test counts the connections it opens itself.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let addr = host(&registry);

    // A body past 1 MiB: 413, whether its length is announced or streamed.
    let big = vec![b' '; 2 << 20];
    let r = client
        .post(&registry.url)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let r = client
        .post(&registry.url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may answer 413 and close before the client has sent the rest.
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }

    // The cycle Package.versions -> PackageVersion.package costs by list size: refused.
    let cycle = r#"{ getPackage(name: "test/hello") { versions { package { versions { package { versions { version } } } } } } }"#;
    let (_, answer) = post_query(&client, &registry.url, cycle).await;
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too complex"), "{answer}");
    assert!(answer["data"].is_null(), "{answer}");
    let deep = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "ofType { ".repeat(20),
        "} ".repeat(20)
    );
    let (_, answer) = post_query(&client, &registry.url, &deep).await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nested too deep") || m.contains("too complex")),
        "{answer}"
    );
    // What a client asks for still works.
    let (status, answer) = post_query(
        &client,
        &registry.url,
        r#"{ getPackage(name: "test/hello") { versions { version } } }"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["data"]["getPackage"]["versions"][0]["version"],
        "1.0.0"
    );

    // Bytes that are not UTF-8, to GraphQL and to the report endpoint: a 4xx, no panic.
    for path in ["/graphql", "/rollout/reports"] {
        let r = client
            .post(format!("{}{path}", base(&registry)))
            .header("content-type", "application/json")
            .body(vec![0xff, 0xfe, b'{', 0xc3, b'}'])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }

    // A body that stops coming: 408 once the body time is over.
    let (answer, took) = stalled(
        &addr,
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"qu",
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(8), "{took:?}");

    // Headers that never end (slowloris): the connection is closed.
    let (answer, took) = stalled(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(took < Duration::from_secs(8), "{took:?}");

    // At most 4 connections from one address: the fifth is closed unanswered.
    let open: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let fifth = exchange(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(
        fifth.as_ref().is_none_or(|answer| answer.is_empty()),
        "{fifth:?}"
    );
    drop(open);
    std::thread::sleep(Duration::from_millis(200));
    let r = get(&client, &registry, "/healthz").await;
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_are_limited_per_address_and_per_token_and_the_client_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let client = reqwest::Client::new();
    {
        let registry = Registry::start_with(home, &root, &["--rate-limit", "3:3"]);
        let mut limited = 0;
        for _ in 0..10 {
            let r = client
                .post(&registry.url)
                .json(&serde_json::json!({ "query": "{ __typename }" }))
                .send()
                .await
                .unwrap();
            if r.status().as_u16() == 429 {
                limited += 1;
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&wait), "{wait}");
            }
        }
        assert!(limited >= 5, "{limited} of 10 limited");
        // The liveness probe is not limited: it is never answered 429.
        for _ in 0..10 {
            let r = get(&client, &registry, "/healthz").await;
            assert_eq!(r.status().as_u16(), 200);
        }
        // /metrics asks the database: it is limited as the rest; its turn comes after a second.
        assert_eq!(
            get(&client, &registry, "/metrics").await.status().as_u16(),
            429
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let metrics = get(&client, &registry, "/metrics")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("webcpm_registry_rate_limited_total{key=\"address\"}"),
            "{metrics}"
        );
    }
    {
        // One request a second: webcpm's own client is answered 429, waits as told, and installs.
        let registry = Registry::start_with(home, &root, &["--rate-limit", "1:1"]);
        let user = home.join("user");
        let out = run(webcpm(&user).args(["--registry", &registry.url, "install", "test/hello"]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let log = registry.log();
        assert!(log.iter().any(|l| l.contains(" 429 ")), "{log:#?}");
        let ran = run(webcpm(&user).args(["run", "test/hello"]));
        assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
        // A publish is four requests: each answered 429 is sent again after its Retry-After.
        let token = make_token(home, &root, &["--namespace", "test"], &[]);
        let pkg = Pkg {
            name: "test/limited",
            version: "1.0.0",
            ..Pkg::default()
        };
        let dir = package_dir(home, &pkg);
        let before = registry.log().len();
        let out = run(webcpm(&user)
            .env("WEBCPM_TOKEN", &token)
            .args(["--registry", &registry.url, "publish"])
            .arg(&dir));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let log = registry.log();
        assert!(
            log[before..].iter().any(|l| l.contains(" 429 ")),
            "{log:#?}"
        );
        let out = run(webcpm(&user).args(["--registry", &registry.url, "install", "test/limited"]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    {
        // Per token: the address is free, the token is not.
        let registry = Registry::start_with(
            home,
            &root,
            &["--rate-limit", "0", "--token-rate-limit", "2:2"],
        );
        let status = |token: Option<&'static str>| {
            let mut request = client
                .post(&registry.url)
                .json(&serde_json::json!({ "query": "{ __typename }" }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let mut with = Vec::new();
        for _ in 0..6 {
            with.push(status(Some("wcpt_the_same_token")).await);
        }
        assert!(with.iter().filter(|s| **s == 429).count() >= 3, "{with:?}");
        for _ in 0..6 {
            assert_eq!(status(None).await, 200);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_request_ids_for_the_operator() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let registry = Registry::start_with(home, &root, &["--access-log-format", "json"]);
    let client = reqwest::Client::new();

    let r = get(&client, &registry, "/healthz").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap().trim(), "ok");
    let r = get(&client, &registry, "/readyz").await;
    assert_eq!(r.status().as_u16(), 200);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["database"], "ok", "{ready}");

    // A request id from the caller is kept and echoed; a bad one is replaced.
    let echoed = |id: &'static str| {
        let request = client
            .post(&registry.url)
            .header("x-request-id", id)
            .json(&serde_json::json!({ "query": "{ __typename }" }));
        async move {
            let r = request.send().await.unwrap();
            r.headers()["x-request-id"].to_str().unwrap().to_string()
        }
    };
    assert_eq!(echoed("trace-42.a").await, "trace-42.a");
    let made = echoed("not/an id").await;
    assert_eq!(made.len(), 32, "{made}");
    assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");

    // A real client: it sends a request id of its own, logs it, and the registry logs it too.
    let user = home.join("user");
    let out = run(webcpm(&user).env_remove("RUST_LOG").args([
        "-vv",
        "--registry",
        &registry.url,
        "install",
        "test/hello",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let client_ids: Vec<String> = stderr(&out)
        .lines()
        .filter_map(|l| l.split("request id ").nth(1))
        .map(|rest| rest.split(':').next().unwrap_or("").to_string())
        .collect();
    assert!(!client_ids.is_empty(), "{}", stderr(&out));

    let lines: Vec<serde_json::Value> = registry
        .log()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let traced = lines.iter().find(|l| l["id"] == "trace-42.a").unwrap();
    assert_eq!(traced["method"], "POST");
    assert_eq!(traced["path"], "/graphql");
    assert_eq!(traced["status"], 200);
    assert!(traced["ms"].is_number(), "{traced}");
    for id in &client_ids {
        assert!(
            lines.iter().any(|l| l["id"] == id.as_str()),
            "{id} not in {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["path"].as_str().unwrap_or("").starts_with("/blobs/") && l["status"] == 200),
        "{lines:#?}"
    );

    let metrics = get(&client, &registry, "/metrics").await;
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    let metrics = metrics.text().await.unwrap();
    for wanted in [
        "webcpm_registry_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"}",
        "webcpm_registry_http_request_duration_seconds_bucket{route=\"/graphql\",le=",
        "webcpm_registry_downloads_total{status=\"200\"}",
        "webcpm_registry_rollout_v3_percent ",
        "webcpm_registry_rollout_rolled_back 0",
    ] {
        assert!(metrics.contains(wanted), "{wanted} not in\n{metrics}");
    }
    let resolves: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("webcpm_registry_resolves_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(resolves >= 1.0, "{metrics}");

    // The blob store cannot be written: not ready (503), and says which part.
    std::fs::remove_dir_all(root.join("tmp")).unwrap();
    std::fs::write(root.join("tmp"), b"in the way").unwrap();
    let r = get(&client, &registry, "/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["database"], "ok");
    assert!(
        ready["blobs"].as_str().unwrap().contains("not writable"),
        "{ready}"
    );
    assert_eq!(
        get(&client, &registry, "/healthz").await.status().as_u16(),
        200,
        "alive all the same"
    );
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_takes_no_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let mut registry = Registry::start(home, &root);
    let addr = host(&registry);
    let body = br#"{"query":"{ getPackage(name: \"test/hello\") { versions { version } } }"}"#;
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    unsafe {
        libc::kill(registry.pid() as i32, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "a stopping server takes no new connection"
    );
    stream.write_all(&body[10..]).unwrap();
    let answer = read_all(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"1.0.0\""), "{answer}");
    let status = registry
        .wait_exit(Duration::from_secs(10))
        .expect("it exits");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

fn operator(home: &Path, root: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(webcpm(home)
        .args(["registry"])
        .args(args)
        .arg("--json")
        .arg("--root")
        .arg(root));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

fn failures(client: &str, n: usize) -> serde_json::Value {
    let report = serde_json::json!({
        "package": "test/hello", "version": "1.0.0", "format": "v3", "phase": "run",
        "ok": false, "error_class": "trap", "bucket": 1
    });
    serde_json::json!({ "client": client, "reports": vec![report; n] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_need_a_token_and_one_client_cannot_halt_a_rollout() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    operator(home, &root, &["keygen"]);
    let token = operator(
        home,
        &root,
        &["token", "create", "--reports", "--name", "fleet"],
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    operator(
        home,
        &root,
        &[
            "rollout",
            "automate",
            "--on-regression",
            "halt",
            "--min-samples",
            "5",
            "--threshold",
            "10",
        ],
    );
    operator(home, &root, &["rollout", "set", "--v3-percent", "50"]);
    let registry = Registry::start(home, &root);
    let url = format!("{}/rollout/reports", base(&registry));
    let client = reqwest::Client::new();
    let post = |batch: serde_json::Value, bearer: Option<&str>| {
        let mut request = client.post(&url).json(&batch);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let challenge = r.headers().get("www-authenticate").is_some();
            (
                status,
                challenge,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    // Forged: no token, a made-up one, a publish token.
    let (status, challenge, _) = post(failures("x", 10), None).await;
    assert_eq!((status, challenge), (401, true));
    assert_eq!(post(failures("x", 10), Some("wcpr_forged")).await.0, 401);
    let publish = operator(home, &root, &["token", "create", "--namespace", "test"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post(failures("x", 10), Some(&publish)).await.0, 401);

    // One machine floods failures: kept up to its bound, and it counts as one client.
    let (status, _, taken) = post(failures("flooder", 1000), Some(&token)).await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["stored"], 1000);
    let (_, _, taken) = post(failures("flooder", 500), Some(&token)).await;
    assert_eq!(
        (taken["stored"].as_u64(), taken["dropped"].as_u64()),
        (Some(0), Some(500))
    );
    let status = operator(home, &root, &["rollout", "status"]);
    assert_eq!(status["policy"]["halted"], false, "{status}");
    let v3 = &status["rates"]["packages"]["test/hello"]["v3"];
    assert_eq!(v3["clients"], 1, "{v3}");
    assert_eq!(v3["reports"], 1000, "{v3}");

    // Many machines failing is a regression (v2 works on as many): the rollout halts.
    let ok = |client: String| {
        let report = serde_json::json!({
            "package": "test/hello", "version": "1.0.0", "format": "v2", "phase": "run",
            "ok": true, "bucket": 1
        });
        serde_json::json!({ "client": client, "reports": [report] })
    };
    for i in 0..6 {
        assert_eq!(post(ok(format!("good{i}")), Some(&token)).await.0, 200);
        assert_eq!(
            post(failures(&format!("bad{i}"), 1), Some(&token)).await.0,
            200
        );
    }
    let status = operator(home, &root, &["rollout", "status"]);
    assert_eq!(status["policy"]["halted"], true, "{status}");
    let reason = status["history"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("clients"), "{reason}");

    // A leaked token is revoked, and what it sent goes with it.
    let revoked = operator(home, &root, &["token", "revoke", &token]);
    assert_eq!(revoked["kind"], "reports");
    assert_eq!(revoked["reports_removed"], 1012, "{revoked}");
    assert_eq!(post(failures("x", 1), Some(&token)).await.0, 401);
    let status = operator(home, &root, &["rollout", "status"]);
    assert!(
        status["rates"]["packages"]["test/hello"].is_null()
            || status["rates"]["packages"]["test/hello"]["v3"]["reports"] == 0,
        "{status}"
    );
}

/// The first `.webc` file of a registry directory.
fn a_webc_file(root: &Path) -> Vec<u8> {
    let file = std::fs::read_dir(root.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "webc"))
        .unwrap();
    std::fs::read(file).unwrap()
}

/// Replicas on PostgreSQL and docker-registry, with the database URL in a file: an upload
/// started on one replica takes chunks on both and is published through the second; then a
/// backup of the database and the blob store, restored into a fresh replica, serves the same
/// packages; and a replica whose database is gone says it is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_uploads_and_a_backup_restores_into_a_fresh_replica() {
    use crate::services::{OciRegistry, Postgres};
    // The postgres crate blocks on a runtime of its own: off this one's threads.
    use tokio::task::block_in_place as blocking;
    let Some(pg) = blocking(Postgres::start) else {
        return;
    };
    let Some(oci) = OciRegistry::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let secret = home.join("database-url");
    std::fs::write(&secret, format!("{}\n", blocking(|| pg.database("svc")))).unwrap();
    let blobs = oci.repo("webcpm/packages");
    let shared = [
        "--database-file",
        secret.to_str().unwrap(),
        "--blobs",
        blobs.as_str(),
    ];
    publish_new(home, &home.join("r1"), "test/hello", "1.0.0", &shared);
    let a = Registry::start_with(home, &home.join("r1"), &shared);
    // B hands out upload URLs as A does (behind one address, they would share it).
    let mut b_args = shared.to_vec();
    let a_base = base(&a);
    b_args.extend(["--upload-url", a_base.as_str()]);
    let b = Registry::start_with(home, &home.join("r2"), &b_args);
    let token = make_token(home, &home.join("r1"), &["--namespace", "acme"], &shared);

    let client = reqwest::Client::new();
    let gql = |registry: &Registry, query: String| {
        let request = client
            .post(&registry.url)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": query }));
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let answer = gql(
        &a,
        r#"mutation { generateUploadUrl(input: {name: "acme/raw"}) { signedUrl { url } } }"#.into(),
    )
    .await;
    let url = answer["data"]["generateUploadUrl"]["signedUrl"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let on_b = url.replace(&a_base, &base(&b));
    let webc = a_webc_file(&hello_registry(&home.join("local")).0);
    let half = webc.len() / 2;
    let put = |to: &str, range: std::ops::Range<usize>| {
        client
            .put(to)
            .header(
                "content-range",
                format!("bytes {}-{}/{}", range.start, range.end - 1, webc.len()),
            )
            .body(webc[range].to_vec())
            .send()
    };
    let r = client
        .post(&url)
        .header("x-goog-resumable", "start")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(put(&url, 0..half).await.unwrap().status().as_u16(), 308);
    assert_eq!(
        put(&on_b, half + 1..webc.len())
            .await
            .unwrap()
            .status()
            .as_u16(),
        409,
        "B knows where A's chunk ended"
    );
    assert_eq!(
        put(&on_b, half..webc.len())
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let answer = gql(
        &b,
        format!(
            r#"mutation {{ publishPackage(input: {{name: "acme/raw", version: "1.0.0", manifest: "",
                signedUrl: "{url}", uploadFormat: webcv3}}) {{ success }} }}"#
        ),
    )
    .await;
    assert_eq!(
        answer["data"]["publishPackage"]["success"], true,
        "{answer}"
    );
    let user = home.join("user");
    for name in ["acme/raw", "test/hello"] {
        let out = run(webcpm(&user).args(["--registry", &a.url, "install", name]));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    }
    // Reports go to one replica; the rollout page of the other counts them (on PostgreSQL).
    let kind = ["--reports", "--name", "fleet"];
    let reports = make_token(home, &home.join("r1"), &kind, &shared);
    let batch = serde_json::json!({ "client": "c1", "reports": [{
        "package": "test/hello", "version": "1.0.0", "format": "v3", "phase": "install",
        "ok": false, "error_class": "integrity", "bucket": 3 }] });
    let r = client
        .post(format!("{}/rollout/reports", base(&a)))
        .bearer_auth(&reports)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = get(&client, &b, "/rollout").await;
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<td>v3</td><td>install</td><td>1</td><td>1</td>"),
        "{page}"
    );
    assert!(
        !std::fs::read_to_string(format!("/proc/{}/cmdline", a.pid()))
            .unwrap()
            .contains("postgres://"),
        "the database URL is not on the command line"
    );

    // Backup: the database with pg_dump, the blob store as files; restored elsewhere.
    let dump = home.join("registry.dump");
    let postgres = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(Postgres::program(program))
            .args(args)
            .arg(&dump)
            .output()
            .unwrap();
        let why = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{program}: {why}");
    };
    postgres(
        "pg_dump",
        &["--dbname", &pg.url("svc"), "--format=custom", "--file"],
    );
    let restored = blocking(|| pg.database("restored"));
    postgres("pg_restore", &["--no-owner", "--dbname", &restored]);
    let oci_copy = oci.copy();
    let copy_blobs = oci_copy.repo("webcpm/packages");
    let fresh = Registry::start_with(
        home,
        &home.join("r3"),
        &["--database", &restored, "--blobs", &copy_blobs],
    );
    let user = home.join("after-restore");
    for name in ["acme/raw", "test/hello"] {
        let out = run(webcpm(&user).args(["--registry", &fresh.url, "install", name]));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    }
    let out = run(webcpm(&user).args(["run", "test/hello"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ready = get(&client, &fresh, "/readyz").await;
    assert_eq!(ready.status().as_u16(), 200);

    // The database goes away: alive, not ready, and it says why.
    blocking(|| drop(pg));
    let r = get(&client, &fresh, "/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_ne!(ready["database"], "ok", "{ready}");
    assert_eq!(ready["blobs"], "ok", "{ready}");
    let alive = get(&client, &fresh, "/healthz").await;
    assert_eq!(alive.status().as_u16(), 200);
    // A resolve it cannot answer is a 503 to retry, not a 200 that carries an error.
    let r = client
        .post(&fresh.url)
        .json(&serde_json::json!({
            "query": r#"{ getPackage(name: "test/hello") { versions { version } } }"#
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{answer}"
    );
}
