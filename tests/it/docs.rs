//! The pages under docs/, their examples run as written: every ```sh block right after a
//! `<!-- docs-test -->` line runs in bash (`set -euo pipefail`), in an empty directory of a new
//! HOME, with `webcpm` and `webcpm-registry` first on PATH, and must exit 0 and print what
//! [`EXPECTED`] says. The ports the pages write are replaced by free ones; the scale-out page's
//! PostgreSQL and OCI registry by ones the test starts ([`crate::services`]).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::services::{OciRegistry, Postgres};

/// For each page, for each of its tested blocks in order, what its stdout must contain.
const EXPECTED: &[(&str, &[&[&str]])] = &[
    (
        "user-guide.md",
        &[
            // Running local files and URLs.
            &[
                "       1       3      14",
                "Hello, World!",
                "Hello, WebC!",
                "Hello, URL!",
                "No packages installed.",
            ],
            // Lockfiles, outdated and update.
            &[
                "webcpm.lock written: 2 packages",
                "webcpm.lock is up to date",
                "the lockfile would change (exit code 1)",
                "me/tool                          1.0.0        1.1.0        2.0.0",
                "Updated me/tool 1.0.0 -> 1.1.0 (WebC v3)",
            ],
            // Package names.
            &["Hello, names!", "_/cowsay  ", "Uninstalled _/cowsay"],
            // Configuration.
            &[
                "8\n2\n",
                "download.concurrency = 8  # user file",
                "webc.priority = [\"v2\", \"v3\"]  # user file",
            ],
            // The store.
            &[
                "Installed me/greeter@1.0.0 as WebC v3",
                "checked 3, corrupt 0, missing 0",
                "Uninstalled me/greeter",
                "removed 1 packages",
            ],
            // Exit codes.
            &["exit code 1\n", "exit code 2\n", "exit code 134\n"],
        ],
    ),
    (
        "trust-model.md",
        &[&[
            "Hello, guest!",
            "Granted local/greeter the network (--net)",
            "/shared at /shared (--volume)",
            "Took back 1 grant(s) from local/greeter",
            "{\"grants\":[]}",
            "must be relative and stay within the volume",
            "refused, exit code 1\n",
        ]],
    ),
    (
        "operator-guide.md",
        &[
            // Publishing, with a token.
            &[
                "Published me/greeter@1.1.0",
                "exit code 1: 1.1.0 is already published",
                "Hello, operator!",
                "me/greeter@1.0.0 -> WebC v3",
            ],
            // A mirror.
            &["Hello, mirror!"],
            // Running a fleet.
            &[
                "policy v3: set me/greeter webc v2",
                "[registry sets v2 (policy v3)]",
                "registry policy v4 in force",
                "me/wc v3 -> v2",
                "me/wc v2 -> v3",
                "v4 rollback by ",
            ],
            // Running the registry as a service.
            &[
                "ok\n",
                "{\"blobs\":\"ok\",\"database\":\"ok\",\"ready\":true}",
                "webcpm_registry_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"}",
                "big body: 413",
                "x-request-id: ticket-1234",
                "\n1\n",
                "stopped: exit 0",
            ],
        ],
    ),
    (
        "scale-out.md",
        &[
            // Replicas on PostgreSQL and an OCI registry.
            &[
                "Hello, replicas!",
                "Published acme/wc@1.0.0",
                "       1       3      14",
            ],
            // Compiled code shared across a fleet.
            &[
                "Compiled greeter",
                "Pulled greeter from oci://",
                "not compiled here",
                "Hello, fleet!",
            ],
        ],
    ),
    (
        "chaos.md",
        &[
            // The fault file.
            &[
                "Installed me/greeter@1.0.0 as WebC v2",
                "\"fell_back_from\":\"v3\"",
                "SHA-256 mismatch",
                "Hello, canary!",
                "Installed me/wc@1.0.0 as WebC v3",
                "fault=flip",
                "fault=cut",
            ],
            // Real shapes.
            &[
                "the v2 and v3 nodes name the same file",
                "the registry left out piritaSize, webcVersion, webcManifest",
                "Installed _/hello@0.2.0 as WebC v2",
                "the v3 node serves WebC v2",
                "Hello, legacy!",
                "exit code 1: a broken version cannot be used",
            ],
        ],
    ),
];

/// The listening addresses the pages write; each block gets a free port for each.
const PORTS: &[&str] = &["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"];
/// The database the scale-out page names, replaced by a new one on a PostgreSQL of the test's.
const POSTGRES: &str = "postgres://webcpm@127.0.0.1/webcpm";
/// The OCI registry the pages name, replaced by a `docker-registry` of the test's.
const OCI: &str = "oci://127.0.0.1:5000";
/// How long one block may take before it is stopped and the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

fn docs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs"))
}

/// The tested blocks of a page: the body of each ```sh block right after a marker line.
fn blocks(page: &str) -> Vec<String> {
    let text = std::fs::read_to_string(docs().join(page)).unwrap();
    text.split("\n<!-- docs-test -->\n")
        .skip(1)
        .map(|rest| {
            let body = rest
                .strip_prefix("```sh\n")
                .unwrap_or_else(|| panic!("docs/{page}: a marker not followed by a ```sh block"));
            let (body, _) = body
                .split_once("\n```")
                .unwrap_or_else(|| panic!("docs/{page}: a ```sh block that does not end"));
            body.to_string()
        })
        .collect()
}

fn expected(page: &str) -> &'static [&'static [&'static str]] {
    EXPECTED
        .iter()
        .find(|(name, _)| *name == page)
        .unwrap_or_else(|| panic!("docs/{page} has no entry in EXPECTED"))
        .1
}

/// Runs every tested block of `page` and checks each one's output.
fn check_page(page: &str) {
    let blocks = blocks(page);
    let expected = expected(page);
    assert_eq!(
        blocks.len(),
        expected.len(),
        "docs/{page}: the tested blocks and the entries of EXPECTED differ in number"
    );
    for (index, (block, strings)) in blocks.iter().zip(expected).enumerate() {
        run_block(&format!("docs/{page}"), index, block, strings);
    }
}

/// Runs one block; returns without running it when a service it needs is not installed (the
/// service says so, or fails the test under `WEBCPM_REQUIRE_SERVICES`).
pub(crate) fn run_block(file: &str, index: usize, block: &str, strings: &[&str]) {
    let mut script = block.to_string();
    for address in PORTS {
        script = script.replace(address, &format!("127.0.0.1:{}", free_port()));
    }
    let _postgres = if script.contains(POSTGRES) {
        let Some(pg) = Postgres::start() else {
            return skipped(file, index);
        };
        script = script.replace(POSTGRES, &pg.database("webcpm"));
        Some(pg)
    } else {
        None
    };
    let _oci = if script.contains(OCI) {
        let Some(oci) = OciRegistry::start() else {
            return skipped(file, index);
        };
        script = script.replace(OCI, &format!("oci://127.0.0.1:{}", oci.port));
        Some(oci)
    } else {
        None
    };
    let script =
        format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n");

    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let work = home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_webcpm")).parent().unwrap();
    let (out_path, err_path) = (home.join("stdout"), home.join("stderr"));
    let mut cmd = bash(home);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .arg("-c")
    .arg(&script)
    .current_dir(&work)
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&out_path).unwrap())
    .stderr(std::fs::File::create(&err_path).unwrap())
    // A group of its own, so that whatever the block started can be stopped with it.
    .process_group(0);
    let mut child = cmd.spawn().expect("bash starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: signals the process group of the bash this test started, and nothing else.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.wait();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    eprintln!(
        "$ {file} block {index}\n{script}\n--- exit {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        status.map(|s| s.code())
    );
    let status = status.unwrap_or_else(|| {
        panic!("{file} block {index} ran longer than {DEADLINE:?} and was stopped")
    });
    assert_eq!(status.code(), Some(0), "{file} block {index} failed");
    for s in strings {
        assert!(
            stdout.contains(s),
            "{file} block {index} did not print {s:?}"
        );
    }
}

fn skipped(file: &str, index: usize) {
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {file} block {index} needs a service that is not available here"
    );
}

#[test]
fn every_page_has_tested_examples() {
    let mut pages: Vec<String> = std::fs::read_dir(docs())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    pages.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(page, _)| page.to_string()).collect();
    listed.sort();
    assert_eq!(
        pages, listed,
        "every page under docs/ is in EXPECTED, and only those"
    );
    for page in &pages {
        let blocks = blocks(page);
        assert!(!blocks.is_empty(), "docs/{page} has no tested block");
        assert_eq!(blocks.len(), expected(page).len(), "docs/{page}");
        for (index, strings) in expected(page).iter().enumerate() {
            assert!(
                !strings.is_empty(),
                "docs/{page} block {index} checks nothing"
            );
        }
    }
}

#[test]
fn the_user_guide_runs_as_written() {
    check_page("user-guide.md");
}

#[test]
fn the_trust_model_runs_as_written() {
    check_page("trust-model.md");
}

#[test]
fn the_operators_guide_runs_as_written() {
    check_page("operator-guide.md");
}

#[test]
fn the_scale_out_page_runs_as_written() {
    check_page("scale-out.md");
}

#[test]
fn the_chaos_page_runs_as_written() {
    check_page("chaos.md");
}
