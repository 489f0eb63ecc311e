//! `webcpm search` and the registry's GraphQL `search`: every word in the name or description,
//! the latest version of each package, pages that follow their cursors.

use std::path::Path;

use crate::common::*;

/// Publishes `name@version` with `description` into the registry at `root`.
fn publish_described(home: &Path, root: &Path, name: &str, version: &str, description: &str) {
    let pkg = Pkg {
        name,
        version,
        ..Pkg::default()
    };
    let dir = package_dir(home, &pkg);
    let toml = std::fs::read_to_string(dir.join("wasmer.toml")).unwrap();
    let quoted = format!("\"{}\"", description.replace('\u{1b}', "\\u001b"));
    let toml = toml.replace("\"a test package\"", &quoted);
    std::fs::write(dir.join("wasmer.toml"), toml).unwrap();
    publish(home, root, &dir, &[]);
}

/// Posts a GraphQL query (or mutation) to the registry, with `token` if given; its answer.
pub(crate) fn graphql(registry: &Registry, token: Option<&str>, query: &str) -> serde_json::Value {
    let body = serde_json::json!({ "query": query });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut request = reqwest::Client::new().post(&registry.url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    })
}

#[test]
fn search_finds_packages_by_every_word_and_pages_through_them() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_described(
        home,
        &root,
        "test/wordcount",
        "1.0.0",
        "Counts words in text",
    );
    publish_described(
        home,
        &root,
        "test/wordcount",
        "1.2.0",
        "Counts words in text",
    );
    publish_described(home, &root, "test/grep", "0.3.0", "Finds lines that match");
    publish_described(
        home,
        &root,
        "other/tally",
        "2.0.0",
        "Counts WORDS, fast\u{1b}[2J",
    );
    let registry = Registry::start(home, &root);
    let search = |args: &[&str]| {
        let out = run(webcpm(home)
            .args(["search", "--registry", &registry.url])
            .args(args));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out
    };

    let found = json(&search(&["counts", "words", "--json"]));
    let names: Vec<&str> = found["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other/tally", "test/wordcount"], "{found}");
    assert_eq!(
        found["packages"][1]["version"], "1.2.0",
        "the latest version"
    );
    assert_eq!(found["packages"][1]["description"], "Counts words in text");
    let created = found["packages"][1]["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert_eq!(found["total"], 2);

    // Lines for people: the registry's text cannot move the terminal.
    let text = stdout(&search(&["counts"]));
    assert!(
        text.contains("test/wordcount") && text.contains("1.2.0"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let text = stdout(&search(&["test", "--limit", "1"]));
    assert!(text.contains("1 of 2 shown"), "{text}");
    let text = stdout(&search(&["nothing-like-this"]));
    assert!(
        text.contains("No package matches “nothing-like-this”"),
        "{text}"
    );

    // The GraphQL query pages with cursors, as a Relay connection does.
    let page = |after: &str| {
        graphql(
            &registry,
            None,
            &format!(
                "{{ search(query: \"\", first: 2{after}) {{ totalCount pageInfo {{ hasNextPage \
                 hasPreviousPage endCursor }} edges {{ cursor node {{ __typename \
                 ... on PackageVersion {{ version package {{ name }} }} }} }} }} }}"
            ),
        )
    };
    let first = page("");
    let s = &first["data"]["search"];
    assert_eq!(s["totalCount"], 3, "{first}");
    assert_eq!(s["edges"].as_array().unwrap().len(), 2);
    assert_eq!(s["pageInfo"]["hasNextPage"], true);
    assert_eq!(s["edges"][0]["node"]["__typename"], "PackageVersion");
    let cursor = s["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    let second = page(&format!(", after: \"{cursor}\""));
    let s = &second["data"]["search"];
    assert_eq!(s["edges"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(s["edges"][0]["node"]["package"]["name"], "test/wordcount");
    assert_eq!(s["pageInfo"]["hasNextPage"], false);
    assert_eq!(s["pageInfo"]["hasPreviousPage"], true);
    let bad = graphql(
        &registry,
        None,
        "{ search(query: \"x\", after: \"nope\") { totalCount } }",
    );
    let message = bad["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("not a cursor"), "{bad}");
}

#[test]
fn show_lists_every_version_and_details_the_one_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_described(home, &root, "test/wordcount", "1.0.0", "Counts words");
    publish_described(home, &root, "test/wordcount", "1.2.0", "Counts words");
    let out = run(webcpm(home)
        .args(["registry", "yank", "--root"])
        .arg(&root)
        .arg("test/wordcount@1.0.0"));
    assert_eq!(out.status.code(), Some(0));
    let registry = Registry::start(home, &root);
    let show = |args: &[&str]| {
        run(webcpm(home)
            .args(["show", "--registry", &registry.url])
            .args(args))
    };

    let out = show(&["test/wordcount", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = json(&out);
    assert_eq!(shown["versions"][0]["version"], "1.2.0");
    assert_eq!(shown["versions"][1]["yanked"], true);
    assert!(
        shown["versions"][0]["published"]
            .as_str()
            .unwrap()
            .contains('T')
    );
    let detail = &shown["detail"];
    assert_eq!(detail["version"], "1.2.0");
    assert_eq!(detail["formats"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(detail["commands"][0]["name"], "main");
    assert!(
        detail["commands"][0]["network"].is_null(),
        "unknown before install"
    );
    assert_eq!(detail["mounts"], serde_json::json!(["/data"]));

    // Once installed, the module's imports say: no network.
    let out = run(webcpm(home).args(["install", "test/wordcount", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let out = show(&["test/wordcount"]);
    let text = stdout(&out);
    assert!(text.contains("command main: no network"), "{text}");
    assert!(
        text.contains("yanked") && text.contains("mounts its own files, read-only, at /data"),
        "{text}"
    );

    // A yanked version in detail, when asked for exactly; an unknown package is an error.
    let out = show(&["test/wordcount@1.0.0", "--json"]);
    assert_eq!(json(&out)["detail"]["version"], "1.0.0");
    let out = show(&["test/none"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("test/none was not found"),
        "{}",
        stderr(&out)
    );
}
