//! A dependency tree costs as many GraphQL round trips as it is deep: the resolver asks for
//! every package of one level in one request (aliases of `getPackage`), counted here in the
//! registry's access log.

use crate::common::*;

#[test]
fn a_three_level_tree_of_thirty_packages_takes_three_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    // Level 3: 18 leaves. Level 2: 9 packages with two leaves each, and 2 more leaves.
    let leaves: Vec<String> = (0..20).map(|i| format!("test/leaf{i}")).collect();
    for leaf in &leaves {
        publish_new(home, &root, leaf, "1.0.0", &[]);
    }
    let mut top: Vec<(String, String)> = Vec::new();
    for j in 0..9 {
        let deps = [
            (leaves[2 * j].clone(), "^1"),
            (leaves[2 * j + 1].clone(), "^1"),
        ];
        let deps: Vec<(&str, &str)> = deps.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        let name = format!("test/mid{j}");
        publish_with_deps(home, &root, &name, &deps);
        top.push((name, "^1".into()));
    }
    top.push((leaves[18].clone(), "^1".into()));
    top.push((leaves[19].clone(), "^1".into()));
    let deps: Vec<(&str, &str)> = top.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
    publish_with_deps(home, &root, "test/app", &deps);
    let registry = Registry::start(home, &root);

    let out = run(webcpm(home)
        .args(["lock", "test/app", "--registry", &registry.url, "-o"])
        .arg(home.join("webcpm.lock")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(home.join("webcpm.lock")).unwrap();
    assert_eq!(text.matches("[[package]]").count(), 30, "{text}");
    let queries = registry
        .log()
        .iter()
        .filter(|l| l.starts_with("POST /graphql "))
        .count();
    assert_eq!(queries, 3, "{:#?}", registry.log());
}

/// A three-level chain `test/top` → `test/middle` → `test/bottom`, installed while the registry
/// answers the last level's query only on the second try (HTTP 503, `Retry-After: 1`): the files
/// of the two levels already settled download during that second, before the last answer comes.
#[test]
fn the_settled_levels_download_while_the_next_one_is_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let bottom = publish_with_deps(home, &root, "test/bottom", &[]);
    let middle = publish_with_deps(home, &root, "test/middle", &[("test/bottom", "^1")]);
    let top = publish_with_deps(home, &root, "test/top", &[("test/middle", "^1")]);
    let faults = fault_file(
        home,
        "slow-last-level",
        "[[fault]]\naction = \"status\"\nstatus = 503\nretry_after = 1\non = \"graphql\"\npackage = \"test/bottom\"\ntimes = 1\n",
    );
    let registry = Registry::start_with(home, &root, &["--faults", faults.to_str().unwrap()]);

    let out =
        run(webcpm(home).args(["install", "test/top", "--json", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = registry.log();
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {log:#?}"))
    };
    let sha = |report: &serde_json::Value| report["v3"]["sha256"].as_str().unwrap().to_string();
    let last_answer = log
        .iter()
        .rposition(|l| l.starts_with("POST /graphql ") && l.contains(" 200 "))
        .unwrap();
    assert!(at(&sha(&top)) < last_answer, "{log:#?}");
    assert!(at(&sha(&middle)) < last_answer, "{log:#?}");
    assert!(at(&sha(&bottom)) > last_answer, "{log:#?}");
    // Nothing was fetched twice.
    let blobs = log.iter().filter(|l| l.starts_with("GET /blobs/")).count();
    assert_eq!(blobs, 3, "{log:#?}");
}
