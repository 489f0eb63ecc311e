//! Scaling out: the registry's metadata in a real PostgreSQL, its package files in a real
//! `docker-registry`, several stateless `registry serve` replicas behind a round-robin, and
//! compiled code shared between stores through the same OCI registry. Each test starts its own
//! services ([`crate::services`]) and skips, with one line, where they are not installed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use webcpm_client::shared_cache::Lookup;

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

/// The fleet's key for compiled code, made as the README says: `registry keygen` in a directory
/// of its own.
struct FleetKey {
    public: String,
    /// The secret's file, which the machines that push name in `compile.shared_signing_key`.
    file: PathBuf,
}

impl FleetKey {
    fn make(home: &Path) -> FleetKey {
        let dir = home.join("compile-key");
        let out = run(webcpm(home)
            .args(["registry", "keygen", "--json", "--root"])
            .arg(&dir));
        assert_eq!(out.status.code(), Some(0));
        FleetKey {
            public: json(&out)["public_key"].as_str().unwrap().to_string(),
            file: dir.join("policy-root-key"),
        }
    }

    fn pinned(&self) -> ed25519_dalek::VerifyingKey {
        webcpm_client::fleet::document::parse_key(&self.public).unwrap()
    }

    fn signer(&self) -> ed25519_dalek::SigningKey {
        webcpm_client::shared_cache::signing::read_signing_key(&self.file).unwrap()
    }
}

/// Whether a store's client only pulls, or also signs and pushes.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Pulls,
    Pushes,
}

/// A store's config that shares compiled code through `repo`, pinning the fleet's key; a store
/// that pushes also has the signing key and credentials.
fn sharing(home: &Path, repo: &str, key: &FleetKey, role: Role) -> std::process::Command {
    let config = home.join("config.toml");
    std::fs::create_dir_all(home).unwrap();
    let mut text = format!(
        "[compile]\nshared = \"{repo}\"\nshared_key = \"{}\"\n",
        key.public
    );
    if role == Role::Pushes {
        text.push_str(&format!(
            "shared_signing_key = \"{}\"\n",
            key.file.display()
        ));
    }
    std::fs::write(&config, text).unwrap();
    let mut cmd = webcpm(home);
    cmd.env("WEBCPM_CONFIG", &config);
    if role == Role::Pushes {
        cmd.env("WEBCPM_OCI_AUTH", "builder:secret");
    }
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

/// The bytes of a store's only artifact, with its engine hash and atom.
/// The shared cache's answer for `atom` (hex), with the bytes it streamed into a file.
fn lookup(shared: &Shared, engine: &str, atom: &str) -> (Lookup, Vec<u8>) {
    use std::io::Seek;
    let mut file = tempfile::tempfile().unwrap();
    let found = shared
        .cache()
        .lookup(engine, &atom.parse().unwrap(), &mut file)
        .unwrap();
    file.rewind().unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    (found, bytes)
}

fn only_artifact(home: &Path) -> (String, String, Vec<u8>) {
    let [(engine, atom)] = artifacts(home).try_into().unwrap();
    let path = home.join(format!("store/compiled/{engine}/{atom}.cwasm"));
    let bytes = std::fs::read(path).unwrap();
    (engine, atom, bytes)
}

/// What [`compiled_once`] set up.
struct Shared {
    _oci: OciRegistry,
    tmp: tempfile::TempDir,
    repo: String,
    registry: Registry,
    key: FleetKey,
}

impl Shared {
    fn home(&self) -> &Path {
        self.tmp.path()
    }

    /// The shared cache as a client that pins the fleet's key sees it.
    fn cache(&self) -> webcpm_client::shared_cache::SharedCache {
        webcpm_client::shared_cache::SharedCache::new(&self.repo, None, self.key.pinned(), None)
            .unwrap()
    }

    /// `install -v acme/large` in a new store under `name`.
    fn install(&self, name: &str, role: Role) -> std::process::Output {
        run(
            sharing(&self.home().join(name), &self.repo, &self.key, role).args([
                "install",
                "-v",
                "acme/large",
                "--registry",
                &self.registry.url,
            ]),
        )
    }

    /// `run acme/large` in the store under `name`.
    fn run_large(&self, name: &str) -> String {
        let home = self.home().join(name);
        stdout(&run(
            sharing(&home, &self.repo, &self.key, Role::Pulls).args(["run", "acme/large"])
        ))
    }
}

/// An OCI registry, the fleet's key, and a local registry with a large package that a first
/// store (`first`), which holds the signing key, compiled, signed and pushed to the shared
/// repository; `None` where `docker-registry` is not installed.
fn compiled_once() -> Option<Shared> {
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
    let shared = Shared {
        _oci: oci,
        key: FleetKey::make(home),
        tmp,
        repo,
        registry,
    };
    let out = shared.install("first", Role::Pushes);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Compiled main"),
        "the first store compiles"
    );
    Some(shared)
}

#[test]
fn a_second_store_installs_compiled_code_from_the_shared_cache_without_compiling() {
    let Some(shared) = compiled_once() else {
        return;
    };
    let (engine, atom, compiled) = only_artifact(&shared.home().join("first"));
    match lookup(&shared, &engine, &atom) {
        (Lookup::Found { .. }, bytes) => assert_eq!(bytes, compiled),
        (other, _) => panic!("the first store's push is signed by the fleet's key: {other:?}"),
    }

    let out = shared.install("second", Role::Pulls);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("Pulled main from oci://"), "{err}");
    assert!(!err.contains("Compiling"), "nothing is compiled: {err}");
    assert_eq!(only_artifact(&shared.home().join("second")).2, compiled);
    assert_eq!(shared.run_large("second"), "large\n");
}

#[test]
fn a_corrupt_shared_artifact_is_recompiled_and_not_trusted() {
    let Some(shared) = compiled_once() else {
        return;
    };
    let (engine, atom, _) = only_artifact(&shared.home().join("first"));

    // A machine that holds the fleet's key pushes bytes that are not compiled code: the
    // signature checks, and the engine's own checks at load catch it.
    let builder = webcpm_client::shared_cache::SharedCache::new(
        &shared.repo,
        Some("builder:secret"),
        shared.key.pinned(),
        Some(shared.key.signer()),
    )
    .unwrap();
    builder
        .push(
            &engine,
            &atom.parse().unwrap(),
            &vec![0x90; 4096],
            "wasmtime",
        )
        .unwrap();

    let out = shared.install("second", Role::Pushes);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("does not load"), "{err}");
    assert!(
        err.contains("Compiled main"),
        "compiled here instead: {err}"
    );
    assert_eq!(shared.run_large("second"), "large\n");

    // The bad copy was not pushed over: a third store still finds it bad, and compiles too.
    let out = shared.install("third", Role::Pulls);
    assert!(stderr(&out).contains("Compiled main"));
    match lookup(&shared, &engine, &atom) {
        (Lookup::Found { .. }, bytes) => assert_eq!(bytes, vec![0x90; 4096]),
        (other, _) => panic!("{other:?}"),
    }
}

/// Compiled code that prints `evil`, for the same engine: what an attacker who can push to the
/// repository would plant under another module's tag.
fn evil_artifact(shared: &Shared) -> Vec<u8> {
    let home = shared.home().join("attacker");
    let root = home.join("registry");
    let dir = package_dir(
        &home,
        &Pkg {
            name: "acme/evil",
            version: "1.0.0",
            text: "evil",
            ..Pkg::default()
        },
    );
    publish(&home, &root, &dir, &[]);
    let registry = Registry::start(&home, &root);
    let out = run(webcpm(&home).args(["install", "acme/evil", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    only_artifact(&home).2
}

/// Pushes `artifact` under the tag of (`engine`, `atom`), with the right annotations for both
/// keys and `signature`'s: what anyone with push rights to the repository can do.
fn plant(
    repo: &str,
    engine: &str,
    atom: &str,
    artifact: &[u8],
    signature: BTreeMap<String, String>,
) {
    use webcpm_client::shared_cache::{ARTIFACT_TYPE, ATOM_KEY, ENGINE_KEY, LAYER_TYPE, tag};
    let oci = webcpm_client::oci::OciRepo::new(repo, Some("mallory:secret")).unwrap();
    let digest =
        webcpm_client::oci::block_on(oci.push_blob(bytes::Bytes::copy_from_slice(artifact)))
            .unwrap();
    let layer = webcpm_client::oci::Layer {
        digest,
        size: artifact.len() as u64,
        media_type: LAYER_TYPE.into(),
    };
    let mut annotations = signature;
    annotations.insert(ENGINE_KEY.into(), engine.into());
    annotations.insert(ATOM_KEY.into(), atom.into());
    let tag = tag(engine, &atom.parse().unwrap());
    webcpm_client::oci::block_on(oci.push_manifest(&tag, ARTIFACT_TYPE, &[layer], annotations))
        .unwrap();
}

#[test]
fn planted_unsigned_and_wrongly_signed_artifacts_are_never_loaded() {
    use webcpm_client::shared_cache::signing::{Claim, SIGNATURE_KEY, SIGNER_KEY};
    let Some(shared) = compiled_once() else {
        return;
    };
    let (engine, atom, compiled) = only_artifact(&shared.home().join("first"));
    let evil = evil_artifact(&shared);
    assert_ne!(evil, compiled);
    let atom_digest: webcpm_client::package::Sha256Digest = atom.parse().unwrap();
    let evil_claim = Claim::new(
        &engine,
        &atom_digest,
        &webcpm_client::package::Sha256Digest::of(&evil),
    )
    .unwrap();
    // The first store's genuine signature, of its own artifact's bytes.
    let genuine = Claim::new(
        &engine,
        &atom_digest,
        &webcpm_client::package::Sha256Digest::of(&compiled),
    )
    .unwrap()
    .sign(&shared.key.signer());
    assert_eq!(genuine[SIGNER_KEY], shared.key.public);
    let stranger = webcpm_client::fleet::document::generate().unwrap();

    let cases = [
        ("unsigned", BTreeMap::new(), "is not signed"),
        (
            "stranger",
            evil_claim.sign(&stranger),
            "not by the pinned compile.shared_key",
        ),
        (
            "replayed",
            BTreeMap::from([
                (SIGNATURE_KEY.to_string(), genuine[SIGNATURE_KEY].clone()),
                (SIGNER_KEY.to_string(), genuine[SIGNER_KEY].clone()),
            ]),
            "signed over other bytes",
        ),
    ];
    for (store, signature, reason) in cases {
        plant(&shared.repo, &engine, &atom, &evil, signature);
        // A client that could push: it must not push over what it distrusts either.
        let out = shared.install(store, Role::Pushes);
        assert_eq!(out.status.code(), Some(0));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "the shared artifact of main (atom {atom}) is not trusted"
            )) && err.contains(reason),
            "{store}: {err}"
        );
        assert!(err.contains("Compiled main"), "{store}: {err}");
        assert!(!err.contains("Pulled"), "{store}: {err}");
        let (_, _, stored) = only_artifact(&shared.home().join(store));
        assert!(
            stored == compiled,
            "{store}: the stored artifact is the one compiled here"
        );
        assert_eq!(shared.run_large(store), "large\n", "{store}");
        match lookup(&shared, &engine, &atom_digest.hex()) {
            (Lookup::Bad(_), _) => {}
            (other, _) => panic!("{store}: the planted copy stays, distrusted: {other:?}"),
        }
    }

    // Control: the same bytes signed by the fleet's key are loaded and run. The signature is
    // what kept them out above, and holding the signing key is what running code takes.
    plant(
        &shared.repo,
        &engine,
        &atom,
        &evil,
        evil_claim.sign(&shared.key.signer()),
    );
    let out = shared.install("control", Role::Pulls);
    assert!(stderr(&out).contains("Pulled main"), "{}", stderr(&out));
    assert_eq!(shared.run_large("control"), "evil\n");
}

#[test]
fn a_client_without_the_signing_key_does_not_push() {
    let Some(shared) = compiled_once() else {
        return;
    };
    let (engine, _, compiled) = only_artifact(&shared.home().join("first"));
    // Another module, which no store has compiled: with credentials but no signing key, the
    // client compiles it and pushes nothing.
    let home = shared.home();
    let dir = package_dir(
        home,
        &Pkg {
            name: "acme/small",
            version: "1.0.0",
            ..Pkg::default()
        },
    );
    let root = home.join("small-registry");
    publish(home, &root, &dir, &[]);
    let registry = Registry::start(home, &root);
    let store = home.join("no-key");
    let out = run(sharing(&store, &shared.repo, &shared.key, Role::Pulls)
        .env("WEBCPM_OCI_AUTH", "builder:secret")
        .env("RUST_LOG", "webcpm=debug")
        .args(["install", "-v", "acme/small", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("Compiled main"), "{err}");
    assert!(
        err.contains("no signing key (compile.shared_signing_key)"),
        "{err}"
    );
    let (small_engine, small_atom, small) = only_artifact(&store);
    assert_eq!(small_engine, engine);
    assert_ne!(small, compiled);
    match lookup(&shared, &engine, &small_atom) {
        (Lookup::Missing, _) => {}
        (other, _) => panic!("nothing was pushed: {other:?}"),
    }
}

#[test]
fn shared_compiled_code_without_a_pinned_key_is_refused_until_one_is_set() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let config = home.join("config.toml");
    std::fs::write(
        &config,
        "[compile]\nshared = \"oci://127.0.0.1:9/fleet/compiled\"\n",
    )
    .unwrap();
    let webcpm_here = || {
        let mut cmd = webcpm(home);
        cmd.env("WEBCPM_CONFIG", &config);
        cmd
    };
    let out = run(webcpm_here().args([
        "install",
        "acme/large",
        "--registry",
        "http://127.0.0.1:9/graphql",
    ]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("compile.shared") && err.contains("set compile.shared_key"),
        "{err}"
    );
    assert!(!home.join("store/compiled").exists(), "nothing ran: {err}");

    // `config set` validates the key, and a good one lets the settings load again.
    let out = run(webcpm_here().args(["config", "set", "compile.shared_key", "not-a-key"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("64 digits"), "{}", stderr(&out));
    let key = FleetKey::make(home);
    let out = run(webcpm_here().args(["config", "set", "compile.shared_key", &key.public]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm_here().args(["config", "show", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let show = json(&out);
    assert_eq!(show["compile.shared_key"]["value"], key.public.as_str());
    assert_eq!(show["compile.shared_key"]["layer"], "user file");
    assert_eq!(show["compile.shared_signing_key"]["value"], "");
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
