//! The local registry in the real registry's shapes (`registry serve --real-shapes`): nodes
//! without sizes or `webcVersion`, one file behind both nodes of a version that predates v3, a
//! broken version, and signed download URLs that expire. Each case is installed end to end.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// `registry serve --real-shapes` of a registry with `test/old@1.0.0` published as WebC v2 only
/// (it predates v3) and `test/new@1.0.0` in both formats; with the report of `test/old`.
fn serve_real_shapes(home: &Path) -> (Registry, serde_json::Value) {
    let root = home.join("registry");
    let old = package_dir(
        home,
        &Pkg {
            name: "test/old",
            version: "1.0.0",
            text: "an old package",
            ..Pkg::default()
        },
    );
    let report = publish(home, &root, &old, &["--webc", "v2"]);
    let new = package_dir(
        home,
        &Pkg {
            name: "test/new",
            version: "1.0.0",
            ..Pkg::default()
        },
    );
    publish(home, &root, &new, &[]);
    (
        Registry::start_with(home, &root, &["--real-shapes"]),
        report,
    )
}

fn cli(home: &Path, registry: &Registry) -> Command {
    let mut cmd = webcpm(home);
    cmd.env("WEBCPM_REGISTRY", &registry.url)
        .env("WEBCPM_HTTP_RETRIES", "2")
        .env("WEBCPM_COMPILE_CACHE", "false");
    cmd
}

fn blob_gets(registry: &Registry) -> Vec<String> {
    registry
        .log()
        .into_iter()
        .filter(|l| l.starts_with("GET /blobs/"))
        .collect()
}

#[test]
fn one_file_behind_both_nodes_without_sizes_downloads_once_and_installs_as_v2() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (registry, report) = serve_real_shapes(home);

    let out = run(cli(home, &registry).args(["resolve", "test/old", "--explain"]));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for note in [
        "test/old@1.0.0 v2: the registry left out piritaSize, webcVersion, webcManifest",
        "test/old@1.0.0: the v2 and v3 nodes name the same file",
        "size unknown",
        "a signed URL that expires in 300 s",
    ] {
        assert!(text.contains(note), "{note}: {text}");
    }

    let out = run(cli(home, &registry).args(["install", "test/old", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let entry = &json(&out)["installed"][0];
    let sha = report["v2"]["sha256"].as_str().unwrap();
    let size = report["v2"]["size"].as_u64().unwrap();
    assert_eq!(entry["webc"], "v2");
    assert_eq!(entry["fell_back_from"], "v3");
    assert_eq!(entry["sha256"], sha);
    assert_eq!(entry["size"], size, "the size learned from the download");
    let reason = entry["reason"].as_str().unwrap();
    assert!(reason.contains("the v3 node serves WebC v2"), "{reason}");
    assert_eq!(blob_gets(&registry).len(), 1, "{:?}", registry.log());
    assert_eq!(blob_files(home).len(), 1);
    assert!(temp_files(home).is_empty());

    // The size the registry left out is recorded in the index, for both nodes of the one file.
    let index = rusqlite::Connection::open(home.join("store/index.sqlite")).unwrap();
    let sizes: Vec<(String, i64)> = index
        .prepare("SELECT webc, size FROM distributions WHERE package = 'test/old' ORDER BY webc")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        sizes,
        [
            ("v2".to_string(), size as i64),
            ("v3".to_string(), size as i64)
        ]
    );
    let decisions: String = index
        .query_row(
            "SELECT reason FROM decisions WHERE install = 'test/old' AND webc = 'v3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        decisions.contains("the v3 node serves WebC v2"),
        "{decisions}"
    );

    // No manifest in either node: the manifest comes from the bytes, and the package runs.
    let out = run(cli(home, &registry).args(["run", "test/old"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "an old package\n");

    // A rollback and a resume leave it on v2: its v3 node serves v2.
    for step in ["rollback", "resume"] {
        let out = run(cli(home, &registry).args(["rollout", step, "--json"]));
        assert_eq!(out.status.code(), Some(0), "{step}");
    }
    let out = run(webcpm(home).args(["list", "--json"]));
    let old = &json(&out)["packages"][0];
    assert_eq!(old["webc"], "v2");
    let out = run(cli(home, &registry).args(["rollout", "status"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(blob_gets(&registry).len(), 1);

    // A package with both formats installs as v3, sizes unknown until the download.
    let out = run(cli(home, &registry).args(["install", "test/new", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v3");
}

fn refused(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(out);
    assert!(err.contains(message), "{message}: {err}");
    assert!(err.contains("download.max_size"), "{err}");
}

#[test]
fn without_a_size_max_size_still_bounds_the_download() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_padded(home, &root, "test/big", 200_000);
    let registry = Registry::start_with(home, &root, &["--real-shapes"]);

    // The server announces its length: refused before reading the body.
    let out = run(cli(home, &registry)
        .env("WEBCPM_MAX_SIZE", "100000")
        .args(["install", "test/big"]));
    refused(&out, "more than the limit of 100000 bytes");
    assert!(blob_files(home).is_empty() && temp_files(home).is_empty());

    // A server that announces nothing: the bytes are counted, and the download stops.
    let faults = fault_file(home, "pad", "[[fault]]\naction = \"pad\"\nbytes = 10\n");
    let padded = Registry::start_with(
        home,
        &root,
        &["--real-shapes", "--faults", faults.to_str().unwrap()],
    );
    let out = run(cli(home, &padded)
        .env("WEBCPM_MAX_SIZE", "100000")
        .args(["install", "test/big"]));
    refused(
        &out,
        "sent more than the limit of 100000 bytes (download.max_size), and the registry gave no size",
    );
    assert!(blob_files(home).is_empty() && temp_files(home).is_empty());

    // Under the limit, the same package installs.
    let out = run(cli(home, &registry).args(["install", "test/big"]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_broken_version_is_skipped_and_named_when_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (registry, _) = serve_real_shapes(home);

    let out = run(cli(home, &registry).args(["resolve", "test/new@^0", "--json"]));
    assert_eq!(out.status.code(), Some(1));
    let out = run(cli(home, &registry).args(["install", "test/new@0.0.0"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("test/new@0.0.0 cannot be used"), "{err}");
    assert!(
        err.contains("`1234asdf`") && err.contains("no download URL"),
        "{err}"
    );
    assert!(blob_gets(&registry).is_empty());

    let out = run(cli(home, &registry).args(["install", "test/new@>=0", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["version"], "1.0.0");
}

#[test]
fn an_expired_url_is_renewed_once_and_the_download_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_padded(home, &root, "test/slow", 300_000);
    // The first download stalls after 100 kB, longer than the client waits; by the time it
    // tries again, its URL (2 s) has expired.
    let faults = fault_file(
        home,
        "stall",
        "[[fault]]\naction = \"stall\"\nafter = 100000\nseconds = 8\ntimes = 1\n",
    );
    let registry = Registry::start_with(
        home,
        &root,
        &[
            "--real-shapes",
            "--url-ttl",
            "2",
            "--faults",
            faults.to_str().unwrap(),
        ],
    );
    let out = run(cli(home, &registry).env("WEBCPM_HTTP_TIMEOUT", "3").args([
        "install",
        "test/slow",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 403; the URL may have expired: asked the registry for a fresh one, resuming at byte 100000"),
        "{err}"
    );
    assert_eq!(
        err.matches("signature=").count(),
        err.matches("signature=***").count(),
        "signed URLs are redacted: {err}"
    );
    let shapes: Vec<String> = registry
        .log()
        .iter()
        .map(|l| l.split(' ').take(4).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.starts_with("POST /graphql") || l.contains("200"))
        .map(|l| {
            if l.starts_with("GET /blobs/") {
                format!(
                    "GET blob {}",
                    l.split(' ').skip(2).collect::<Vec<_>>().join(" ")
                )
            } else {
                l
            }
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "POST /graphql - 200",
            "GET blob - 200",
            "GET blob bytes=100000- 403",
            "POST /graphql - 200",
            "GET blob bytes=100000- 206",
        ],
        "{:?}",
        registry.log()
    );
    assert_eq!(blob_files(home).len(), 1);
}

#[test]
fn dependencies_behind_a_missing_manifest_are_read_from_the_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    for (name, dependencies) in [
        ("test/lib", &[][..]),
        ("test/app", &[("test/lib", "^1")][..]),
    ] {
        let dir = package_dir(
            home,
            &Pkg {
                name,
                version: "1.0.0",
                dependencies,
                ..Pkg::default()
            },
        );
        publish(home, &root, &dir, &["--webc", "v2"]);
    }
    let registry = Registry::start_with(home, &root, &["--real-shapes"]);

    // Before the download, nothing shows the dependency.
    let out = run(cli(home, &registry).args(["resolve", "test/app", "--json"]));
    assert_eq!(json(&out)["tree"].as_array().unwrap().len(), 1);

    let out = run(cli(home, &registry).args(["install", "test/app", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v2");
    let index = rusqlite::Connection::open(home.join("store/index.sqlite")).unwrap();
    let members: Vec<String> = index
        .prepare("SELECT package FROM install_members WHERE install = 'test/app' ORDER BY depth")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(members, ["test/app", "test/lib"]);
    assert_eq!(blob_gets(&registry).len(), 2, "{:?}", registry.log());
}
