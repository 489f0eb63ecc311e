//! `webcpm install`: priority and fallback, verification while streaming, the SQLite index, and
//! version requests, against a real registry process.

use std::path::Path;

use crate::common::*;

/// A home with a registry root holding the named packages (`name@version`).
fn registry_with(home: &Path, packages: &[(&str, &str)]) -> std::path::PathBuf {
    let root = home.join("registry");
    for (name, version) in packages {
        let dir = package_dir(
            home,
            &Pkg {
                name,
                version,
                ..Pkg::default()
            },
        );
        publish(home, &root, &dir, &[]);
    }
    root
}

fn install(home: &Path, registry: &Registry, args: &[&str]) -> std::process::Output {
    run(webcpm(home)
        .args(["install", "--registry", &registry.url])
        .args(args))
}

fn index(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("store/index.sqlite")).unwrap()
}

fn published(root: &Path, name: &str, version: &str, webc: &str) -> String {
    let db = rusqlite::Connection::open(root.join("registry.sqlite")).unwrap();
    db.query_row(
        &format!("SELECT {webc}_sha256 FROM versions WHERE package = ?1 AND version = ?2"),
        [name, version],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn installs_v3_by_default_and_v2_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = registry_with(home, &[("test/hello", "1.0.0")]);
    let registry = Registry::start(home, &root);

    let out = install(home, &registry, &["test/hello", "--json", "-v"]);
    assert_eq!(out.status.code(), Some(0));
    // The atom's signature was checked against the digest computed as it arrived.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("the signatures of 1 atoms against digests computed as it arrived"),
        "{log}"
    );
    let report = json(&out);
    let entry = &report["installed"][0];
    assert_eq!(entry["package"], "test/hello");
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["webc"], "v3");
    assert_eq!(entry["fell_back_from"], serde_json::Value::Null);
    let sha = entry["sha256"].as_str().unwrap();
    assert_eq!(sha, published(&root, "test/hello", "1.0.0", "v3"));

    // The blob on disk has the advertised SHA-256 and size.
    let blob = home.join("store/blobs/sha256").join(&sha[..2]).join(sha);
    let bytes = std::fs::read(&blob).unwrap();
    assert_eq!(webcpm_client::package::Sha256Digest::of(&bytes).hex(), sha);
    assert_eq!(bytes.len() as u64, entry["size"].as_u64().unwrap());
    assert_eq!(&bytes[..8], b"\0webc003");

    // The index says which format and why.
    let (webc, rule, reason): (String, String, String) = index(home)
        .query_row(
            "SELECT webc, rule, reason FROM installs WHERE package = 'test/hello'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(webc, "v3");
    assert_eq!(rule, "default priority");
    assert!(reason.contains("first in order"), "{reason}");
    let outcomes: Vec<(String, String)> = index(home)
        .prepare("SELECT webc, outcome FROM decisions WHERE install = 'test/hello' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("v3".into(), "chosen".into()),
            ("v2".into(), "not_tried".into())
        ]
    );
    // Both distributions of the version are known to the index.
    let n: i64 = index(home)
        .query_row(
            "SELECT count(*) FROM distributions WHERE package = 'test/hello' AND offer = 'offered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);

    // --webc v2 in another home.
    let home2 = home.join("other");
    let out = install(
        &home2,
        &registry,
        &["test/hello", "--webc", "v2", "--json", "-v"],
    );
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("the signatures of 1 atoms against digests computed as it arrived"),
        "{log}"
    );
    let entry = &json(&out)["installed"][0];
    assert_eq!(entry["webc"], "v2");
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        published(&root, "test/hello", "1.0.0", "v2")
    );
    let rule: String = index(&home2)
        .query_row("SELECT rule FROM installs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rule, "forced by --webc");

    // list --json shows it.
    let out = run(webcpm(&home2).args(["list", "--json"]));
    let list = json(&out);
    assert_eq!(list["packages"][0]["package"], "test/hello");
    assert_eq!(list["packages"][0]["webc"], "v2");
}

/// Flips one byte in the middle of a file, keeping its size.
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn altered_v3_bytes_fall_back_to_v2_or_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = registry_with(home, &[("test/hello", "1.0.0")]);
    let v3 = published(&root, "test/hello", "1.0.0", "v3");
    corrupt(&root.join("blobs").join(format!("{v3}.webc")));
    let registry = Registry::start(home, &root);

    let out = install(home, &registry, &["test/hello"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("as WebC v2"), "{text}");
    assert!(text.contains("fell back from v3"), "{text}");
    assert!(text.contains("SHA-256 mismatch"), "{text}");
    let out = run(webcpm(home).args(["list", "--json"]));
    let entry = &json(&out)["packages"][0];
    assert_eq!(entry["webc"], "v2");
    assert_eq!(entry["fell_back_from"], "v3");
    let failed: String = index(home)
        .query_row(
            "SELECT reason FROM decisions WHERE install = 'test/hello' AND outcome = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failed.contains("SHA-256 mismatch"), "{failed}");

    // Without fallback: exit 1, both hashes named, nothing stored.
    let home2 = home.join("strict");
    let out = install(&home2, &registry, &["test/hello", "--no-fallback"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("expected {v3}")), "{err}");
    assert!(err.contains("got "), "{err}");
    assert!(blob_files(&home2).is_empty(), "no blob stored");
    assert!(temp_files(&home2).is_empty(), "no temp file left");
    let out = run(webcpm(&home2).args(["cache", "verify", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["corrupt"], 0);

    // With --json the error is a JSON object on stdout.
    let out = install(
        &home2,
        &registry,
        &["test/hello", "--no-fallback", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let e = json(&out);
    assert_eq!(e["kind"], "integrity");
    assert!(e["error"].as_str().unwrap().contains("SHA-256 mismatch"));
}

#[test]
fn a_v3_node_serving_v2_bytes_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = registry_with(home, &[("test/liar", "1.0.0")]);
    // The registry now claims V3 for the v2 file, with that file's true hash and size.
    rusqlite::Connection::open(root.join("registry.sqlite"))
        .unwrap()
        .execute(
            "UPDATE versions SET v3_sha256 = v2_sha256, v3_size = v2_size, v3_manifest = v2_manifest",
            [],
        )
        .unwrap();
    let registry = Registry::start(home, &root);

    let out = install(home, &registry, &["test/liar", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let entry = &json(&out)["installed"][0];
    assert_eq!(entry["webc"], "v2");
    assert_eq!(entry["fell_back_from"], "v3");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("its bytes are WebC v2"),
        "{entry}"
    );

    let home2 = home.join("strict");
    let out = install(&home2, &registry, &["test/liar", "--no-fallback"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("offered as WebC v3 but its bytes are WebC v2"));
    assert!(blob_files(&home2).is_empty());
    assert!(temp_files(&home2).is_empty());
}

#[test]
fn a_dependency_without_v3_moves_the_whole_tree_to_v2() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let dep = package_dir(
        home,
        &Pkg {
            name: "test/dep",
            version: "1.1.0",
            ..Pkg::default()
        },
    );
    publish(home, &root, &dep, &["--webc", "v2"]);
    let app = package_dir(
        home,
        &Pkg {
            name: "test/app",
            version: "1.0.0",
            dependencies: &[("test/dep", "^1")],
            ..Pkg::default()
        },
    );
    publish(home, &root, &app, &[]);
    let registry = Registry::start(home, &root);

    let out = run(webcpm(home).args([
        "resolve",
        "test/app",
        "--explain",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("-> WebC v2"), "{text}");
    assert!(
        text.contains("test/dep@1.1.0 is not offered as v3"),
        "{text}"
    );

    let out = install(home, &registry, &["test/app", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v2");
    let members: Vec<(String, String, String)> = index(home)
        .prepare("SELECT package, version, webc FROM install_members WHERE install = 'test/app' ORDER BY depth")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        members,
        vec![
            ("test/app".into(), "1.0.0".into(), "v2".into()),
            ("test/dep".into(), "1.1.0".into(), "v2".into())
        ]
    );

    // Forcing v3 is refused: the tree cannot be mixed.
    let out = install(&home.join("v3"), &registry, &["test/app", "--webc", "v3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("test/dep@1.1.0 is not offered as v3"));

    // --no-deps installs the root alone, as v3.
    let out = install(
        &home.join("nodeps"),
        &registry,
        &["test/app", "--no-deps", "--json"],
    );
    assert_eq!(json(&out)["installed"][0]["webc"], "v3");

    // A dependency that does not exist names the package that needs it.
    let broken = package_dir(
        home,
        &Pkg {
            name: "test/broken",
            version: "1.0.0",
            dependencies: &[("test/missing", "^1")],
            ..Pkg::default()
        },
    );
    publish(home, &root, &broken, &[]);
    let out = install(&home.join("broken"), &registry, &["test/broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("test/broken depends on test/missing, which was not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_requests_follow_semver_and_skip_archived_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = registry_with(
        home,
        &[
            ("test/sv", "1.0.0"),
            ("test/sv", "1.2.0"),
            ("test/sv", "1.5.0"),
            ("test/sv", "2.0.0"),
        ],
    );
    let out = run(webcpm(home)
        .args(["registry", "archive", "--root"])
        .arg(&root)
        .arg("test/sv@1.5.0"));
    assert_eq!(out.status.code(), Some(0));
    let registry = Registry::start(home, &root);

    for (request, expected) in [
        ("test/sv@^1", "1.2.0"),
        ("test/sv@=1.0.0", "1.0.0"),
        ("test/sv@1.2.0", "1.2.0"),
        ("test/sv@latest", "2.0.0"),
        ("test/sv", "2.0.0"),
        ("TEST/SV@~1.0", "1.0.0"),
    ] {
        let out =
            run(webcpm(home).args(["resolve", request, "--json", "--registry", &registry.url]));
        assert_eq!(out.status.code(), Some(0), "{request}");
        assert_eq!(json(&out)["version"], expected, "{request}");
    }

    let out = install(home, &registry, &["test/sv@^3"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no version of test/sv matches `^3`"), "{err}");
    assert!(
        err.contains("1.0.0, 1.2.0, 1.5.0 (archived), 2.0.0"),
        "lists the versions: {err}"
    );

    // Installing another version replaces the install.
    let out = install(home, &registry, &["test/sv@^1", "--json"]);
    assert_eq!(json(&out)["installed"][0]["version"], "1.2.0");
    let out = install(home, &registry, &["test/sv@2.0.0", "--json"]);
    assert_eq!(json(&out)["installed"][0]["version"], "2.0.0");
    let out = run(webcpm(home).args(["list", "--json"]));
    let list = json(&out);
    assert_eq!(list["packages"].as_array().unwrap().len(), 1);
    assert_eq!(list["packages"][0]["version"], "2.0.0");

    // Bad requests are usage errors (a bare `not-a-name` is `_/not-a-name`, which is valid).
    let out = install(home, &registry, &["not a name!"]);
    assert_eq!(out.status.code(), Some(2));
    let out = install(home, &registry, &["not-a-name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("package _/not-a-name was not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_installed_package_needs_no_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = registry_with(home, &[("test/hello", "1.0.0")]);
    let mut registry = Registry::start(home, &root);
    let out = install(home, &registry, &["test/hello"]);
    assert_eq!(out.status.code(), Some(0));
    let url = registry.url.clone();
    registry.stop();

    let out = run(webcpm(home).args(["install", "test/hello", "--offline"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("already installed"));
    // Without --offline too: the satisfied request asks nothing of the (stopped) registry.
    let out = run(webcpm(home).args(["install", "test/hello@^1", "--registry", &url]));
    assert_eq!(out.status.code(), Some(0));

    // What is not in the store is a clear error offline.
    let out = run(webcpm(home).args(["install", "test/other", "--offline"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("test/other is not installed and --offline"));

    // A registry that cannot be reached is a network failure (exit 2) naming it.
    let out = run(webcpm(home).args(["install", "test/other", "--registry", &url]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot reach the registry"),
        "{}",
        stderr(&out)
    );

    // uninstall removes the install; the blob stays.
    let out = run(webcpm(home).args(["uninstall", "test/hello"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(blob_files(home).len(), 1);
    let out = run(webcpm(home).args(["list", "--json"]));
    assert_eq!(json(&out)["packages"].as_array().unwrap().len(), 0);
}

#[test]
fn a_bare_name_is_the_global_namespace_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Published as a bare name (wasmer.toml `name = "cowsay"`): stored as `_/cowsay`.
    let root = home.join("registry");
    let dir = package_dir(
        home,
        &Pkg {
            name: "cowsay",
            version: "0.2.0",
            text: "moo",
            ..Pkg::default()
        },
    );
    assert_eq!(publish(home, &root, &dir, &[])["package"], "_/cowsay");
    let registry = Registry::start(home, &root);

    let out = install(home, &registry, &["cowsay", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["package"], "_/cowsay");
    // Asked the other way, it is the same install.
    let out = install(home, &registry, &["_/CowSay@0.2.0", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["list", "--json"]));
    let list = json(&out);
    assert_eq!(list["packages"].as_array().unwrap().len(), 1);
    assert_eq!(list["packages"][0]["package"], "_/cowsay");
    let out = run(webcpm(home).args(["run", "cowsay"]));
    assert_eq!(stdout(&out), "moo\n");
    let out = run(webcpm(home).args(["rollout", "pin", "cowsay", "v2"]));
    assert_eq!(out.status.code(), Some(0));
    let config = std::fs::read_to_string(home.join("xdg-config/webcpm/config.toml")).unwrap();
    assert!(config.contains("[packages.\"_/cowsay\"]"), "{config}");
    let out = run(webcpm(home).args(["uninstall", "cowsay"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["list", "--json"]));
    assert!(json(&out)["packages"].as_array().unwrap().is_empty());
}
