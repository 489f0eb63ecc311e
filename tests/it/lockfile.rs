//! Lockfiles, `outdated` and `update`, against a real local registry: a lockfile round trip into
//! another store, `--locked` refusing what changed, a rollback of locked installs without a
//! registry query, and three versions moving through `outdated` and `update`.

use std::path::Path;

use crate::common::*;

/// `fleet/app@1.0.0`, which depends on `fleet/lib@^1`, and `fleet/lib@1.0.0`.
fn app_with_lib(home: &Path, root: &Path) {
    publish_new(home, root, "fleet/lib", "1.0.0", &[]);
    let app = package_dir(
        home,
        &Pkg {
            name: "fleet/app",
            version: "1.0.0",
            dependencies: &[("fleet/lib", "^1")],
            ..Pkg::default()
        },
    );
    publish(home, root, &app, &[]);
}

fn graphql_queries(registry: &Registry) -> usize {
    registry
        .log()
        .iter()
        .filter(|l| l.starts_with("POST /graphql"))
        .count()
}

/// [`app_with_lib`] served, and `home/webcpm.lock` written for `requests`.
fn locked_app(home: &Path, root: &Path, requests: &[&str]) -> (Registry, std::path::PathBuf) {
    app_with_lib(home, root);
    let registry = Registry::start(home, root);
    let lock = home.join("webcpm.lock");
    let out = run(webcpm(home)
        .arg("lock")
        .args(requests)
        .args(["--registry", &registry.url, "-o"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (registry, lock)
}

#[test]
fn a_lockfile_installs_the_same_tree_elsewhere_and_refuses_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let (registry, lock) = locked_app(home, &root, &["fleet/app"]);
    let text = std::fs::read_to_string(&lock).unwrap();
    for expected in [
        "name = \"fleet/app\"",
        "name = \"fleet/lib\"",
        "[package.v2]",
        "[package.v3]",
        "request = \"fleet/lib@^1\"",
        "rule = \"default priority\"",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    let check = || {
        run(webcpm(home)
            .args([
                "lock",
                "fleet/app",
                "--locked",
                "--registry",
                &registry.url,
                "-o",
            ])
            .arg(&lock))
    };
    // Nothing changed: the check passes and writes nothing.
    let out = check();
    assert_eq!(out.status.code(), Some(0));
    // A lockfile written before publishers were recorded is not out of date for that alone.
    assert!(text.contains("publisher = \"fleet\""), "{text}");
    let older: String = text
        .lines()
        .filter(|l| !l.starts_with("publisher = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&lock, &older).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::write(&lock, &text).unwrap();

    // Another machine installs exactly that, from the lockfile's registry, without resolving.
    let other = home.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let queries = graphql_queries(&registry);
    let out = run(webcpm(&other)
        .args(["install", "--json", "--locked"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(0));
    // Nothing is resolved: after the install, one request asks whether a locked version was
    // yanked since (every locked package at once).
    assert!(text.matches("[[package]]").count() > 1);
    let queries = queries + 1;
    assert_eq!(
        graphql_queries(&registry),
        queries,
        "only the yank check asks the registry"
    );
    let list = json(&run(webcpm(&other).args(["list", "--json"])));
    let packages = list["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1);
    assert_eq!(packages[0]["package"], "fleet/app");
    assert!(text.contains(packages[0]["sha256"].as_str().unwrap()));
    let out = run(webcpm(&other).args(["run", "fleet/app"]));
    assert_eq!(stdout(&out), "fleet/app\n");

    // A rollback of locked installs re-points them with what the lockfile recorded: no query.
    let out = run(webcpm(&other).args(["rollout", "rollback", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installs"][0]["to"], "v2");
    assert_eq!(graphql_queries(&registry), queries, "no registry query");

    // A newer version makes the check fail and name what would change.
    publish_new(home, &root, "fleet/lib", "1.1.0", &[]);
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("would change"), "{}", stderr(&out));
    assert!(stderr(&out).contains("1.1.0"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        text,
        "nothing written"
    );

    // A lockfile whose hash was changed is refused, and nothing is installed.
    let v3 = text.split("[package.v3]").nth(1).unwrap();
    let sha = v3.split("sha256 = \"").nth(1).unwrap()[..64].to_string();
    let zeros = format!("sha256 = \"{}\"", "0".repeat(64));
    std::fs::write(&lock, text.replace(&format!("sha256 = \"{sha}\""), &zeros)).unwrap();
    let third = home.join("third");
    std::fs::create_dir_all(&third).unwrap();
    let out = run(webcpm(&third)
        .args(["install", "--webc", "v3", "--locked"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("SHA-256"), "{}", stderr(&out));
    let list = json(&run(webcpm(&third).args(["list", "--json"])));
    assert!(list["packages"].as_array().unwrap().is_empty());
}

#[test]
fn outdated_and_update_across_three_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_new(home, &root, "fleet/tool", "1.0.0", &[]);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "fleet/tool@^1", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    publish_new(home, &root, "fleet/tool", "1.1.0", &[]);
    publish_new(home, &root, "fleet/tool", "2.0.0", &[]);

    let outdated = |home: &Path| {
        let out = run(webcpm(home).args(["outdated", "--json", "--registry", &registry.url]));
        assert_eq!(out.status.code(), Some(0));
        json(&out)["packages"][0].clone()
    };
    let row = outdated(home);
    assert_eq!(row["installed"], "1.0.0");
    assert_eq!(row["wanted"], "1.1.0");
    assert_eq!(row["latest"], "2.0.0");

    let out = run(webcpm(home).args(["update", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("Updated fleet/tool 1.0.0 -> 1.1.0"),
        "{}",
        stdout(&out)
    );
    let row = outdated(home);
    assert_eq!(row["installed"], "1.1.0");
    assert_eq!(row["wanted"], "1.1.0");
    let out = run(webcpm(home).args(["run", "fleet/tool"]));
    assert_eq!(stdout(&out), "fleet/tool\n");
    // Nothing newer within ^1: the install stays.
    let out = run(webcpm(home).args(["update", "fleet/tool", "--registry", &registry.url]));
    assert!(
        stdout(&out).contains("1.1.0 is up to date"),
        "{}",
        stdout(&out)
    );
    let out = run(webcpm(home).args(["update", "fleet/none", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn tree_and_why_read_the_lockfile() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let (_registry, lock) = locked_app(home, &root, &["fleet/app", "fleet/lib"]);

    let out = run(webcpm(home).args(["tree", "--lockfile"]).arg(&lock));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "fleet/app@1.0.0\n  fleet/lib@1.0.0\nfleet/lib@1.0.0 (*)\n"
    );
    let out = run(webcpm(home)
        .args(["why", "fleet/lib", "--json", "--lockfile"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        json(&out)["paths"],
        serde_json::json!([["fleet/app@1.0.0", "fleet/lib@1.0.0"], ["fleet/lib@1.0.0"]])
    );
    let out = run(webcpm(home)
        .args(["why", "fleet/none", "--lockfile"])
        .arg(&lock));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("fleet/none is not in"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_vendored_lockfile_installs_with_the_registry_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let (registry, lock) = locked_app(home, &root, &["fleet/app"]);
    let vendored = home.join("vendor");
    let out = run(webcpm(home)
        .arg("vendor")
        .arg(&vendored)
        .arg("--lockfile")
        .arg(&lock));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Vendored 4 files"),
        "{}",
        stdout(&out)
    );
    drop(registry);

    // Another machine, and no registry at all: everything comes from the directory.
    let install = |store: &str| {
        let other = home.join(store);
        std::fs::create_dir_all(&other).unwrap();
        let out = run(webcpm(&other)
            .args(["install", "--locked"])
            .arg(vendored.join("webcpm.lock"))
            .arg("--from")
            .arg(&vendored));
        (other, out)
    };
    let (other, out) = install("other");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(webcpm(&other).args(["run", "fleet/app"]));
    assert_eq!(stdout(&out), "fleet/app\n");

    // A file changed after vendoring is refused, and so is a missing one.
    let text = std::fs::read_to_string(vendored.join("webcpm.lock")).unwrap();
    let lib_v3 = text
        .split("[package.v3]")
        .nth(1)
        .and_then(|t| t.split("sha256 = \"").nth(1))
        .map(|t| t[..64].to_string())
        .unwrap();
    let file = vendored.join(format!("{lib_v3}.webc"));
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (_, out) = install("tampered");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not the file the lockfile names"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(&file).unwrap();
    let (_, out) = install("missing");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is missing"), "{}", stderr(&out));
}
