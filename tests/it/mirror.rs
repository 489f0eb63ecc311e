//! `registry serve --mirror UPSTREAM`: a pull-through mirror of another `registry serve`. It
//! brings what clients ask for, byte for byte (the same SHA-256, publish times and publishers as
//! the upstream), follows the upstream's yanks, refuses what the upstream lies about, and keeps
//! serving what it has while the upstream is stopped.

use std::path::Path;

use crate::common::*;
use crate::search::graphql;

fn lock_text(home: &Path, registry: &Registry, file: &str) -> toml::Value {
    let path = home.join(file);
    let out = run(webcpm(home)
        .args(["lock", "test/alpha@^1", "--registry", &registry.url, "-o"])
        .arg(&path));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Each version's `createdAt` and publisher, as a registry answers.
fn versions(registry: &Registry) -> serde_json::Value {
    graphql(
        registry,
        None,
        "{ getPackage(name: \"test/alpha\") { versions { version createdAt isArchived publishedBy { username } } } }",
    )["data"]["getPackage"]["versions"]
        .clone()
}

fn resolved(home: &Path, registry: &Registry, request: &str) -> String {
    let out = run(webcpm(home).args(["resolve", request, "--json", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)["version"].as_str().unwrap().to_string()
}

#[test]
fn a_mirror_serves_the_upstreams_exact_files_and_keeps_serving_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let upstream_root = home.join("upstream");
    let at = [
        "--published-at",
        "2026-01-02T03:04:05Z",
        "--publisher",
        "alice",
    ];
    publish_new(home, &upstream_root, "test/alpha", "1.0.0", &at);
    publish_new(home, &upstream_root, "test/alpha", "1.1.0", &[]);
    let mut upstream = Registry::start(home, &upstream_root);
    let mirror_root = home.join("mirror");
    let mirror = Registry::start_with(
        home,
        &mirror_root,
        &["--mirror", &upstream.url, "--mirror-refresh", "0"],
    );

    // A lockfile written against either names the same files.
    let from_upstream = lock_text(home, &upstream, "upstream.lock");
    let from_mirror = lock_text(home, &mirror, "mirror.lock");
    let hashes = |lock: &toml::Value| -> Vec<(String, String)> {
        lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                ["v2", "v3"].map(|w| (w.to_string(), p[w]["sha256"].as_str().unwrap().to_string()))
            })
            .collect()
    };
    assert_eq!(hashes(&from_upstream), hashes(&from_mirror));
    assert_eq!(versions(&upstream), versions(&mirror));
    assert_eq!(versions(&mirror)[0]["createdAt"], "2026-01-02T03:04:05Z");
    assert_eq!(versions(&mirror)[0]["publishedBy"]["username"], "alice");

    // An install from the mirror downloads from the mirror.
    let client = home.join("client");
    std::fs::create_dir_all(&client).unwrap();
    let out = run(webcpm(&client).args(["install", "test/alpha@^1", "--registry", &mirror.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(mirror.log().iter().any(|l| l.contains("/blobs/")));

    // The upstream yanks 1.1.0; the mirror follows.
    let out = run(webcpm(home)
        .args(["registry", "yank", "--root"])
        .arg(&upstream_root)
        .arg("test/alpha@1.1.0"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(resolved(home, &mirror, "test/alpha@^1"), "1.0.0");
    let yanked = |registry: &Registry, version: &str| {
        let all = versions(registry);
        let v = all
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .unwrap();
        v["isArchived"].as_bool().unwrap()
    };
    assert!(yanked(&mirror, "1.1.0"));

    // A yank made on the mirror is the mirror's own: asking the upstream again keeps it.
    let mirror_yank = |undo: bool| {
        let mut cmd = webcpm(home);
        cmd.args(["registry", "yank", "--root"])
            .arg(&mirror_root)
            .arg("test/alpha@1.0.0");
        if undo {
            cmd.arg("--undo");
        }
        assert_eq!(run(&mut cmd).status.code(), Some(0));
    };
    mirror_yank(false);
    assert!(yanked(&mirror, "1.0.0") && !yanked(&upstream, "1.0.0"));
    mirror_yank(true);

    // The upstream stops: the mirror still answers, and installs still work.
    upstream.stop();
    let offline = home.join("offline-client");
    std::fs::create_dir_all(&offline).unwrap();
    let started = std::time::Instant::now();
    let out = run(webcpm(&offline).args(["install", "test/alpha@^1", "--registry", &mirror.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Installed test/alpha@1.0.0"),
        "{}",
        stdout(&out)
    );
    assert_eq!(resolved(&offline, &mirror, "test/alpha@=1.1.0"), "1.1.0");
    // Asking a stopped upstream costs a refused connection, not a timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_mirror_refuses_what_its_upstream_lies_about() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let upstream_root = home.join("upstream");
    // The upstream serves 1.0.0's v3 file with a byte changed; 1.1.0 is served as it is.
    let report = publish_new(home, &upstream_root, "test/alpha", "1.0.0", &[]);
    let other = Pkg {
        name: "test/alpha",
        version: "1.1.0",
        text: "another build",
        ..Pkg::default()
    };
    publish(home, &upstream_root, &package_dir(home, &other), &[]);
    let flipped = report["v3"]["sha256"].as_str().unwrap();
    let faults = home.join("faults.toml");
    let rule = format!("[[fault]]\naction = \"flip\"\nblob = \"{flipped}\"\n");
    std::fs::write(&faults, rule).unwrap();
    let faults = faults.to_str().unwrap();
    let upstream = Registry::start_with(home, &upstream_root, &["--faults", faults]);
    let mirror_root = home.join("mirror");
    let mirror = Registry::start_with(
        home,
        &mirror_root,
        &["--mirror", &upstream.url, "--mirror-refresh", "0"],
    );
    let answer = graphql(
        &mirror,
        None,
        "{ getPackage(name: \"test/alpha\") { versions { version } } }",
    );
    // The lie spoils 1.0.0 only: it is left out, and 1.1.0 is copied.
    let listed = &answer["data"]["getPackage"]["versions"];
    assert_eq!(
        listed,
        &serde_json::json!([{"version": "1.1.0"}]),
        "{answer}"
    );
    assert!(
        !mirror_root
            .join("blobs")
            .join(format!("{flipped}.webc"))
            .exists()
    );
    let out = run(webcpm(home).args(["install", "test/alpha@1.0.0", "--registry", &mirror.url]));
    assert_ne!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["install", "test/alpha", "--registry", &mirror.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
