//! Fleet control: a real `registry serve` publishes a signed policy, 200 simulated clients
//! (separate stores, in-process through the library) and a few real CLI processes follow it
//! through percentage changes, an operator's rollback, an automatic rollback from failing v3
//! run reports, and the registry going away; forged, replayed and expired policies are refused,
//! and a rotated key keeps pinned clients following.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use webcpm_client::fleet::reports::{self, Phase, Report};
use webcpm_client::fleet::{self, Refresh, SourceConfig, source};
use webcpm_client::package::{PackageName, WebcVersion};
use webcpm_client::policy::{Policy, Rollout};

use crate::common::*;

/// The refresh interval the simulated clients use.
const REFRESH: Duration = Duration::from_secs(1);

fn operator(home: &Path, root: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(webcpm(home)
        .args(["registry", "rollout", "--json"])
        .args(args)
        .arg("--root")
        .arg(root));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

/// Makes (or with `--rotate`, rotates) the registry's policy keys; returns the JSON report,
/// whose `public_key` is the root that clients pin.
fn keygen_report(home: &Path, root: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run(webcpm(home)
        .args(["registry", "keygen", "--json", "--root"])
        .arg(root)
        .args(extra));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

/// The root key that clients pin.
fn keygen(home: &Path, root: &Path, extra: &[&str]) -> String {
    keygen_report(home, root, extra)["public_key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A report token made the way an operator makes one.
fn report_token(home: &Path, root: &Path, name: &str) -> String {
    make_token(home, root, &["--reports", "--name", name], &[])
}

/// One simulated machine: its own store (and so its own installation id) and policy copy.
struct Client {
    home: PathBuf,
    id: String,
}

impl Client {
    fn new(home: PathBuf) -> Client {
        let store = webcpm_client::store::Store::open(&home).unwrap();
        let id = store.installation_id().unwrap();
        Client { home, id }
    }

    fn policy(&self, config: &SourceConfig) -> Policy {
        Policy {
            rollout: Rollout {
                installation_id: self.id.clone(),
                registry: fleet::registry_layer(&self.home, config).map(|(l, _)| l),
                ..Rollout::default()
            },
            ..Policy::default()
        }
    }

    fn version(&self, config: &SourceConfig) -> Option<u64> {
        fleet::registry_layer(&self.home, config).map(|(l, _)| l.version)
    }
}

fn packages() -> Vec<PackageName> {
    (0..10)
        .map(|i| format!("sim/p{i}").parse().unwrap())
        .collect()
}

/// The (client, package) pairs that put v3 first.
fn v3_pairs(clients: &[Client], config: &SourceConfig) -> BTreeSet<(usize, usize)> {
    let names = packages();
    let mut set = BTreeSet::new();
    for (c, client) in clients.iter().enumerate() {
        let policy = client.policy(config);
        for (p, name) in names.iter().enumerate() {
            if policy.order(name).formats[0] == WebcVersion::V3 {
                set.insert((c, p));
            }
        }
    }
    set
}

async fn refresh_all(
    clients: &[Client],
    config: &SourceConfig,
    http: &webcpm_client::http::Client,
) {
    let jobs = clients.iter().map(|c| async move {
        let dir = fleet::dir(&c.home);
        source::refresh(http, config, &dir, Duration::from_secs(10), true).await
    });
    for refresh in futures_util::future::join_all(jobs).await {
        assert!(
            matches!(refresh, Refresh::Updated { .. } | Refresh::Confirmed),
            "{refresh:?}"
        );
    }
}

fn share(pairs: &BTreeSet<(usize, usize)>, clients: usize) -> f64 {
    pairs.len() as f64 * 100.0 / (clients * packages().len()) as f64
}

/// Client config for a real CLI process following the registry (and reporting to it with
/// `token`).
fn follow_config(home: &Path, registry: &str, key: &str, token: Option<&str>) {
    let dir = home.join("xdg-config/webcpm");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = format!(
        "[registry]\nurl = \"{registry}\"\n[rollout]\npolicy_key = \"{key}\"\nrefresh = 1\n"
    );
    if let Some(token) = token {
        text.push_str(&format!("[telemetry]\nreport_token = \"{token}\"\n"));
    }
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

fn installed_format(home: &Path, name: &str) -> String {
    let out = run(webcpm(home).args(["list", "--json"]));
    json(&out)["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == name)
        .map(|p| p["webc"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Every client polls its policy as a timer would, until each puts v2 first for every package.
async fn wait_all_on_v2(
    clients: Arc<Vec<Client>>,
    config: &SourceConfig,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let http = webcpm_client::http::client(&Default::default()).unwrap();
    let jobs = (0..clients.len()).map(|i| {
        let (clients, config, http) = (clients.clone(), config.clone(), http.clone());
        async move {
            let client = &clients[i];
            let names = packages();
            loop {
                let dir = fleet::dir(&client.home);
                let refresh =
                    source::refresh(&http, &config, &dir, Duration::from_secs(5), false).await;
                let policy = client.policy(&config);
                if names
                    .iter()
                    .all(|n| policy.order(n).formats[0] == WebcVersion::V2)
                {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < limit * 3,
                    "client {i} never moved to v2: {refresh:?}, {:?}",
                    client.version(&config)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    futures_util::future::join_all(jobs)
        .await
        .into_iter()
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_200_follows_the_registry_and_a_bad_v3_halts_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let key = keygen(home, &root, &[]);
    let token = report_token(home, &root, "fleet");
    publish_new(home, &root, "fleet/app", "1.0.0", &[]);
    // 200 machines, all on 127.0.0.1 here: the per-address limits are for real addresses.
    let mut registry = Registry::start_with(
        home,
        &root,
        &["--rate-limit", "0", "--max-connections-per-address", "1024"],
    );
    let config = SourceConfig {
        url: fleet::policy_url(&registry.url),
        key: fleet::document::parse_key(&key).unwrap(),
        refresh: REFRESH,
    };
    let http = webcpm_client::http::client(&Default::default()).unwrap();
    let clients: Vec<Client> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    (t * 50..(t + 1) * 50)
                        .map(|i| Client::new(home.join(format!("clients/{i}"))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    // 10% -> 30% -> 10%: the share follows, and only the pairs that should move do.
    let stage = |percent: u8| {
        let (clients, config, http, root) = (&clients, &config, &http, &root);
        async move {
            let text = percent.to_string();
            operator(
                home,
                root,
                &["set", "--v3-percent", &text, "--reason", "stage"],
            );
            refresh_all(clients, config, http).await;
            let pairs = v3_pairs(clients, config);
            let share = share(&pairs, clients.len());
            assert!(
                (share - f64::from(percent)).abs() <= 3.0,
                "{share} at {percent}%"
            );
            pairs
        }
    };
    let ten = stage(10).await;
    let thirty = stage(30).await;
    assert!(
        ten.is_subset(&thirty),
        "a pair left v3 while the share grew"
    );
    assert_eq!(stage(10).await, ten, "10 -> 30 -> 10 is the same cohort");

    // Real CLI machines: installs follow the registry's per-package format, then its rollback.
    let cli: Vec<PathBuf> = (0..3).map(|i| home.join(format!("cli/{i}"))).collect();
    operator(
        home,
        &root,
        &["set", "--package", "fleet/app", "--webc", "v3"],
    );
    for h in &cli {
        follow_config(h, &registry.url, &key, Some(&token));
        let out = run(webcpm(h).args(["install", "fleet/app"]));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(installed_format(h, "fleet/app"), "v3");
    }

    let clients = Arc::new(clients);
    let rollback = operator(
        home,
        &root,
        &["rollback", "--reason", "v3 crashes", "--by", "ops"],
    );
    assert_eq!(rollback["change"]["actor"], "ops");
    let took = wait_all_on_v2(clients.clone(), &config, REFRESH + Duration::from_secs(1)).await;
    eprintln!("rollback to the last of 200 clients on v2: {took:?}");
    assert!(took <= REFRESH + Duration::from_secs(1), "{took:?}");
    // A timer firing on one machine from several processes at once: each sync succeeds.
    let syncs: Vec<_> = (0..4)
        .map(|_| {
            webcpm(&cli[0])
                .args(["rollout", "sync", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for sync in syncs {
        let out = sync.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(json(&out)["complete"], true);
    }
    for h in &cli {
        let out = run(webcpm(h).args(["rollout", "sync", "--json"]));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(installed_format(h, "fleet/app"), "v2");
        let status = json(&run(webcpm(h).args(["rollout", "status", "--json"])));
        let rule = status["packages"][0]["rule"].as_str().unwrap().to_string();
        assert!(rule.starts_with("registry rollback to v2"), "{rule}");
        assert_eq!(status["registry"]["rolled_back"], true);
    }

    // The automation: v3 fails at run on every client in its cohort; few reports do nothing,
    // enough make the registry roll back by itself, and the clients follow.
    operator(
        home,
        &root,
        &[
            "automate",
            "--on-regression",
            "rollback",
            "--min-samples",
            "20",
            "--threshold",
            "10",
            "--window",
            "600",
        ],
    );
    operator(home, &root, &["resume", "--reason", "fixed, retrying"]);
    operator(
        home,
        &root,
        &["set", "--v3-percent", "30", "--reason", "again"],
    );
    refresh_all(&clients, &config, &http).await;
    let report_url = fleet::reports_url(&config.url);
    let name: PackageName = "sim/p0".parse().unwrap();
    let send = |range: std::ops::Range<usize>| {
        let (clients, config, http, report_url, name, token) = (
            clients.clone(),
            config.clone(),
            http.clone(),
            report_url.clone(),
            name.clone(),
            token.clone(),
        );
        async move {
            for c in &clients[range] {
                let policy = c.policy(&config);
                let format = policy.order(&name).formats[0];
                let report = Report {
                    package: name.to_string(),
                    version: "1.0.0".into(),
                    format,
                    phase: Phase::Run,
                    ok: format == WebcVersion::V2,
                    error_class: (format == WebcVersion::V3).then(|| "trap".into()),
                    bucket: policy.cohort(&name).1,
                };
                let dir = fleet::dir(&c.home);
                reports::record(&dir, &[report]).unwrap();
                let id = reports::client_id(&config.url, &c.id);
                let outbox = reports::Outbox {
                    url: &report_url,
                    client: &id,
                    token: Some(&token),
                };
                let sent = reports::flush(&http, &outbox, &dir, Duration::from_secs(5)).await;
                assert_eq!(sent.unwrap(), 1);
                assert_eq!(reports::pending(&dir), 0);
            }
        }
    };
    send(0..20).await;
    let status = operator(home, &root, &["status"]);
    assert_eq!(
        status["policy"]["rolled_back"], false,
        "too few samples: {status}"
    );
    send(20..200).await;
    let status = operator(home, &root, &["status"]);
    assert_eq!(status["policy"]["rolled_back"], true, "{status}");
    let last = &status["history"][0];
    assert_eq!(last["actor"], "automation");
    assert!(
        last["reason"].as_str().unwrap().contains("v3 failed"),
        "{last}"
    );
    assert!(
        status["rates"]["overall"]["v3"]["failures"]
            .as_u64()
            .unwrap()
            >= 20
    );
    // The CLI machines reported their installs too (sent with their `rollout sync`).
    let app = &status["rates"]["packages"]["fleet/app"];
    assert_eq!(app["v3"]["reports"], 3, "{app}");
    assert_eq!(app["v3"]["failures"], 0, "{app}");
    let took = wait_all_on_v2(clients.clone(), &config, REFRESH + Duration::from_secs(1)).await;
    assert!(took <= REFRESH + Duration::from_secs(1), "{took:?}");

    // The registry goes away: clients keep the last good policy, and a warm run still runs.
    let before: Vec<Option<u64>> = clients.iter().map(|c| c.version(&config)).collect();
    registry.stop();
    tokio::time::sleep(REFRESH + Duration::from_millis(100)).await;
    for c in clients.iter().take(20) {
        let dir = fleet::dir(&c.home);
        let again = || source::refresh(&http, &config, &dir, Duration::from_secs(2), false);
        let refresh = again().await;
        assert!(
            matches!(
                refresh,
                Refresh::Failed(source::SourceError::Unreachable { .. })
            ),
            "{refresh:?}"
        );
        // A registry that is away is not asked again before the interval is over.
        assert!(matches!(again().await, Refresh::UpToDate));
    }
    let after: Vec<Option<u64>> = clients.iter().map(|c| c.version(&config)).collect();
    assert_eq!(before, after);
    let h = &cli[0];
    let started = Instant::now();
    let out = run(webcpm(h).args(["run", "fleet/app"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(installed_format(h, "fleet/app"), "v2");
    let status = json(&run(webcpm(h).args(["rollout", "status", "--json"])));
    assert_eq!(status["registry"]["rolled_back"], true, "{status}");
}

/// A server that answers `/rollout/policy.json` with whatever bytes the test sets.
async fn fake_registry(
    body: Arc<std::sync::Mutex<Vec<u8>>>,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/rollout/policy.json",
        get(move || {
            let body = body.clone();
            async move { body.lock().unwrap().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/graphql"), task)
}

fn signed(
    key: &ed25519_dalek::SigningKey,
    version: u64,
    issued_at: i64,
    expires_at: i64,
) -> webcpm_client::fleet::document::Envelope {
    let policy = webcpm_client::fleet::document::PolicyDocument {
        policy_version: version,
        v3_percent: 50,
        packages: Default::default(),
        rolled_back: false,
        halted: false,
        issued_at,
        expires_at,
    };
    webcpm_client::fleet::document::sign(key, policy, None, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_replayed_and_expired_policies_are_refused() {
    use webcpm_client::fleet::document;
    let tmp = tempfile::tempdir().unwrap();
    let key = document::generate().unwrap();
    let body = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (registry, server) = fake_registry(body.clone()).await;
    let config = SourceConfig {
        url: fleet::policy_url(&registry),
        key: key.verifying_key(),
        refresh: REFRESH,
    };
    let dir = fleet::dir(tmp.path());
    let http = webcpm_client::http::client(&Default::default()).unwrap();
    let now = source::now();
    let serve = |envelope: &document::Envelope| {
        *body.lock().unwrap() = serde_json::to_vec(envelope).unwrap();
    };
    let fetch = || source::refresh(&http, &config, &dir, Duration::from_secs(5), true);

    serve(&signed(&key, 5, now, now + 3600));
    assert!(matches!(
        fetch().await,
        Refresh::Updated { from: None, to: 5 }
    ));

    let mut tampered = signed(&key, 6, now, now + 3600);
    tampered.policy.rolled_back = true;
    serve(&tampered);
    let refused = fetch().await;
    let Refresh::Failed(e) = refused else {
        panic!("{refused:?}")
    };
    assert!(e.to_string().contains("signature does not match"), "{e}");

    serve(&signed(&key, 4, now + 10, now + 3600));
    let Refresh::Failed(e) = fetch().await else {
        panic!("a replay was accepted")
    };
    assert!(e.to_string().contains("older than the policy v5"), "{e}");

    serve(&signed(&key, 7, now - 7200, now - 3600));
    let Refresh::Failed(e) = fetch().await else {
        panic!("an expired policy was accepted")
    };
    assert!(e.to_string().contains("expired"), "{e}");

    let stranger = document::generate().unwrap();
    serve(&signed(&stranger, 8, now, now + 3600));
    let Refresh::Failed(e) = fetch().await else {
        panic!("a foreign key was accepted")
    };
    assert!(e.to_string().contains("neither the pinned key"), "{e}");
    assert_eq!(source::load(&dir, &config.key).unwrap().version(), 5);

    // A real client process says why, and keeps its copy.
    let home = tmp.path().join("cli");
    follow_config(
        &home,
        &registry,
        &document::key_hex(&key.verifying_key()),
        None,
    );
    serve(&signed(&key, 5, now, now + 3600));
    let out = run(webcpm(&home).args(["rollout", "sync"]));
    assert_eq!(out.status.code(), Some(0));
    serve(&tampered);
    let out = run(webcpm(&home).args(["rollout", "sync"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signature does not match"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("registry policy v5 in force"));

    // A copy that expires with the registry away: the safe state, v2 first, with a warning.
    serve(&signed(&key, 9, now, now + 2));
    assert!(matches!(fetch().await, Refresh::Updated { to: 9, .. }));
    server.abort();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(fetch().await, Refresh::Failed(_)));
    let (layer, _) = fleet::registry_layer(tmp.path(), &config).unwrap();
    assert!(layer.expired);
    let policy = Policy {
        rollout: Rollout {
            registry: Some(layer),
            ..Rollout::default()
        },
        ..Policy::default()
    };
    let order = policy.order(&"ns/any".parse().unwrap());
    assert_eq!(order.formats[0], WebcVersion::V2);
    assert!(order.rule.contains("expired"), "{}", order.rule);
}

#[test]
fn a_rotated_key_is_followed_by_clients_that_pinned_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let first = keygen_report(home, &root, &[]);
    let pinned = first["public_key"].as_str().unwrap().to_string();
    let out = run(webcpm(home)
        .args(["registry", "keygen", "--root"])
        .arg(&root));
    assert_eq!(out.status.code(), Some(2), "a second key needs --rotate");
    let registry = Registry::start(home, &root);
    let client = home.join("client");
    follow_config(&client, &registry.url, &pinned, None);
    operator(home, &root, &["set", "--v3-percent", "40"]);
    let sync = |h: &Path| json(&run(webcpm(h).args(["rollout", "sync", "--json"])));
    assert_eq!(sync(&client)["policy_version"], 1);

    let rotated = keygen_report(home, &root, &["--rotate"]);
    assert_eq!(rotated["public_key"], first["public_key"], "the root stays");
    assert_ne!(rotated["signing_key"], first["signing_key"]);
    assert_eq!(rotated["previous_key"], first["signing_key"]);
    operator(home, &root, &["set", "--v3-percent", "50"]);
    assert_eq!(
        sync(&client)["policy_version"],
        2,
        "the root endorses the new signing key"
    );
    let fresh = home.join("fresh");
    let signing = rotated["signing_key"].as_str().unwrap();
    follow_config(&fresh, &registry.url, signing, None);
    assert_eq!(
        sync(&fresh)["policy_version"],
        2,
        "or the signing key itself is pinned"
    );
    let other = home.join("other");
    let stranger = webcpm_client::fleet::document::generate().unwrap();
    follow_config(
        &other,
        &registry.url,
        &webcpm_client::fleet::document::key_hex(&stranger.verifying_key()),
        None,
    );
    let out = sync(&other);
    assert!(out["policy_version"].is_null(), "{out}");
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("neither the pinned key"),
        "{out}"
    );
}

/// An outcome report whose error class is cut inside a multi-byte character is stored (cut at a
/// character boundary), not answered with a panic.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_cut_inside_a_character_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    keygen(home, &root, &[]);
    let registry = Registry::start(home, &root);
    // 31 ASCII bytes, then a two-byte character across the 32-byte limit.
    let class = format!("{}é and more", "x".repeat(31));
    let batch = serde_json::json!({
        "client": "c0",
        "reports": [{
            "package": "test/hello", "version": "1.0.0", "format": "v3", "phase": "run",
            "ok": false, "error_class": class, "bucket": 7
        }]
    });
    let url = fleet::reports_url(&fleet::policy_url(&registry.url));
    let token = report_token(home, &root, "fleet");
    let answer = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let status = operator(home, &root, &["status"]);
    let hello = &status["rates"]["packages"]["test/hello"]["v3"];
    assert_eq!(hello["failures"], 1, "{status}");
}

/// A policy `version` signed by `key` under `root`'s endorsement until `until`, with `revoked`.
fn endorsed(
    root: &ed25519_dalek::SigningKey,
    key: &ed25519_dalek::SigningKey,
    version: u64,
    until: i64,
    revoked: Option<webcpm_client::fleet::document::SignedRevocations>,
) -> webcpm_client::fleet::document::Envelope {
    use webcpm_client::fleet::document;
    let now = source::now();
    let mut envelope = signed(key, version, now, now + 3600);
    if key.verifying_key() != root.verifying_key() {
        envelope.endorsement = Some(document::endorse(root, &key.verifying_key(), until));
    }
    let policy = envelope.policy.clone();
    document::sign(key, policy, envelope.endorsement, revoked)
}

/// A leaked signing key: it cannot jump clients past the bound, it is revoked by the root, the
/// clients that took its policy go back to the registry's, and an endorsement runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaked_keys_are_bounded_revoked_and_expire() {
    use webcpm_client::fleet::document;
    let tmp = tempfile::tempdir().unwrap();
    let root = document::generate().unwrap();
    let leaked = document::generate().unwrap();
    let body = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (registry, _server) = fake_registry(body.clone()).await;
    let config = SourceConfig {
        url: fleet::policy_url(&registry),
        key: root.verifying_key(),
        refresh: REFRESH,
    };
    let dir = fleet::dir(tmp.path());
    let http = webcpm_client::http::client(&Default::default()).unwrap();
    let now = source::now();
    let year = now + 365 * 86_400;
    let serve = |envelope: &document::Envelope| {
        *body.lock().unwrap() = serde_json::to_vec(envelope).unwrap();
    };
    let fetch = || source::refresh(&http, &config, &dir, Duration::from_secs(5), true);
    let refused = |refresh: Refresh| match refresh {
        Refresh::Failed(e) => e.to_string(),
        other => panic!("accepted: {other:?}"),
    };

    serve(&endorsed(&root, &leaked, 5, year, None));
    assert!(matches!(fetch().await, Refresh::Updated { to: 5, .. }));
    // The leaked key signs u64::MAX, then a jump past the bound: both refused.
    serve(&endorsed(&root, &leaked, u64::MAX, year, None));
    assert!(refused(fetch().await).contains("jumps more than 1000"));
    serve(&endorsed(&root, &leaked, 5 + 1001, year, None));
    assert!(refused(fetch().await).contains("jumps more than 1000"));
    // Within the bound, it is taken (the key is still endorsed)...
    serve(&endorsed(&root, &leaked, 900, year, None));
    assert!(matches!(fetch().await, Refresh::Updated { to: 900, .. }));

    // ...until the root revokes it and the registry signs with a new key, at a lower version.
    let fresh = document::generate().unwrap();
    let list = document::sign_revocations(
        &root,
        document::Revocations {
            version: 1,
            issued_at: now,
            keys: vec![document::key_hex(&leaked.verifying_key())],
        },
    );
    serve(&endorsed(&root, &fresh, 6, year, Some(list.clone())));
    assert!(
        matches!(fetch().await, Refresh::Updated { to: 6, .. }),
        "the copy from the revoked key is dropped"
    );
    // The client keeps the list: the leaked key's policies are refused without it.
    serve(&endorsed(&root, &leaked, 10, year, None));
    assert!(refused(fetch().await).contains("revoked"));
    assert_eq!(source::load(&dir, &config.key).unwrap().version(), 6);
    // A list the root did not sign is ignored, not obeyed.
    let mut forged = list.clone();
    forged.list.keys = vec![document::key_hex(&fresh.verifying_key())];
    forged.list.version = 2;
    serve(&endorsed(&root, &fresh, 7, year, Some(forged)));
    assert!(matches!(fetch().await, Refresh::Updated { to: 7, .. }));

    // The root itself may make a jump (the operator's way out of a poisoned version).
    serve(&endorsed(&root, &root, 50_000, year, Some(list.clone())));
    assert!(matches!(fetch().await, Refresh::Updated { to: 50_000, .. }));

    // An endorsement that ran out is refused.
    let stale = document::generate().unwrap();
    serve(&endorsed(
        &root,
        &stale,
        50_001,
        now - 10,
        Some(list.clone()),
    ));
    assert!(refused(fetch().await).contains("endorsement expired"));

    // A copy whose endorsement runs out after it was taken still keeps replays out.
    let brief = document::generate().unwrap();
    serve(&endorsed(
        &root,
        &brief,
        50_002,
        now + 2,
        Some(list.clone()),
    ));
    assert!(matches!(fetch().await, Refresh::Updated { to: 50_002, .. }));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    serve(&endorsed(&root, &fresh, 7, year, Some(list)));
    assert!(refused(fetch().await).contains("older than the policy v50002"));
}

/// The operator's side: `keygen --valid-for`, `--rotate`, `--revoke`, against a real server and
/// a real client process.
#[test]
fn the_operator_rotates_and_revokes_keys_and_clients_follow() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let first = keygen_report(home, &root, &["--valid-for", "1"]);
    let pinned = first["public_key"].as_str().unwrap().to_string();
    // The day is over: the root's endorsement, as the root would have written it, ended 10 s ago.
    use webcpm_client::fleet::document;
    let secret = std::fs::read_to_string(root.join("policy-root-key")).unwrap();
    let root_key = document::parse_secret(secret.trim()).unwrap();
    let signing = document::parse_key(first["signing_key"].as_str().unwrap()).unwrap();
    let ended = document::endorse(&root_key, &signing, source::now() - 10);
    std::fs::write(
        root.join("policy-key.endorsement"),
        serde_json::to_string(&ended).unwrap(),
    )
    .unwrap();
    operator(home, &root, &["set", "--v3-percent", "20"]);
    let registry = Registry::start(home, &root);
    let client = home.join("client");
    follow_config(&client, &registry.url, &pinned, None);
    let sync = |h: &Path| json(&run(webcpm(h).args(["rollout", "sync", "--json"])));
    let out = sync(&client);
    assert!(
        out["error"]
            .as_str()
            .unwrap_or_default()
            .contains("endorsement expired"),
        "{out}"
    );

    let rotated = keygen_report(home, &root, &["--rotate", "--valid-for", "30"]);
    assert_eq!(sync(&client)["policy_version"], 1);
    let old = first["signing_key"].as_str().unwrap();
    let current = rotated["signing_key"].as_str().unwrap();
    let revoke = |key: &str| {
        run(webcpm(home)
            .args(["registry", "keygen", "--json", "--revoke", key, "--root"])
            .arg(&root))
    };
    let out = revoke(current);
    assert_eq!(out.status.code(), Some(2), "the key in use is not revoked");
    assert!(stderr(&out).contains("rotate first"), "{}", stderr(&out));
    let out = revoke(&pinned);
    assert_eq!(out.status.code(), Some(2), "nor the root");
    let out = revoke("0123");
    assert_eq!(out.status.code(), Some(2), "a typo is not a key");
    assert!(
        stderr(&out).contains("is not a policy key"),
        "{}",
        stderr(&out)
    );
    let out = revoke(old);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["revoked"][0], old);

    // The root's secret can be kept offline: moved away, and given back when needed.
    let offline = home.join("offline-root");
    std::fs::rename(root.join("policy-root-key"), &offline).unwrap();
    let out = run(webcpm(home)
        .args(["registry", "keygen", "--rotate", "--root"])
        .arg(&root));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--root-key"), "{}", stderr(&out));
    let other = home.join("other-root");
    let seed: String = document::generate()
        .unwrap()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(&other, seed).unwrap();
    let out = run(webcpm(home)
        .args(["registry", "keygen", "--rotate", "--root-key"])
        .arg(&other)
        .arg("--root")
        .arg(&root));
    assert_eq!(
        out.status.code(),
        Some(2),
        "another root's secret is refused"
    );
    assert!(
        stderr(&out).contains("this registry's root is"),
        "{}",
        stderr(&out)
    );
    keygen_report(
        home,
        &root,
        &["--rotate", "--root-key", offline.to_str().unwrap()],
    );
    operator(home, &root, &["set", "--v3-percent", "30"]);
    let status = operator(home, &root, &["status"]);
    assert_eq!(status["revoked_keys"][0], old, "{status}");
    assert!(status["endorsement_expires_at"].as_i64().unwrap() > source::now());
    assert_eq!(sync(&client)["policy_version"], 2);
}
