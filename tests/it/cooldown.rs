//! The cooldown (`resolve.min_release_age`): a just-published version is held back from ranges,
//! `latest` and lockfiles until it is old enough, said by `resolve --explain` and `outdated`; an
//! exact request still gets it; exempt packages and a registry without publish times (fail
//! closed, unless opened). The clock moves through `WEBCPM_NOW`, not by waiting.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use crate::replay::Replay;

const DAY: i64 = 86_400;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// RFC 3339 for a Unix time, by `date` (GNU coreutils).
fn rfc3339(at: i64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{at}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn cmd(home: &Path, registry: &str, args: &[&str], now: Option<i64>) -> Output {
    let mut c = webcpm(home);
    c.args(args).args(["--registry", registry]);
    if let Some(now) = now {
        c.env("WEBCPM_NOW", rfc3339(now));
    }
    run(&mut c)
}

#[test]
fn a_young_version_is_held_back_until_the_clock_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let month_ago = rfc3339(unix_now() - 30 * DAY);
    publish_new(
        home,
        &root,
        "test/alpha",
        "1.0.0",
        &["--published-at", &month_ago],
    );
    publish_new(home, &root, "test/alpha", "1.1.0", &[]);
    let registry = Registry::start(home, &root);
    let url = registry.url.as_str();
    let week = ["--min-release-age", "7d"];

    // Held back: ranges and `latest` take 1.0.0, and say why.
    let out = cmd(
        home,
        url,
        &[&["install", "test/alpha@^1", "--json"][..], &week].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["installed"][0]["version"], "1.0.0");
    let out = cmd(
        home,
        url,
        &[&["resolve", "test/alpha", "--json"][..], &week].concat(),
        None,
    );
    let explained = json(&out);
    assert_eq!(explained["version"], "1.0.0");
    let notes = explained["notes"].to_string();
    assert!(
        notes.contains("test/alpha@1.1.0 held back until"),
        "{notes}"
    );
    let lock = home.join("webcpm.lock");
    let out = cmd(
        home,
        url,
        &[
            &["lock", "test/alpha@^1", "-o", lock.to_str().unwrap()][..],
            &week,
        ]
        .concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&lock)
            .unwrap()
            .contains("version = \"1.0.0\"")
    );
    let out = run(webcpm(home)
        .args(["outdated", "--registry", url])
        .env("WEBCPM_MIN_RELEASE_AGE", "7d"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("test/alpha: 1.1.0 held back until"),
        "{}",
        stderr(&out)
    );

    // Asked for exactly, it is installed, with a note.
    let out = cmd(
        home,
        url,
        &[&["install", "test/alpha@1.1.0"][..], &week].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("younger than resolve.min_release_age"),
        "{}",
        stderr(&out)
    );

    // A week and a day later, it is old enough.
    let later = Some(unix_now() + 8 * DAY);
    let out = cmd(
        home,
        url,
        &[&["resolve", "test/alpha@^1", "--json"][..], &week].concat(),
        later,
    );
    assert_eq!(json(&out)["version"], "1.1.0", "{}", stderr(&out));
    // Only held versions: the error says until when.
    let out = cmd(
        home,
        url,
        &[&["resolve", "test/alpha@~1.1"][..], &week].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("1.1.0 (held back until"),
        "{}",
        stderr(&out)
    );

    // An exempt package is not held.
    let config = home.join("config.toml");
    std::fs::write(
        &config,
        "[resolve]\nmin_release_age = \"7d\"\nmin_release_age_exempt = [\"test/alpha\"]\n",
    )
    .unwrap();
    let out = run(webcpm(home)
        .args([
            "resolve",
            "test/alpha",
            "--json",
            "--registry",
            url,
            "--config",
        ])
        .arg(&config));
    assert_eq!(json(&out)["version"], "1.1.0", "{}", stderr(&out));
    let bad = cmd(
        home,
        url,
        &["resolve", "test/alpha", "--min-release-age", "7 parsecs"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("write it as 7d"), "{}", stderr(&bad));
}

#[test]
fn a_registry_without_publish_times_is_held_back_unless_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // The real registry's answer, captured without `createdAt`.
    let replay = Replay::start("wasmer-python-archived.response.json");
    let out = cmd(
        home,
        &replay.url,
        &["resolve", "wasmer/python", "--min-release-age", "1d"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gives no publish time"),
        "{}",
        stderr(&out)
    );
    let config = home.join("config.toml");
    std::fs::write(&config, "[resolve]\nallow_unknown_release_time = true\n").unwrap();
    let out = run(webcpm(home)
        .args([
            "resolve",
            "wasmer/python",
            "--json",
            "--min-release-age",
            "1d",
        ])
        .args(["--registry", &replay.url, "--config"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["version"], "3.12.1");
}
