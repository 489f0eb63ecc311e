//! One store that is never wrong: many processes at once, processes killed at any moment, a
//! capacity with least-recently-used eviction, and a full disk.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

fn verify_clean(home: &Path) -> serde_json::Value {
    let out = run(webcpm(home).args(["cache", "verify", "--json"]));
    assert_eq!(out.status.code(), Some(0), "cache verify");
    let report = json(&out);
    assert_eq!(report["corrupt"], 0);
    assert_eq!(report["missing"], 0);
    assert!(temp_files(home).is_empty(), "no temp file left");
    report
}

#[test]
fn eight_processes_install_the_same_packages_with_one_download_each() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let names = ["crowd/a", "crowd/b", "crowd/c"];
    for name in names {
        publish_padded(home, &root, name, 2 << 20);
    }
    let registry = Registry::start(home, &root);
    let children: Vec<_> = (0..8)
        .map(|_| {
            webcpm(home)
                .args(["install", "-q", "--registry", &registry.url])
                .args(names)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let downloads: Vec<String> = registry
        .log()
        .into_iter()
        .filter(|l| l.starts_with("GET /blobs/"))
        .collect();
    assert_eq!(downloads.len(), 3, "one download per blob: {downloads:#?}");
    let out = run(webcpm(home).args(["list", "--json"]));
    assert_eq!(json(&out)["packages"].as_array().unwrap().len(), 3);
    let db = rusqlite::Connection::open(home.join("store/index.sqlite")).unwrap();
    let artifacts: i64 = db
        .query_row("SELECT count(*) FROM artifacts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(artifacts, 3, "each atom compiled once");
    verify_clean(home);
    for name in names {
        let out = run(webcpm(home).args(["run", name]));
        assert_eq!(stdout(&out), format!("{name}\n"));
    }
}

#[test]
fn installs_killed_at_random_moments_leave_a_clean_store() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_padded(home, &root, "big/pkg", 48 << 20);
    let registry = Registry::start(home, &root);
    // The same "random" moments every run: spread over start-up, download, verification,
    // compilation and the index write.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(5 + state % 700);
        let mut child = webcpm(home)
            .args(["install", "big/pkg", "-q", "--registry", &registry.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let report = verify_clean(home);
        eprintln!("round {round}: killed after {delay:?}; verify {report}");
        if round % 2 == 1 {
            // Every other round starts from nothing again, so that the download is hit too.
            let _ = run(webcpm(home).args(["uninstall", "big/pkg"]));
            let out = run(webcpm(home).args(["cache", "gc"]));
            assert_eq!(out.status.code(), Some(0));
        }
    }
    let out = run(webcpm(home).args(["install", "big/pkg", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["run", "big/pkg"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "big/pkg\n");
    verify_clean(home);
}

fn blob_of(home: &Path, package: &str) -> String {
    let out = run(webcpm(home).args(["list", "--json"]));
    json(&out)["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == package)
        .map(|p| p["sha256"].as_str().unwrap().to_string())
        .unwrap()
}

fn blob_exists(home: &Path, sha: &str) -> bool {
    home.join("store/blobs/sha256")
        .join(&sha[..2])
        .join(sha)
        .exists()
}

#[test]
fn gc_evicts_least_recently_used_unused_entries_and_nothing_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    for name in ["old/a", "old/b", "keep/c"] {
        publish_padded(home, &root, name, 1 << 20);
    }
    let registry = Registry::start(home, &root);
    let mut shas = Vec::new();
    for name in ["old/a", "old/b", "keep/c"] {
        let out = run(webcpm(home).args(["install", name, "--registry", &registry.url]));
        assert_eq!(out.status.code(), Some(0));
        shas.push(blob_of(home, name));
        std::thread::sleep(Duration::from_millis(20));
    }
    // An artifact of another engine, used long ago: evicted first.
    let db = rusqlite::Connection::open(home.join("store/index.sqlite")).unwrap();
    let (engine, atom): (String, String) = db
        .query_row("SELECT engine, atom FROM artifacts LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let stale = home.join("store/compiled/0000000000000000/x.cwasm");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::copy(
        home.join("store/compiled")
            .join(&engine)
            .join(format!("{atom}.cwasm")),
        &stale,
    )
    .unwrap();
    let stale_atom = "ab".repeat(32);
    std::fs::rename(&stale, stale.with_file_name(format!("{stale_atom}.cwasm"))).unwrap();
    let size = std::fs::metadata(stale.with_file_name(format!("{stale_atom}.cwasm")))
        .unwrap()
        .len();
    db.execute(
        "INSERT INTO artifacts (engine, atom, size, sha256, error, created_at, last_used_at)
         VALUES ('0000000000000000', ?1, ?2, NULL, NULL, 1, 1)",
        rusqlite::params![stale_atom, size as i64],
    )
    .unwrap();

    for name in ["old/a", "old/b"] {
        let out = run(webcpm(home).args(["uninstall", name]));
        assert_eq!(out.status.code(), Some(0));
    }
    let blobs: i64 = db
        .query_row("SELECT sum(size) FROM blobs", [], |r| r.get(0))
        .unwrap();
    let compiled: i64 = db
        .query_row(
            "SELECT sum(size) FROM artifacts WHERE size IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let a_size: i64 = db
        .query_row(
            "SELECT size FROM blobs WHERE sha256 = ?1",
            [&shas[0]],
            |r| r.get(0),
        )
        .unwrap();
    // Room for everything but the stale artifact and a's blob (and a bit of a's artifact).
    let capacity = (blobs + compiled) as u64 - size - a_size as u64 + 1;
    let out =
        run(webcpm(home).args(["cache", "gc", "--json", "--max-size", &capacity.to_string()]));
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert!(
        report["kept_bytes"].as_u64().unwrap() <= capacity,
        "{report}"
    );
    assert!(
        !stale.with_file_name(format!("{stale_atom}.cwasm")).exists(),
        "the other engine's artifact went first"
    );
    assert!(
        !blob_exists(home, &shas[0]),
        "a, used least recently, was evicted"
    );
    assert!(
        blob_exists(home, &shas[1]),
        "b, used more recently, fits and stays"
    );
    assert!(blob_exists(home, &shas[2]), "c is installed");

    // Without a capacity, everything unused goes; the install still runs.
    let out = run(webcpm(home).args(["cache", "gc", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(!blob_exists(home, &shas[1]));
    assert!(blob_exists(home, &shas[2]));
    let out = run(webcpm(home).args(["run", "keep/c"]));
    assert_eq!(stdout(&out), "keep/c\n");
    verify_clean(home);

    // `cache clean` needs --yes, then removes everything.
    let out = run(webcpm(home).args(["cache", "clean"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(webcpm(home).args(["cache", "clean", "--yes"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(blob_files(home).is_empty());
    let out = run(webcpm(home).args(["list", "--json"]));
    assert!(json(&out)["packages"].as_array().unwrap().is_empty());
}

/// A module with many functions: small as WebAssembly, large once compiled.
fn many_functions(n: usize) -> Vec<u8> {
    let mut text = String::from(
        "(module (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n(memory (export \"memory\") 1)\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "(func $f{i} (param i32) (result i32) (local.get 0) (i32.const {i}) (i32.mul) (i32.const 7) (i32.add) (i32.const 3) (i32.rotl) (local.get 0) (i32.xor) (i32.const 11) (i32.div_u))\n"
        ));
    }
    text.push_str("(func (export \"_start\") (i32.const 0) (call $exit)))");
    wat::parse_str(text).unwrap()
}

/// Runs webcpm with a file-size limit (RLIMIT_FSIZE) of `bytes`: through bash, so that
/// `ulimit -f` (1024-byte blocks) applies, with the same environment as [`webcpm`].
fn limited(home: &Path, bytes: u64, args: &[&str]) -> std::process::Output {
    run(bash(home)
        .arg("-c")
        .arg(format!("ulimit -f {}; exec \"$0\" \"$@\"", bytes / 1024))
        .arg(env!("CARGO_BIN_EXE_webcpm"))
        .args(args))
}

fn snapshot(home: &Path) -> (Vec<std::path::PathBuf>, String) {
    let out = run(webcpm(home).args(["list", "--json"]));
    (blob_files(home), stdout(&out))
}

#[test]
fn a_full_disk_during_download_or_compile_is_an_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_padded(home, &root, "small/first", 0);
    publish_padded(home, &root, "big/download", 6 << 20);
    let dir = package_dir(
        home,
        &Pkg {
            name: "big/compile",
            version: "1.0.0",
            wasm: Some(many_functions(3000)),
            ..Pkg::default()
        },
    );
    let report = publish(home, &root, &dir, &[]);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "small/first", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));

    // Download: the 6 MiB file cannot be written under a 2 MiB limit.
    let before = snapshot(home);
    let out = limited(
        home,
        2 << 20,
        &["install", "big/download", "--registry", &registry.url],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("File too large") || err.contains("No space"),
        "{err}"
    );
    assert!(
        err.contains("the disk is full or a file-size limit was reached"),
        "{err}"
    );
    assert_eq!(snapshot(home), before, "store unchanged");
    verify_clean(home);

    // Compile: the package fits, its compiled code does not.
    let blob_size = report["v3"]["size"].as_u64().unwrap();
    let probe = home.join("probe");
    let out = run(webcpm(&probe).args(["install", "big/compile", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let artifact_size: i64 = rusqlite::Connection::open(probe.join("store/index.sqlite"))
        .unwrap()
        .query_row("SELECT size FROM artifacts", [], |r| r.get(0))
        .unwrap();
    let artifact_size = artifact_size as u64;
    assert!(
        artifact_size > 2 * blob_size,
        "{artifact_size} vs {blob_size}"
    );
    let limit = (blob_size + artifact_size) / 2 + (256 << 10);
    assert!(limit < artifact_size);
    let out = limited(
        home,
        limit,
        &["install", "big/compile", "--registry", &registry.url],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("the disk is full or a file-size limit was reached"),
        "{err}"
    );
    let (_, installs) = snapshot(home);
    assert_eq!(installs, before.1, "no install changed");
    assert!(!installs.contains("big/compile"));
    let compiled_files = std::fs::read_dir(home.join("store/compiled"))
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
        .count();
    assert_eq!(
        compiled_files, 1,
        "only small/first's artifact: no partial one"
    );
    verify_clean(home);

    // With room again, the same install succeeds.
    let out = run(webcpm(home).args(["install", "big/compile", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
}
