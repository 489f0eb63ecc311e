//! Scaling out: the registry's metadata in a real PostgreSQL, its package files in a real
//! `docker-registry`, several stateless `registry serve` replicas behind a round-robin, and
//! compiled code shared between stores through the same OCI registry. Each test starts its own
//! services ([`crate::services`]) and skips, with one line, where they are not installed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;
use crate::services::{OciRegistry, Postgres};

/// A TCP proxy on 127.0.0.1 that hands each connection to the next backend in turn. With
/// `cut_after`, the first response longer than that is cut there (the connection closed), once.
/// It keeps the first line and the `Range` header of every request it saw.
struct RoundRobin {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RoundRobin {
    fn start(backends: Vec<u16>, cut_after: Option<usize>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (next, cut) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(Mutex::new(cut_after)),
        );
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let i = next.fetch_add(1, Ordering::SeqCst) % backends.len();
                let Ok(server) = TcpStream::connect(("127.0.0.1", backends[i])) else {
                    continue;
                };
                let (log, cut) = (Arc::clone(&log), Arc::clone(&cut));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(c2, s2, |chunk| record(&log, chunk), None));
                std::thread::spawn(move || pipe(server, client, |_| {}, Some(cut)));
            }
        });
        RoundRobin { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Keeps the request lines and `Range` headers found in a chunk of a request.
fn record(log: &Mutex<Vec<String>>, chunk: &[u8]) {
    let text = String::from_utf8_lossy(chunk);
    let mut log = log.lock().unwrap();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if line.starts_with("GET ") || line.starts_with("HEAD ") || lower.starts_with("range:") {
            log.push(line.trim().to_string());
        }
    }
}

/// Copies `from` to `to` until either ends; `cut` closes both after that many bytes, once.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    on_chunk: impl Fn(&[u8]),
    cut: Option<Arc<Mutex<Option<usize>>>>,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        on_chunk(&buf[..n]);
        if let Some(cut) = &cut {
            let mut limit = cut.lock().unwrap();
            if let Some(at) = *limit
                && sent + n > at
            {
                *limit = None;
                let _ = to.write_all(&buf[..at - sent]);
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Three replicas on one database and one blob store, each on its own port, all naming the
/// round-robin in front of them as their public URL and their own port for uploads.
fn replicas(home: &Path, database: &str, blobs: &str) -> (Vec<Registry>, Vec<u16>, RoundRobin) {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let proxy = RoundRobin::start(ports.clone(), None);
    let replicas = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let upload = format!("http://127.0.0.1:{port}");
            Registry::start_behind(
                home,
                &home.join(format!("replica-{i}")),
                *port,
                &proxy.url(),
                &[
                    "--database",
                    database,
                    "--blobs",
                    blobs,
                    "--upload-url",
                    &upload,
                ],
            )
        })
        .collect();
    (replicas, ports, proxy)
}

/// `registry token create` on the shared database.
fn token(home: &Path, database: &str) -> String {
    let out = run(webcpm(home)
        .args([
            "registry",
            "token",
            "create",
            "--json",
            "--namespace",
            "acme",
        ])
        .arg("--root")
        .arg(home.join("operator"))
        .args(["--database", database]));
    assert_eq!(out.status.code(), Some(0));
    json(&out)["token"].as_str().unwrap().to_string()
}

/// `webcpm publish DIR` to the replica on `port`.
fn publish_to(home: &Path, port: u16, dir: &Path, token: &str) -> std::process::Output {
    let mut cmd = webcpm(home);
    cmd.args(["publish", "--json", "--registry"])
        .arg(format!("http://127.0.0.1:{port}/graphql"))
        .arg(dir)
        .env("WEBCPM_TOKEN", token);
    cmd.output().unwrap()
}

/// One package's versions as a replica answers them.
fn answer(port: u16, name: &str) -> serde_json::Value {
    let query = r#"query($name: String!) { getPackage(name: $name) { packageName
        versions { version distribution { piritaSha256Hash piritaDownloadUrl }
                   v3: distribution(version: V3) { piritaSha256Hash piritaDownloadUrl } } } }"#;
    let body = serde_json::json!({"query": query, "variables": {"name": name}}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, json) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap()
}

/// A registry scaled out: PostgreSQL, an OCI registry, three replicas behind a round-robin, and
/// a publish token.
struct Fleet {
    tmp: tempfile::TempDir,
    ports: Vec<u16>,
    proxy: RoundRobin,
    token: String,
    oci: OciRegistry,
    _replicas: Vec<Registry>,
    _pg: Postgres,
}

impl Fleet {
    /// `None` (the test skips) where PostgreSQL or docker-registry is not installed.
    fn start() -> Option<Fleet> {
        let (pg, oci) = (Postgres::start()?, OciRegistry::start()?);
        let tmp = tempfile::tempdir().unwrap();
        let database = pg.database("registry");
        let (replicas, ports, proxy) =
            replicas(tmp.path(), &database, &oci.repo("webcpm/packages"));
        let token = token(tmp.path(), &database);
        Some(Fleet {
            tmp,
            ports,
            proxy,
            token,
            oci,
            _replicas: replicas,
            _pg: pg,
        })
    }
}

#[test]
fn replicas_on_postgres_and_oci_publish_resolve_install_and_run_alike() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    let (home, ports, proxy, token) = (fleet.tmp.path(), &fleet.ports, &fleet.proxy, &fleet.token);

    let dir = package_dir(
        home,
        &Pkg {
            name: "acme/hello",
            version: "1.0.0",
            text: "hello from a replica",
            ..Pkg::default()
        },
    );
    let out = publish_to(home, ports[0], &dir, token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let answers: Vec<serde_json::Value> = ports.iter().map(|p| answer(*p, "acme/hello")).collect();
    assert!(
        answers[0]["data"]["getPackage"]["versions"][0]["distribution"]["piritaSha256Hash"]
            .is_string(),
        "{}",
        answers[0]
    );
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);

    // Installs through the round-robin: the GraphQL answers and the downloads (redirected to
    // the OCI registry) come from whichever replica the proxy picks.
    for i in 0..3 {
        let client = home.join(format!("client-{i}"));
        let out = run(webcpm(&client)
            .args(["install", "acme/hello", "--registry"])
            .arg(format!("{}/graphql", proxy.url())));
        assert_eq!(out.status.code(), Some(0));
        let out = run(webcpm(&client).args(["run", "acme/hello"]));
        assert_eq!(stdout(&out), "hello from a replica\n");
    }
    let hash = answers[0]["data"]["getPackage"]["versions"][0]["v3"]["piritaSha256Hash"]
        .as_str()
        .unwrap();
    assert!(
        fleet.oci.blob_file(hash).is_file(),
        "the v3 file is a blob of the OCI registry"
    );
    let seen = proxy.requests();
    assert!(
        seen.iter().any(|l| l.starts_with("GET /blobs/")),
        "downloads went through the replicas, which redirect them: {seen:?}"
    );
}

#[test]
fn of_concurrent_publishes_of_one_version_exactly_one_wins() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    let (home, ports, token) = (fleet.tmp.path(), &fleet.ports, &fleet.token);
    let dirs: Vec<PathBuf> = (0..6)
        .map(|i| {
            let parent = home.join(format!("publisher-{i}"));
            let text = format!("publisher {i}");
            package_dir(
                &parent,
                &Pkg {
                    name: "acme/race",
                    version: "1.0.0",
                    text: &text,
                    ..Pkg::default()
                },
            )
        })
        .collect();
    let outcomes: Vec<(usize, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let (home, token) = (home.join(format!("publisher-{i}")), token.clone());
                let port = ports[i % 3];
                s.spawn(move || (i, publish_to(&home, port, dir, &token)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, out)| out.status.code() == Some(0))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one publish wins: {winners:?}");
    for (i, out) in &outcomes {
        if *i != winners[0] {
            assert!(
                stderr(out).contains("already in the registry"),
                "{}",
                stderr(out)
            );
        }
    }
    // The version's tag in the OCI registry lists the winner's files, whichever publisher
    // tagged last.
    let served = answer(ports[1], "acme/race");
    let version = &served["data"]["getPackage"]["versions"][0];
    let files: Vec<String> = ["distribution", "v3"]
        .iter()
        .map(|f| {
            format!(
                "sha256:{}",
                version[f]["piritaSha256Hash"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        fleet
            .oci
            .tagged_layers("webcpm/packages", "acme.race-1.0.0"),
        files
    );
    // Every replica serves the winner's package.
    let client = home.join("client");
    let out = run(webcpm(&client)
        .args(["run", "acme/race", "--registry"])
        .arg(format!("http://127.0.0.1:{}/graphql", ports[2])));
    assert_eq!(stdout(&out), format!("publisher {}\n", winners[0]));
}

#[test]
fn a_blob_in_the_oci_registry_is_fetched_by_range_and_resumed_after_a_cut() {
    let Some(oci) = OciRegistry::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // The registry's blobs are reached through a proxy that cuts the first large response.
    let cutter = RoundRobin::start(vec![oci.port], Some(300_000));
    let blobs = format!("oci://127.0.0.1:{}/webcpm/packages", cutter.port);
    let root = home.join("registry");
    publish_padded_with(home, &root, "acme/big", 2_000_000, &["--blobs", &blobs]);
    let registry = Registry::start_with(home, &root, &["--blobs", &blobs]);

    let out = run(webcpm(home).args(["install", "acme/big", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let seen = cutter.requests();
    let blob_gets: Vec<&String> = seen
        .iter()
        .filter(|l| l.starts_with("GET /v2/webcpm/packages/blobs/"))
        .collect();
    assert!(
        blob_gets.len() >= 2,
        "the download was cut and asked again: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.to_ascii_lowercase().starts_with("range: bytes=") && !l.ends_with("=0-")),
        "the second request resumes with Range: {seen:?}"
    );
    let out = run(webcpm(home).args(["run", "acme/big"]));
    assert_eq!(stdout(&out), "acme/big\n");
}

/// A module with `functions` functions of real work: large enough that compiling it shows.
fn large_module(functions: usize) -> Vec<u8> {
    let mut wat = String::from(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "large\n")
"#,
    );
    for i in 0..functions {
        wat.push_str(&format!(
            "  (func $f{i} (param i32) (result i32) (local i32)
    (local.set 1 (i32.const {i}))
    (block (loop
      (local.set 1 (i32.add (i32.mul (local.get 1) (i32.const 31)) (local.get 0)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if 1 (i32.eqz (local.get 0)))
      (br 0)))
    (i32.xor (local.get 1) (i32.rotl (local.get 1) (i32.const 7))))\n"
        ));
    }
    wat.push_str(&format!(
        r#"  (func (export "_start")
    (drop (call $f{} (i32.const 3)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))"#,
        functions - 1
    ));
    wat::parse_str(wat).unwrap()
}

/// A store's config that shares compiled code through `repo`.
fn sharing(home: &Path, repo: &str) -> std::process::Command {
    let config = home.join("config.toml");
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(&config, format!("[compile]\nshared = \"{repo}\"\n")).unwrap();
    let mut cmd = webcpm(home);
    cmd.env("WEBCPM_CONFIG", &config);
    cmd
}

/// The artifacts in a store: (engine hash, atom hex) of each `compiled/<engine>/<atom>.cwasm`.
fn artifacts(home: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for engine in std::fs::read_dir(home.join("store/compiled"))
        .unwrap()
        .flatten()
    {
        for file in std::fs::read_dir(engine.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Some(atom) = name.strip_suffix(".cwasm") {
                out.push((
                    engine.file_name().to_string_lossy().into_owned(),
                    atom.to_string(),
                ));
            }
        }
    }
    out
}

/// An OCI registry, and a local registry with a large package that a first store (`first`
/// under the returned directory) compiled and pushed to the shared repository (the returned
/// URL); `None` where `docker-registry` is not installed.
fn compiled_once() -> Option<(OciRegistry, tempfile::TempDir, String, Registry)> {
    let oci = OciRegistry::start()?;
    let tmp = tempfile::tempdir().unwrap();
    let (home, repo) = (tmp.path(), oci.repo("webcpm/compiled"));
    let root = home.join("registry");
    let dir = package_dir(
        home,
        &Pkg {
            name: "acme/large",
            version: "1.0.0",
            wasm: Some(large_module(4000)),
            ..Pkg::default()
        },
    );
    publish(home, &root, &dir, &[]);
    let registry = Registry::start(home, &root);
    let first = home.join("first");
    let out = run(sharing(&first, &repo)
        .args(["install", "-v", "acme/large", "--registry", &registry.url])
        .env("WEBCPM_OCI_AUTH", "builder:secret"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Compiled main"),
        "the first store compiles"
    );
    Some((oci, tmp, repo, registry))
}

#[test]
fn a_second_store_installs_compiled_code_from_the_shared_cache_without_compiling() {
    let Some((_oci, tmp, repo, registry)) = compiled_once() else {
        return;
    };
    let home = tmp.path();

    let second = home.join("second");
    let out = run(sharing(&second, &repo).args([
        "install",
        "-v",
        "acme/large",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("Pulled main from oci://"), "{err}");
    assert!(!err.contains("Compiling"), "nothing is compiled: {err}");
    assert_eq!(artifacts(&second), artifacts(&home.join("first")));
    let out = run(sharing(&second, &repo).args(["run", "acme/large"]));
    assert_eq!(stdout(&out), "large\n");
}

#[test]
fn a_corrupt_shared_artifact_is_recompiled_and_not_trusted() {
    let Some((_oci, tmp, repo, registry)) = compiled_once() else {
        return;
    };
    let home = tmp.path();
    let [(engine, atom)] = artifacts(&home.join("first")).try_into().unwrap();

    // Someone with push rights replaces the artifact with bytes that are not compiled code
    // (well-formed as a blob: digest and annotations match).
    let cache = webcpm::shared_cache::SharedCache::new(&repo, Some("mallory:secret")).unwrap();
    cache
        .push(
            &engine,
            &atom.parse().unwrap(),
            &vec![0x90; 4096],
            "wasmtime",
        )
        .unwrap();

    let second = home.join("second");
    let out = run(sharing(&second, &repo)
        .args(["install", "-v", "acme/large", "--registry", &registry.url])
        .env("WEBCPM_OCI_AUTH", "builder:secret"));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("does not load") || err.contains("not trusted"),
        "{err}"
    );
    assert!(
        err.contains("Compiled main"),
        "compiled here instead: {err}"
    );
    let out = run(sharing(&second, &repo).args(["run", "acme/large"]));
    assert_eq!(stdout(&out), "large\n");

    // The bad copy was not pushed over: a third store still finds it bad, and compiles too.
    let third = home.join("third");
    let out = run(sharing(&third, &repo).args([
        "install",
        "-v",
        "acme/large",
        "--registry",
        &registry.url,
    ]));
    assert!(stderr(&out).contains("Compiled main"));
    match cache.lookup(&engine, &atom.parse().unwrap()).unwrap() {
        webcpm::shared_cache::Lookup::Found(bytes) => assert_eq!(bytes, vec![0x90; 4096]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_archive_racing_a_publish_sees_all_of_the_version_or_none_of_it() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let database = pg.database("archive_race");
    let root = home.join("registry");
    let mut outcomes = Vec::new();
    // Each round publishes a new version while an archive of it starts a little later each
    // time: early archives find nothing, late ones find the whole version.
    for round in 0..8u64 {
        let version = format!("1.0.{round}");
        let dir = package_dir(
            &home.join(format!("src-{round}")),
            &Pkg {
                name: "acme/race",
                version: &version,
                ..Pkg::default()
            },
        );
        let registry = |cmd: &[&str]| {
            let mut c = webcpm(home);
            c.args(["registry"])
                .args(cmd)
                .arg("--root")
                .arg(&root)
                .args(["--database", &database]);
            c
        };
        let spec = format!("acme/race@{version}");
        let (published, archived) = std::thread::scope(|s| {
            let publish = s.spawn(|| registry(&["add"]).arg(&dir).output().unwrap());
            let archive = s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(40 * round));
                registry(&["archive", &spec]).output().unwrap()
            });
            (publish.join().unwrap(), archive.join().unwrap())
        });
        assert_eq!(published.status.code(), Some(0), "{}", stderr(&published));
        let mut client = postgres::Client::connect(&database, postgres::NoTls).unwrap();
        let row = client
            .query_one(
                "SELECT archived FROM versions WHERE package = 'acme/race' AND version = $1",
                &[&version],
            )
            .unwrap();
        let is_archived: i64 = row.get(0);
        match archived.status.code() {
            Some(0) => assert_eq!(is_archived, 1, "an archive that succeeded came after"),
            Some(1) => {
                assert!(stderr(&archived).contains("not in the registry"));
                assert_eq!(
                    is_archived, 0,
                    "an archive that found nothing changed nothing"
                );
            }
            other => panic!("archive exited with {other:?}: {}", stderr(&archived)),
        }
        outcomes.push(archived.status.code());
    }
    eprintln!("archive outcomes by round: {outcomes:?}");
}
