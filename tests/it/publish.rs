//! `webcpm publish DIR` against `webcpm registry serve`: the Wasmer flow (`generateUploadUrl`,
//! the upload, `publishPackage`) with tokens made by `webcpm registry token create`.

use std::path::Path;
use std::process::Output;

use crate::common::*;

/// `registry token create --json`: the token's text.
fn token(home: &Path, root: &Path, namespace: &str) -> String {
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--json", "--root"])
        .arg(root)
        .args(["--namespace", namespace]));
    assert_eq!(out.status.code(), Some(0));
    let made = json(&out);
    assert_eq!(made["namespace"], namespace);
    made["token"].as_str().unwrap().to_string()
}

/// `webcpm publish DIR` to `registry` with `token` (none when `None`).
fn publish_dir(home: &Path, registry: &Registry, dir: &Path, token: Option<&str>) -> Output {
    let mut cmd = webcpm(home);
    cmd.args(["publish", "--json", "--registry", &registry.url])
        .arg(dir);
    if let Some(token) = token {
        cmd.env("WEBCPM_TOKEN", token);
    }
    run(&mut cmd)
}

/// The access log's lines for one path prefix, as `METHOD STATUS auth=..`.
fn requests(registry: &Registry, prefix: &str) -> Vec<String> {
    registry
        .log()
        .iter()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            f[1].starts_with(prefix)
                .then(|| format!("{} {} {}", f[0], f[3], f[5]))
        })
        .collect()
}

/// Publishing without a token, with one the registry does not know, and with one for another
/// namespace: 401, 401, 403, and nothing uploaded.
fn assert_refused(home: &Path, registry: &Registry, dir: &Path, other: &str) {
    let out = publish_dir(home, registry, dir, None);
    assert_eq!(out.status.code(), Some(2));
    let err = json(&out);
    assert!(err["error"].as_str().unwrap().contains("HTTP 401"), "{err}");
    assert!(
        stderr(&out).contains("WEBCPM_TOKEN"),
        "the hint names the variable"
    );

    let forged = format!("wcpm_{}", "0".repeat(64));
    let out = publish_dir(home, registry, dir, Some(&forged));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not know this token"));
    assert!(!stdout(&out).contains(&forged) && !stderr(&out).contains(&forged));

    let out = publish_dir(home, registry, dir, Some(other));
    assert_eq!(out.status.code(), Some(2));
    let message = json(&out)["error"].as_str().unwrap().to_string();
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(
        message.contains("`other` only, not into `test`"),
        "{message}"
    );
    assert!(
        requests(registry, "/uploads").is_empty(),
        "nothing was uploaded"
    );
}

/// Publishing with a good token: both formats are offered, as `publish` reported them.
fn assert_published_in_both_formats(home: &Path, registry: &Registry, dir: &Path, good: &str) {
    let out = publish_dir(home, registry, dir, Some(good));
    assert_eq!(out.status.code(), Some(0));
    let published = json(&out);
    assert_eq!(published["package"], "test/pub");
    assert_eq!(published["version"], "1.0.0");

    // Both formats are offered, with the hashes and sizes that publish reported.
    let out = run(webcpm(home)
        .args(["resolve", "test/pub", "--json", "--explain", "--registry"])
        .arg(&registry.url));
    assert_eq!(out.status.code(), Some(0));
    let explained = json(&out);
    let candidates = explained["candidates"].as_array().unwrap();
    for webc in ["v2", "v3"] {
        let c = candidates.iter().find(|c| c["webc"] == webc).unwrap();
        assert_eq!(c["sha256"], published[webc]["sha256"], "{webc}");
        assert_eq!(c["size"], published[webc]["size"], "{webc}");
    }
    for webc in ["v2", "v3"] {
        let out = run(webcpm(home)
            .args(["run", "test/pub", "--webc", webc, "--registry"])
            .arg(&registry.url));
        assert_eq!(stdout(&out), "test/pub\n", "{webc}");
    }
}

#[test]
fn publish_needs_a_token_for_the_namespace_and_stores_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    std::fs::create_dir_all(&root).unwrap();
    // Download and upload URLs name `localhost`, another origin than the GraphQL URL.
    let registry = Registry::start_public(home, &root, "localhost", &[]);
    let good = token(home, &root, "test");
    let other = token(home, &root, "other");
    let db = std::fs::read(root.join("registry.sqlite")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains(&good[5..]),
        "the registry keeps the token itself"
    );
    let dir = package_dir(
        home,
        &Pkg {
            name: "test/pub",
            version: "1.0.0",
            ..Pkg::default()
        },
    );

    assert_refused(home, &registry, &dir, &other);
    assert_published_in_both_formats(home, &registry, &dir, &good);
    // The token went to the GraphQL URL only; the upload was resumable, in order.
    let graphql = requests(&registry, "/graphql");
    assert!(
        graphql.contains(&"POST 401 auth=no".to_string()),
        "{graphql:?}"
    );
    assert!(
        graphql.contains(&"POST 403 auth=yes".to_string()),
        "{graphql:?}"
    );
    assert_eq!(
        requests(&registry, "/uploads"),
        ["POST 201 auth=no", "PUT 200 auth=no"]
    );

    // The same version again is refused, and nothing changes.
    let out = publish_dir(home, &registry, &dir, Some(&good));
    assert_eq!(out.status.code(), Some(1));
    let message = json(&out)["error"].as_str().unwrap().to_string();
    assert!(
        message.contains("test/pub@1.0.0 is already in the registry"),
        "{message}"
    );
    assert!(stderr(&out).contains("raise the version"));
    assert!(
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "uploads are removed once handled"
    );
}

#[test]
fn a_registry_may_allow_republishing_and_large_packages_go_in_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let registry = Registry::start_with(home, &root, &["--allow-republish"]);
    let good = token(home, &root, "test");
    let pkg = |text: &'static str, padding| Pkg {
        name: "test/again",
        version: "2.0.0",
        text,
        wasm: Some(pad_wasm(hello_wasm(&format!("{text}\n"), 0), padding)),
        ..Pkg::default()
    };
    let first = publish_dir(
        home,
        &registry,
        &package_dir(home, &pkg("first", 0)),
        Some(&good),
    );
    assert_eq!(first.status.code(), Some(0));
    // Over two chunks of 4 MiB: the upload is resumed twice.
    let large = package_dir(home, &pkg("second", 9 << 20));
    let second = publish_dir(home, &registry, &large, Some(&good));
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        requests(&registry, "/uploads"),
        [
            "POST 201 auth=no",
            "PUT 200 auth=no",
            "POST 201 auth=no",
            "PUT 308 auth=no",
            "PUT 308 auth=no",
            "PUT 200 auth=no"
        ]
    );
    assert_ne!(json(&first)["v3"]["sha256"], json(&second)["v3"]["sha256"]);
    let out = run(webcpm(home)
        .args(["run", "test/again", "--registry"])
        .arg(&registry.url));
    assert_eq!(stdout(&out), "second\n");
}

#[test]
fn tokens_are_for_one_valid_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--root"])
        .arg(home.join("registry"))
        .args(["--namespace", "not/one"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a namespace"));
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--root"])
        .arg(home.join("registry"))
        .args(["--namespace", "Acme"]));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with("wcpm_") && text.trim().len() == 69,
        "{text}"
    );
    assert!(stderr(&out).contains("`acme`"));
}

#[test]
fn uploads_follow_the_resumable_protocol_and_bad_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let registry = Registry::start(home, &root);
    let good = token(home, &root, "test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let gql = |query: &str| {
        let request = client
            .post(&registry.url)
            .bearer_auth(&good)
            .json(&serde_json::json!({ "query": query }));
        rt.block_on(async move {
            let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            answer
        })
    };
    let send = |request: reqwest::RequestBuilder| {
        rt.block_on(async move {
            let r = request.send().await.unwrap();
            let header = |name: &str| {
                r.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            (r.status().as_u16(), header("location"), header("range"))
        })
    };
    let answer =
        gql(r#"mutation { generateUploadUrl(input: {name: "test/raw"}) { signedUrl { url } } }"#);
    let url = answer["data"]["generateUploadUrl"]["signedUrl"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        send(client.post(&url)).0,
        400,
        "a start needs x-goog-resumable"
    );
    let (status, location, _) = send(client.post(&url).header("x-goog-resumable", "start"));
    assert_eq!((status, location.as_deref()), (201, Some(url.as_str())));
    let chunk = |range: &str, body: &'static [u8]| {
        client
            .put(&url)
            .header("content-range", range.to_string())
            .body(body)
    };
    assert_eq!(send(chunk("bytes 5-9/10", b"56789")).0, 409, "out of order");
    assert_eq!(
        send(chunk("bytes 0-4/10", b"01234")),
        (308, None, Some("bytes=0-4".to_string()))
    );
    assert_eq!(send(chunk("bytes 5-9/10", b"56789")).0, 200);
    assert_eq!(send(client.put(format!("{url}0")).body("x")).0, 404);

    let publish = |format: &str| {
        gql(&format!(
            r#"mutation {{ publishPackage(input: {{name: "test/raw", version: "1.0.0", manifest: "",
                signedUrl: "{url}", uploadFormat: {format}}}) {{ success }} }}"#
        ))
    };
    let answer = publish("targz");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a tar.gz"),
        "{answer}"
    );
    let answer = publish("webcv3");
    let error = &answer["errors"][0];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("is not a WebC file"),
        "{answer}"
    );
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    // The upload was used up.
    let answer = publish("webcv3");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not an upload URL"),
        "{answer}"
    );
}

/// A prebuilt `.webc` (as CI builds one) publishes as it is, in either format, named by its
/// manifest; a file that is not WebC, or that names no package, is refused before any upload.
#[test]
fn a_prebuilt_webc_file_is_published_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // A build elsewhere: both formats of test/ci@2.0.0.
    let build = home.join("build");
    let built = publish_new(home, &build, "test/ci", "2.0.0", &[]);
    let root = home.join("registry");
    let token = make_token(home, &root, &["--namespace", "test"], &[]);
    let registry = Registry::start(home, &root);
    let publish_file = |file: &Path, naming: &[&str]| {
        let out = run(webcpm(home)
            .args(["publish", "--json", "--registry", &registry.url])
            .arg(file)
            .args(naming)
            .env("WEBCPM_TOKEN", &token));
        eprintln!("{}", stderr(&out));
        out
    };
    for (webc, version) in [("v2", "2.0.0"), ("v3", "2.1.0")] {
        let sha = built[webc]["sha256"].as_str().unwrap();
        let file = home.join(format!("ci-{webc}.webc"));
        std::fs::copy(build.join("blobs").join(format!("{sha}.webc")), &file).unwrap();
        // The file does not say its name (recent builds leave it out): it must be given.
        let out = publish_file(&file, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("--name ns/name"), "{}", stderr(&out));
        let out = publish_file(&file, &["--name", "test/ci", "--version", version]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let published = json(&out);
        assert_eq!(published["package"], "test/ci");
        assert_eq!(published["version"], version);
        assert_eq!(published[webc]["sha256"], sha, "the file is kept as it is");
        let request = format!("test/ci@{version}");
        let out =
            run(webcpm(home).args(["run", &request, "--webc", webc, "--registry", &registry.url]));
        assert_eq!(stdout(&out), "test/ci\n");
    }
    // Again: the version exists.
    let again = home.join("ci-v3.webc");
    let out = publish_file(&again, &["--name", "test/ci", "--version", "2.1.0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Naming flags are for files: a directory names itself.
    let dir = package_dir(
        home,
        &Pkg {
            name: "test/dir",
            version: "1.0.0",
            ..Pkg::default()
        },
    );
    let out = publish_file(&dir, &["--name", "test/other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("set them in its wasmer.toml"),
        "{}",
        stderr(&out)
    );

    let uploads = requests(&registry, "/uploads").len();
    let not_webc = home.join("notes.webc");
    std::fs::write(&not_webc, b"just text").unwrap();
    let out = publish_dir(home, &registry, &not_webc, Some(&token));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not check out as a WebC file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        requests(&registry, "/uploads").len(),
        uploads,
        "nothing was uploaded"
    );
}
