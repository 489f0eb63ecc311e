//! A registry that fails or lies: the local registry is started with `--faults` rules (see
//! `crates/webcpm-registry/src/faults.rs`) and the CLI must retry what is transient, resume what
//! was cut, fall back when the policy allows, refuse what is wrong with a clear error, leave a
//! clean store (`cache verify`, no temporary file), and keep the registry token to the
//! registry's origin. Property tests at the end feed arbitrary bytes to the code that turns
//! registry answers and WebC files into webcpm's types.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

/// The CLI with small retry counts and timeouts, and without compiling (not under test here).
fn cli(home: &Path) -> Command {
    let mut cmd = webcpm(home);
    cmd.env("WEBCPM_HTTP_RETRIES", "2")
        .env("WEBCPM_HTTP_TIMEOUT", "2")
        .env("WEBCPM_COMPILE_CACHE", "false");
    cmd
}

fn install(home: &Path, registry: &Registry, args: &[&str]) -> Output {
    run(cli(home)
        .args(["install", "test/hello", "--registry", &registry.url])
        .args(args))
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// The one `error: ` line on stderr (warnings and hints may surround it).
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    errors[0].to_string()
}

/// `cache verify --json` finds nothing corrupt or missing, and `tmp/` is empty.
fn assert_clean(home: &Path, what: &str) {
    let out = run(webcpm(home).args(["cache", "verify", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{what}: cache verify");
    let report = json(&out);
    assert_eq!(report["corrupt"], 0, "{what}: {report}");
    assert_eq!(report["missing"], 0, "{what}: {report}");
    assert!(temp_files(home).is_empty(), "{what}: temporary files left");
}

/// The `t=` column of an access log line, in milliseconds.
fn millis(line: &str) -> u128 {
    line.split(' ')
        .find_map(|c| c.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line}"))
}

/// The range, status and auth columns of an access log line.
fn shape(line: &str) -> String {
    let cols: Vec<&str> = line.split(' ').collect();
    format!("{} {} {}", cols[2], cols[3], cols[5])
}

/// One row of the fault matrix.
struct Case {
    name: &'static str,
    /// The `[[fault]]` table.
    rule: &'static str,
    /// With fallback on: the exit code and the format installed (`None`: nothing installed).
    fallback: (i32, Option<&'static str>),
    /// With `--no-fallback`: the exit code.
    strict: i32,
    /// Text that the output names, in both runs.
    message: &'static str,
}

const MATRIX: &[Case] = &[
    Case {
        name: "flip",
        rule: "action = \"flip\"\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 1,
        message: "SHA-256 mismatch",
    },
    Case {
        name: "cut",
        rule: "action = \"cut\"\nafter = 64\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 2,
        message: "the connection broke off",
    },
    Case {
        name: "reset",
        rule: "action = \"reset\"\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 2,
        message: "downloading http://127.0.0.1",
    },
    Case {
        name: "status-500",
        rule: "action = \"status\"\nstatus = 500\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 2,
        message: "HTTP 500",
    },
    Case {
        name: "status-429",
        rule: "action = \"status\"\nstatus = 429\nretry_after = 1\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 2,
        message: "HTTP 429",
    },
    Case {
        name: "stall",
        rule: "action = \"stall\"\nafter = 64\nseconds = 30\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 2,
        message: "timed out",
    },
    Case {
        name: "wrong-length",
        rule: "action = \"wrong-length\"\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 1,
        message: "sent more than the",
    },
    Case {
        name: "pad",
        rule: "action = \"pad\"\nbytes = 10\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 1,
        message: "sent more than the",
    },
    Case {
        name: "claim-v3",
        rule: "action = \"claim-v3\"",
        fallback: (0, Some("v2")),
        strict: 1,
        message: "offered as WebC v3 but its bytes are WebC v2",
    },
    Case {
        name: "bad-manifest",
        rule: "action = \"bad-manifest\"\nformat = \"v3\"",
        fallback: (0, Some("v2")),
        strict: 1,
        message: "webcManifest does not parse",
    },
    Case {
        name: "graphql-errors",
        rule: "action = \"graphql-errors\"",
        fallback: (1, None),
        strict: 1,
        message: "answered with errors: injected failure",
    },
    Case {
        name: "bad-schema",
        rule: "action = \"bad-schema\"",
        fallback: (1, None),
        strict: 1,
        message: "does not match its schema",
    },
    Case {
        name: "graphql-503",
        rule: "action = \"status\"\nstatus = 503\non = \"graphql\"",
        fallback: (2, None),
        strict: 2,
        message: "answered HTTP 503",
    },
    Case {
        name: "graphql-reset",
        rule: "action = \"reset\"\non = \"graphql\"",
        fallback: (2, None),
        strict: 2,
        message: "cannot reach the registry",
    },
];

#[test]
fn fault_matrix_with_and_without_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = hello_registry(tmp.path());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for case in MATRIX {
            let (tmp, root) = (tmp.path(), &root);
            scope.spawn(move || {
                let home = tmp.join(case.name);
                let faults = fault_file(&home, case.name, &format!("[[fault]]\n{}\n", case.rule));
                let registry =
                    Registry::start_with(&home, root, &["--faults", faults.to_str().unwrap()]);

                let on = home.join("fallback");
                let out = install(&on, &registry, &["--json"]);
                let (code, webc) = case.fallback;
                assert_eq!(out.status.code(), Some(code), "{}: exit code", case.name);
                let text = both(&out);
                assert!(text.contains(case.message), "{}: {text}", case.name);
                assert!(!text.contains("panicked"), "{}: {text}", case.name);
                match webc {
                    Some(webc) => {
                        let entry = &json(&out)["installed"][0];
                        assert_eq!(entry["webc"], webc, "{}", case.name);
                        assert_eq!(entry["fell_back_from"], "v3", "{}", case.name);
                        assert_eq!(blob_files(&on).len(), 1, "{}: only v2 stored", case.name);
                    }
                    None => {
                        assert!(json(&out)["error"].is_string(), "{}", case.name);
                        assert!(blob_files(&on).is_empty(), "{}", case.name);
                    }
                }
                assert_clean(&on, case.name);

                let off = home.join("strict");
                let out = install(&off, &registry, &["--no-fallback"]);
                assert_eq!(
                    out.status.code(),
                    Some(case.strict),
                    "{}: strict",
                    case.name
                );
                let err = error_line(&out);
                assert!(err.contains(case.message), "{}: strict: {err}", case.name);
                assert!(blob_files(&off).is_empty(), "{}: nothing stored", case.name);
                assert_clean(&off, case.name);
            });
        }
    });
    eprintln!(
        "fault matrix: {} faults x 2 in {:.1}s",
        MATRIX.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_download_cut_three_times_resumes_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, report) = hello_registry(home);
    let sha = report["v3"]["sha256"].as_str().unwrap();
    let size = report["v3"]["size"].as_u64().unwrap();
    let step = size / 5;
    let faults = fault_file(
        home,
        "cut3",
        &format!("[[fault]]\naction = \"cut\"\nafter = {step}\nformat = \"v3\"\ntimes = 3\n"),
    );
    let registry = Registry::start_with(home, &root, &["--faults", faults.to_str().unwrap()]);

    let out = run(cli(home).env("WEBCPM_HTTP_RETRIES", "3").args([
        "install",
        "test/hello",
        "--json",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0));
    let entry = &json(&out)["installed"][0];
    assert_eq!(entry["webc"], "v3");
    assert_eq!(entry["fell_back_from"], serde_json::Value::Null);
    assert_eq!(entry["sha256"], sha);
    assert!(
        stderr(&out).contains(&format!("resuming at byte {step}")),
        "{}",
        stderr(&out)
    );
    let shapes: Vec<String> = registry.blob_log(sha).iter().map(|l| shape(l)).collect();
    assert_eq!(
        shapes,
        [
            "- 200 auth=no".to_string(),
            format!("bytes={step}- 206 auth=no"),
            format!("bytes={}- 206 auth=no", 2 * step),
            format!("bytes={}- 206 auth=no", 3 * step),
        ]
    );
    let faults: Vec<bool> = registry
        .blob_log(sha)
        .iter()
        .map(|l| l.contains("fault=cut"))
        .collect();
    assert_eq!(faults, [true, true, true, false]);
    assert_clean(home, "resume");
    let blob = &blob_files(home)[0];
    assert_eq!(
        webcpm_client::package::Sha256Digest::of(&std::fs::read(blob).unwrap()).hex(),
        sha
    );

    // A server that answers the resume with the whole file (200): the download starts over.
    let home2 = home.join("restart");
    let faults = fault_file(
        &home2,
        "restart",
        &format!(
            "[[fault]]\naction = \"cut\"\nafter = {step}\nformat = \"v3\"\ntimes = 1\n\
             [[fault]]\naction = \"ignore-range\"\nformat = \"v3\"\n"
        ),
    );
    let registry = Registry::start_with(&home2, &root, &["--faults", faults.to_str().unwrap()]);
    let out = run(cli(&home2).args([
        "install",
        "test/hello",
        "--json",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v3");
    assert!(stderr(&out).contains("starting over"), "{}", stderr(&out));
    let shapes: Vec<String> = registry.blob_log(sha).iter().map(|l| shape(l)).collect();
    assert_eq!(
        shapes,
        [
            "- 200 auth=no".to_string(),
            format!("bytes={step}- 200 auth=no")
        ]
    );
    assert_clean(&home2, "restart");
}

#[test]
fn retry_after_is_honoured_and_a_stalled_body_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, report) = hello_registry(home);
    let sha = report["v3"]["sha256"].as_str().unwrap();

    let faults = fault_file(
        home,
        "429",
        "[[fault]]\naction = \"status\"\nstatus = 429\nretry_after = 2\nformat = \"v3\"\ntimes = 1\n",
    );
    let registry = Registry::start_with(home, &root, &["--faults", faults.to_str().unwrap()]);
    let out = install(home, &registry, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v3");
    let log = registry.blob_log(sha);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].contains(" 429 ") && log[0].contains("fault=status"),
        "{log:?}"
    );
    assert!(log[1].contains(" 200 "), "{log:?}");
    let waited = millis(&log[1]) - millis(&log[0]);
    assert!(waited >= 2000, "the retry came {waited} ms after the 429");
    assert!(waited < 5000, "the retry came {waited} ms after the 429");
    assert_clean(home, "429");

    // A body that stops after 100 bytes for 30 s: the 1 s read timeout fires, the download
    // resumes at byte 100.
    let home2 = home.join("stall");
    let faults = fault_file(
        &home2,
        "stall",
        "[[fault]]\naction = \"stall\"\nafter = 100\nseconds = 30\nformat = \"v3\"\ntimes = 1\n",
    );
    let registry = Registry::start_with(&home2, &root, &["--faults", faults.to_str().unwrap()]);
    let started = Instant::now();
    let out = run(cli(&home2).env("WEBCPM_HTTP_TIMEOUT", "1").args([
        "install",
        "test/hello",
        "--json",
        "--registry",
        &registry.url,
    ]));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v3");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let shapes: Vec<String> = registry.blob_log(sha).iter().map(|l| shape(l)).collect();
    assert_eq!(shapes, ["- 200 auth=no", "bytes=100- 206 auth=no"]);
    assert_clean(&home2, "stall");
}

/// Runs `install` of the registry's `test/hello` and checks that it is refused with exit 1, an
/// error naming `message`, and nothing stored.
fn assert_refused(home: &Path, registry: &Registry, args: &[&str], code: i32, message: &str) {
    let out = install(home, registry, args);
    assert_eq!(out.status.code(), Some(code), "{message}");
    let err = error_line(&out);
    assert!(err.contains(message), "expected `{message}` in: {err}");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(blob_files(home).is_empty(), "{message}: nothing stored");
    assert!(
        !home.join("store/volumes").exists()
            || std::fs::read_dir(home.join("store/volumes"))
                .unwrap()
                .next()
                .is_none(),
        "{message}: nothing unpacked"
    );
    assert_clean(home, message);
}

/// A v3 container with the atoms of `good` (a v3 file), `manifest`, and a `/data` volume
/// holding one file named `name`.
fn v3_with(good: &[u8], manifest: &serde_json::Value, name: &str, checksums: bool) -> Vec<u8> {
    use webc::v3::write::{DirEntry, FileEntry};
    use webc::v3::{ChecksumAlgorithm, Timestamps};
    let data = [(
        webc::PathSegment::parse(name).unwrap(),
        DirEntry::File(FileEntry::borrowed(b"hello", Timestamps::default())),
    )]
    .into_iter()
    .collect();
    let manifest: webc::metadata::Manifest = serde_json::from_value(manifest.clone()).unwrap();
    let algorithm = if checksums {
        ChecksumAlgorithm::Sha256
    } else {
        ChecksumAlgorithm::None
    };
    v3_with_data(good, &manifest, data, algorithm)
}

#[test]
fn hostile_input_is_refused_and_nothing_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, report) = hello_registry(home);
    let registry = Registry::start(home, &root);

    // Invalid package names and versions, from the command line.
    for (request, message) in [
        ("not a name", "invalid package name `not a name`"),
        ("test/../etc", "invalid package name"),
        (
            "test/hello@one.two",
            "invalid version requirement `one.two`",
        ),
    ] {
        let h = home.join("names");
        let out = run(cli(&h).args(["install", request, "--registry", &registry.url]));
        assert_eq!(out.status.code(), Some(2), "{request}");
        assert!(
            stderr(&out).contains(message),
            "{request}: {}",
            stderr(&out)
        );
        assert!(!h.join("store").exists() || blob_files(&h).is_empty());
    }

    // A registry URL that is not http(s), or plain http to a host that is not loopback.
    for (url, message) in [
        ("ftp://127.0.0.1/graphql", "uses the scheme `ftp`"),
        ("http://example.invalid/graphql", "--allow-insecure-http"),
    ] {
        let h = home.join("registry-url");
        let out = run(cli(&h).args(["install", "test/hello", "--registry", url]));
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(stderr(&out).contains(message), "{url}: {}", stderr(&out));
    }

    // Download URLs that the registry hands out: another scheme, or plain http elsewhere.
    let faults = fault_file(
        home,
        "urls",
        "[[fault]]\naction = \"url\"\nurl = \"file:///etc/passwd\"\npackage = \"test/hello\"\nformat = \"v3\"\ntimes = 2\n\
         [[fault]]\naction = \"url\"\nurl = \"http://example.invalid/hello.webc?token=abc\"\nformat = \"v3\"\n",
    );
    std::fs::create_dir_all(home.join("liar")).unwrap();
    let liar = Registry::start_with(
        &home.join("liar"),
        &root,
        &["--faults", faults.to_str().unwrap()],
    );
    assert_refused(
        &home.join("file-url"),
        &liar,
        &["--webc", "v3"],
        1,
        "`file:///etc/passwd` uses the scheme `file`; only http and https are allowed",
    );
    // With fallback, the unusable v3 node is skipped for v2.
    let h = home.join("file-url-fallback");
    let out = install(&h, &liar, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v2");
    assert_clean(&h, "file url with fallback");
    assert_refused(
        &home.join("http-url"),
        &liar,
        &["--webc", "v3"],
        1,
        "`http://example.invalid/hello.webc?token=***` is plain http to a host that is not loopback, refused before connecting; use https, or pass --allow-insecure-http (or set WEBCPM_ALLOW_INSECURE_HTTP=1)",
    );
    // --allow-insecure-http lets the node through: webcpm then tries that host (which does not
    // exist) and fails there, as a network error.
    let h = home.join("http-url-allowed");
    let out = install(&h, &liar, &["--webc", "v3", "--allow-insecure-http"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("downloading http://example.invalid/hello.webc?token=*** failed"),
        "{err}"
    );
    assert!(!err.contains("abc"), "query values are redacted: {err}");
    assert_clean(&h, "insecure http allowed");

    // A declared size above download.max_size.
    let h = home.join("max-size");
    let out = run(cli(&h).env("WEBCPM_MAX_SIZE", "1000").args([
        "install",
        "test/hello",
        "--no-fallback",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("more than the limit of 1000 bytes (download.max_size)"),
        "{}",
        stderr(&out)
    );
    assert!(blob_files(&h).is_empty());
    assert_clean(&h, "max size");

    // A body longer than declared: announced (Content-Length), or found while streaming.
    for (name, rule) in [
        ("announced", "action = \"wrong-length\"\nlength = 999999"),
        ("streamed", "action = \"pad\"\nbytes = 1"),
    ] {
        let h = home.join(format!("long-{name}"));
        let faults = fault_file(&h, name, &format!("[[fault]]\n{rule}\nformat = \"v3\"\n"));
        let long = Registry::start_with(&h, &root, &["--faults", faults.to_str().unwrap()]);
        let size = report["v3"]["size"].as_u64().unwrap();
        assert_refused(
            &h,
            &long,
            &["--webc", "v3"],
            1,
            &format!("sent more than the {size} bytes the registry declared"),
        );
    }

    // WebC files that a hostile registry could serve: volume entries named `..`, mount paths
    // that climb out, a command whose atom is missing.
    let v3_sha = report["v3"]["sha256"].as_str().unwrap();
    let good = std::fs::read(root.join("blobs").join(format!("{v3_sha}.webc"))).unwrap();
    let manifest: serde_json::Value = {
        let checked = webcpm_client::container::open(good.clone().into()).unwrap();
        serde_json::to_value(checked.manifest()).unwrap()
    };
    let mut dotdot = v3_with(&good, &manifest, "qq", false);
    let at = dotdot
        .windows(2)
        .rposition(|w| w == b"qq")
        .expect("the entry name is in the file");
    dotdot[at..at + 2].copy_from_slice(b"..");
    let mut climbing = manifest.clone();
    climbing["package"]["fs"][0]["mount_path"] = "/data/../../etc".into();
    let climbing = v3_with(&good, &climbing, "a.txt", true);
    let mut ghost = manifest.clone();
    ghost["commands"]["main"]["annotations"]["atom"]["name"] = "ghost".into();
    ghost["commands"]["main"]["annotations"]["wasi"]["atom"] = "ghost".into();
    let ghost = v3_with(&good, &ghost, "a.txt", true);
    for (name, bytes, message) in [
        ("dotdot", dotdot, "the WebC reader gave up on this file"),
        (
            "climbing",
            climbing,
            "unsafe package.fs[0].mount_path `/data/../../etc`",
        ),
        (
            "ghost",
            ghost,
            "command `main` names atom `ghost`, which the package does not contain",
        ),
    ] {
        let h = home.join(format!("webc-{name}"));
        let evil_root = h.join("registry");
        std::fs::create_dir_all(&h).unwrap();
        copy_dir(&root, &evil_root);
        replace_blob(&evil_root, "test/hello", "1.0.0", "v3", &bytes);
        let evil = Registry::start(&h, &evil_root);
        assert_refused(&h, &evil, &["--webc", "v3"], 1, message);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_token_reaches_the_registry_and_never_a_blob_host_elsewhere_nor_any_output() {
    const TOKEN: &str = "wcpm-secret-7f3a9c";
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut go = |what: &str, cmd: &mut Command| {
        let out = run(cmd.env("WEBCPM_TOKEN", TOKEN).env("RUST_LOG", "trace"));
        outputs.push((what.to_string(), out.clone()));
        out
    };

    // Blobs on the registry's own origin get the token.
    let same = Registry::start(home, &root);
    let h = home.join("same");
    let out = go(
        "install, same origin",
        cli(&h).args(["install", "test/hello", "-vv", "--registry", &same.url]),
    );
    assert_eq!(out.status.code(), Some(0));
    let log = same.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST /graphql ") && l.contains(" auth=yes ")),
        "{log:?}"
    );
    let blobs: Vec<&String> = log.iter().filter(|l| l.contains(" /blobs/")).collect();
    assert!(!blobs.is_empty());
    assert!(blobs.iter().all(|l| l.contains(" auth=yes ")), "{blobs:?}");

    // Blobs on another origin (localhost vs 127.0.0.1) do not.
    let other = Registry::start_public(&home.join("other"), &root, "localhost", &[]);
    let h = home.join("other-origin");
    let out = go(
        "install, blobs elsewhere",
        cli(&h).args(["install", "test/hello", "-vv", "--registry", &other.url]),
    );
    assert_eq!(out.status.code(), Some(0));
    let log = other.log();
    let graphql: Vec<&String> = log.iter().filter(|l| l.contains(" /graphql ")).collect();
    assert!(!graphql.is_empty());
    assert!(graphql.iter().all(|l| l.contains(" auth=yes ")), "{log:?}");
    let blobs: Vec<&String> = log.iter().filter(|l| l.contains(" /blobs/")).collect();
    assert!(!blobs.is_empty());
    assert!(blobs.iter().all(|l| l.contains(" auth=no ")), "{blobs:?}");

    // Failures too: a registry that errors, a lying node, an unknown package, resolve, run.
    let h = home.join("failures");
    std::fs::create_dir_all(&h).unwrap();
    let faults = fault_file(
        &h,
        "token",
        "[[fault]]\naction = \"graphql-errors\"\ntimes = 1\n\
         [[fault]]\naction = \"flip\"\nformat = \"v3\"\n",
    );
    let liar = Registry::start_with(&h, &root, &["--faults", faults.to_str().unwrap()]);
    let out = go(
        "install, graphql errors",
        cli(&h).args(["install", "test/hello", "--registry", &liar.url]),
    );
    assert_eq!(out.status.code(), Some(1));
    let out = go(
        "install, flipped v3",
        cli(&h).args([
            "install",
            "test/hello",
            "--no-fallback",
            "--registry",
            &liar.url,
        ]),
    );
    assert_eq!(out.status.code(), Some(1));
    go(
        "install, unknown",
        cli(&h).args(["install", "test/nothing", "--json", "--registry", &liar.url]),
    );
    go(
        "resolve",
        cli(&h).args([
            "resolve",
            "test/hello",
            "--explain",
            "--registry",
            &liar.url,
        ]),
    );
    go(
        "run",
        cli(&h).args(["run", "test/hello", "--registry", &liar.url]),
    );
    go("list", cli(&h).args(["list", "--json"]));
    for (what, out) in &outputs {
        let text = both(out);
        assert!(
            !text.contains(TOKEN),
            "{what}: the token is in the output:\n{text}"
        );
    }
}

/// Property tests: the code that turns outside bytes into webcpm's types never panics.
mod properties {
    use proptest::prelude::*;
    use webcpm_client::package::{
        Offer, PackageName, PackageSpec, Sha256Digest, WebcVersion, parse_version,
    };
    use webcpm_client::registry::parse_answer;

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// A valid WebC v3 file and its v2 conversion, built once.
    fn samples() -> &'static [Vec<u8>; 2] {
        static SAMPLES: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
        SAMPLES.get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let dir = crate::common::package_dir(
                tmp.path(),
                &crate::common::Pkg {
                    name: "test/prop",
                    version: "1.0.0",
                    files: &[("sub/b.txt", "bee")],
                    ..Default::default()
                },
            );
            let root = tmp.path().join("registry");
            let report = webcpm_registry::add(
                &webcpm_registry::Storage::local(&root),
                &dir,
                &Default::default(),
            )
            .unwrap();
            let read = |sha: &Sha256Digest| {
                std::fs::read(root.join("blobs").join(format!("{}.webc", sha.hex()))).unwrap()
            };
            [read(&report.v3.sha256), read(&report.v2.sha256)]
        })
    }

    fn open(bytes: Vec<u8>) {
        if let Ok(checked) = webcpm_client::container::open(bytes.into()) {
            let _ = checked.atoms();
            let _ = webcpm_client::container::mounts(checked.manifest());
            let _ = webcpm_client::package::dependencies_of(checked.manifest());
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9_/@.^~=<>, *-]{0,40}",
            "(https?|file|ftp)://[a-z0-9.:]{0,20}/[a-z0-9./?=&]{0,30}",
        ]
    }

    fn json_text() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            text().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A distribution node: mostly the right field names, with values good and bad.
    fn node() -> impl Strategy<Value = serde_json::Value> {
        let url = prop_oneof![
            Just(serde_json::json!("http://127.0.0.1:1/blobs/a.webc")),
            Just(serde_json::json!("https://example.com/a.webc?sig=x")),
            Just(serde_json::json!("http://example.com/a.webc")),
            Just(serde_json::json!("file:///etc/passwd")),
            json_text(),
        ];
        let hash = prop_oneof![
            "[0-9a-f]{64}".prop_map(serde_json::Value::from),
            json_text(),
        ];
        let version = prop_oneof![
            Just(serde_json::json!("V2")),
            Just(serde_json::json!("V3")),
            Just(serde_json::json!("V9")),
            json_text(),
        ];
        let manifest = prop_oneof![
            Just(serde_json::json!("{}")),
            Just(serde_json::json!({"use": {"dep": "test/dep@^1"}})),
            Just(serde_json::json!("{\"use\": {\"dep\": \"not a spec\"}}")),
            json_text(),
        ];
        (url, hash, any::<Option<i64>>(), version, manifest).prop_map(
            |(url, hash, size, version, manifest)| {
                serde_json::json!({
                    "piritaDownloadUrl": url,
                    "piritaSha256Hash": hash,
                    "piritaSize": size,
                    "webcVersion": version,
                    "webcManifest": manifest,
                })
            },
        )
    }

    fn answer() -> impl Strategy<Value = serde_json::Value> {
        let version = (
            prop_oneof!["[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}", text()],
            any::<bool>(),
            node(),
            node(),
        )
            .prop_map(|(version, archived, v2, v3)| {
                serde_json::json!({"version": version, "isArchived": archived, "v2": v2, "v3": v3})
            });
        let versions = prop_oneof![
            prop::collection::vec(version, 0..4).prop_map(serde_json::Value::from),
            json_text(),
        ];
        (versions, any::<bool>(), json_text()).prop_map(|(versions, errors, junk)| {
            let mut answer = serde_json::json!({
                "data": {"getPackage": {"name": "test/prop", "versions": versions}}
            });
            if errors {
                answer["errors"] = serde_json::json!([{"message": junk.to_string()}]);
            }
            answer
        })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn container_open_never_panics_on_arbitrary_bytes(
            magic in prop_oneof![Just(&b""[..]), Just(&b"\0webc002"[..]), Just(&b"\0webc003"[..]), Just(&b"\0webc001"[..])],
            rest in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = magic.to_vec();
            bytes.extend(rest);
            open(bytes);
        }

        #[test]
        fn container_open_never_panics_on_mutated_webc(
            which in 0usize..2,
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let mut bytes = samples()[which].clone();
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            open(bytes);
        }

        #[test]
        fn package_parsers_never_panic_and_round_trip(s in text()) {
            if let Ok(name) = s.parse::<PackageName>() {
                prop_assert_eq!(name.to_string().parse::<PackageName>().unwrap(), name.clone());
                prop_assert!(!name.as_str().contains(".."));
            }
            if let Ok(spec) = s.parse::<PackageSpec>() {
                let again = spec.to_string().parse::<PackageSpec>();
                prop_assert!(again.is_ok(), "{} -> {}", s, spec);
            }
            let _ = parse_version(&s);
            let _ = s.parse::<Sha256Digest>();
            let _ = s.parse::<WebcVersion>();
        }

        #[test]
        fn registry_answers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let name: PackageName = "test/prop".parse().unwrap();
            let _ = parse_answer(&bytes, &name, false);
        }

        #[test]
        fn registry_answers_of_the_right_shape_give_checked_offers(
            answer in answer(),
            insecure in any::<bool>(),
        ) {
            let name: PackageName = "test/prop".parse().unwrap();
            let bytes = serde_json::to_vec(&answer).unwrap();
            if let Ok(Some(releases)) = parse_answer(&bytes, &name, insecure) {
                for release in releases {
                    prop_assert_eq!(&release.name, &name);
                    for webc in [WebcVersion::V2, WebcVersion::V3] {
                        if let Offer::Offered(d) = release.offer(webc) {
                            prop_assert_eq!(d.webc, webc);
                            let url = webcpm_client::http::check_url(&d.url, insecure);
                            prop_assert!(url.is_ok(), "{}", d.url);
                        }
                    }
                }
            }
        }
    }
}
