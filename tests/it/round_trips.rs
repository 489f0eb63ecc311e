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
        let pkg = Pkg {
            name: &name,
            version: "1.0.0",
            dependencies: &deps,
            ..Pkg::default()
        };
        publish(home, &root, &package_dir(home, &pkg), &[]);
        top.push((name, "^1".into()));
    }
    top.push((leaves[18].clone(), "^1".into()));
    top.push((leaves[19].clone(), "^1".into()));
    let deps: Vec<(&str, &str)> = top.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
    let app = Pkg {
        name: "test/app",
        version: "1.0.0",
        dependencies: &deps,
        ..Pkg::default()
    };
    publish(home, &root, &package_dir(home, &app), &[]);
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
