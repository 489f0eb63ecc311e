//! Yanks: `webcpm-registry yank --reason` and the real schema's
//! `changePackageVersionArchivedStatus` with a token; ranges and `latest` skip a yanked version,
//! an exact pin installs it with a warning, and `outdated` and `install --locked` warn about one
//! that was yanked after it was installed or locked.

use std::path::Path;

use crate::common::*;
use crate::search::graphql;

fn resolved(home: &Path, registry: &Registry, request: &str) -> String {
    let out = run(webcpm(home).args(["resolve", request, "--json", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)["version"].as_str().unwrap().to_string()
}

fn set_archived(
    registry: &Registry,
    token: &str,
    version: &str,
    archived: bool,
) -> serde_json::Value {
    graphql(
        registry,
        Some(token),
        &format!(
            "mutation {{ changePackageVersionArchivedStatus(input: {{ packageVersionId: \
             \"PackageVersion:test/alpha@{version}\", isArchived: {archived} }}) \
             {{ packageVersion {{ id version isArchived }} }} }}"
        ),
    )
}

#[test]
fn a_yanked_version_is_skipped_by_ranges_installed_when_pinned_and_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_new(home, &root, "test/alpha", "1.0.0", &[]);
    publish_new(home, &root, "test/alpha", "1.1.0", &[]);
    let registry = Registry::start(home, &root);
    let lock = home.join("webcpm.lock");
    let out = run(webcpm(home)
        .args(["lock", "test/alpha@^1", "--registry", &registry.url, "-o"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(webcpm(home).args(["install", "test/alpha@^1", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));

    // The operator yanks 1.1.0, with a reason.
    let out = run(webcpm(home)
        .args(["registry", "yank", "--json", "--root"])
        .arg(&root)
        .args(["test/alpha@1.1.0", "--reason", "corrupts its output"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["reason"], "corrupts its output");

    assert_eq!(resolved(home, &registry, "test/alpha@^1"), "1.0.0");
    assert_eq!(resolved(home, &registry, "test/alpha"), "1.0.0");
    assert_eq!(resolved(home, &registry, "test/alpha@=1.1.0"), "1.1.0");

    // The machine that has it installed hears of it from `outdated`.
    let out = run(webcpm(home).args(["outdated", "--json", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["packages"][0]["yanked"], true);
    assert!(
        stderr(&out).contains("test/alpha@1.1.0 (installed) is yanked"),
        "{}",
        stderr(&out)
    );

    // Pinned exactly, it installs, with a warning; a lockfile installs it too and says so.
    let other = home.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let out =
        run(webcpm(&other).args(["install", "test/alpha@1.1.0", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("test/alpha@1.1.0 is yanked"),
        "{}",
        stderr(&out)
    );
    let third = home.join("third");
    std::fs::create_dir_all(&third).unwrap();
    let out = run(webcpm(&third)
        .args(["install", "--json", "--locked"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["version"], "1.1.0");
    assert!(
        stderr(&out).contains("test/alpha@1.1.0 (locked) is yanked"),
        "{}",
        stderr(&out)
    );

    // Through the API, with a token of the package's namespace only.
    let mine = make_token(home, &root, &["--namespace", "test"], &[]);
    let theirs = make_token(home, &root, &["--namespace", "other"], &[]);
    let refused = set_archived(&registry, &theirs, "1.1.0", false);
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let undone = set_archived(&registry, &mine, "1.1.0", false);
    let node = &undone["data"]["changePackageVersionArchivedStatus"]["packageVersion"];
    assert_eq!(node["isArchived"], false, "{undone}");
    assert_eq!(node["id"], "PackageVersion:test/alpha@1.1.0");
    assert_eq!(resolved(home, &registry, "test/alpha@^1"), "1.1.0");
    // The operator's reason stays when the API yanks the version again (the API has none).
    let out = run(webcpm(home)
        .args(["registry", "yank", "--root"])
        .arg(&root)
        .args(["test/alpha@1.0.0", "--reason", "old and slow"]));
    assert_eq!(out.status.code(), Some(0));
    let yanked = set_archived(&registry, &mine, "1.0.0", true);
    let page_url = registry.url.replace("/graphql", "/packages/test/alpha");
    let page = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(page_url).await.unwrap().text().await.unwrap() });
    assert!(page.contains("old and slow"), "{page}");
    assert_eq!(
        yanked["data"]["changePackageVersionArchivedStatus"]["packageVersion"]["isArchived"], true,
        "{yanked}"
    );
    let missing = set_archived(&registry, &mine, "9.9.9", true);
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("test/alpha@9.9.9 is not published here"),
        "{missing}"
    );
}
