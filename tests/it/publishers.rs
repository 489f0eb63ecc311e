//! Who published: the registry records the publisher (`registry add --publisher`, a token's
//! `--user`) and answers `publishedBy`; the lockfile and the store record it; `update`, `install`
//! and `lock` warn when a package is now by someone else; `show` says who published each version.

use std::path::Path;

use crate::common::*;
use crate::search::graphql;

fn published_by(registry: &Registry, version: &str) -> serde_json::Value {
    let answer = graphql(
        registry,
        None,
        "{ getPackage(name: \"test/alpha\") { versions { version publishedBy { username } } } }",
    );
    let versions = answer["data"]["getPackage"]["versions"].as_array().unwrap();
    let v = versions.iter().find(|v| v["version"] == version).unwrap();
    v["publishedBy"]["username"].clone()
}

fn ok(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
}

fn lock(home: &Path, registry: &Registry) -> std::process::Output {
    let out = run(webcpm(home)
        .args(["lock", "test/alpha@^1", "--registry", &registry.url, "-o"])
        .arg(home.join("webcpm.lock")));
    ok(&out);
    out
}

#[test]
fn a_change_of_publisher_is_warned_about_by_update_lock_and_install() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_new(
        home,
        &root,
        "test/alpha",
        "1.0.0",
        &["--publisher", "alice"],
    );
    publish_new(
        home,
        &root,
        "test/alpha",
        "1.1.0",
        &["--publisher", "alice"],
    );
    let registry = Registry::start(home, &root);
    assert_eq!(published_by(&registry, "1.0.0"), "alice");

    // The lockfile records who published each package; an install from the same hands is quiet.
    let first = lock(home, &registry);
    assert!(
        !stderr(&first).contains("published by"),
        "{}",
        stderr(&first)
    );
    let text = std::fs::read_to_string(home.join("webcpm.lock")).unwrap();
    assert!(text.contains("publisher = \"alice\""), "{text}");
    let out = run(webcpm(home).args(["install", "test/alpha@^1", "--registry", &registry.url]));
    ok(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // A new version comes from someone else.
    publish_new(
        home,
        &root,
        "test/alpha",
        "1.2.0",
        &["--publisher", "mallory"],
    );
    let out = run(webcpm(home).args(["show", "test/alpha", "--registry", &registry.url]));
    ok(&out);
    let shown = stdout(&out);
    assert!(
        shown.contains("by mallory") && shown.contains("by alice"),
        "{shown}"
    );

    let out = run(webcpm(home).args(["update", "--registry", &registry.url]));
    ok(&out);
    let warned = stderr(&out);
    assert!(
        warned.contains(
            "warning: test/alpha@1.2.0 was published by `mallory`, but test/alpha@1.1.0 (installed) was published by `alice`"
        ),
        "{warned}"
    );

    let out = lock(home, &registry);
    assert!(
        stderr(&out).contains("test/alpha@1.1.0 (in the lockfile) was published by `alice`"),
        "{}",
        stderr(&out)
    );
    // The store's anchor is now the new publisher: the next update says nothing.
    let out = run(webcpm(home).args(["update", "--registry", &registry.url]));
    ok(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // Another machine that had 1.1.0 installs 1.2.0: the same warning from `install`.
    let other = home.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let pinned = "test/alpha@=1.1.0";
    ok(&run(webcpm(&other).args([
        "install",
        pinned,
        "--registry",
        &registry.url,
    ])));
    let out =
        run(webcpm(&other).args(["install", "test/alpha@1.2.0", "--registry", &registry.url]));
    ok(&out);
    assert!(
        stderr(&out).contains("published by `mallory`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_token_publishes_as_its_user() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--json", "--root"])
        .arg(&root)
        .args(["--namespace", "test", "--user", "carol"]));
    ok(&out);
    let made = json(&out);
    assert_eq!(made["user"], "carol");
    let token = made["token"].as_str().unwrap().to_string();
    let registry = Registry::start(home, &root);
    let dir = package_dir(
        home,
        &Pkg {
            name: "test/alpha",
            version: "1.0.0",
            ..Pkg::default()
        },
    );
    let out = run(webcpm(home)
        .args(["publish", "--registry", &registry.url])
        .arg(&dir)
        .env("WEBCPM_TOKEN", &token));
    ok(&out);
    assert_eq!(published_by(&registry, "1.0.0"), "carol");

    // Without --user, a token publishes as its namespace; a bad user name is refused.
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--json", "--root"])
        .arg(&root)
        .args(["--namespace", "test"]));
    ok(&out);
    assert_eq!(json(&out)["user"], "test");
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--root"])
        .arg(&root)
        .args(["--namespace", "test", "--user", "no spaces"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a user name"),
        "{}",
        stderr(&out)
    );
}
