//! `webcpm run` of what is not installed: a `.wasm` module, a package directory, a `.webc` file
//! and a URL, each checked, compiled once into the store and run in the usual sandbox.

use crate::common::*;

#[test]
fn each_local_form_runs_and_its_compiled_code_is_kept_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();

    // A module: wrapped in a one-command package.
    std::fs::write(
        home.join("hello.wasm"),
        hello_wasm("hello from a module\n", 3),
    )
    .unwrap();
    let out = run(webcpm(home).current_dir(home).args(["run", "./hello.wasm"]));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "hello from a module\n");
    assert!(stderr(&out).contains("Compiled"), "{}", stderr(&out));
    let again = run(webcpm(home)
        .current_dir(home)
        .args(["run", "-v", "./hello.wasm"]));
    assert_eq!(stdout(&again), "hello from a module\n");
    assert!(
        stderr(&again).contains("loaded precompiled artifact"),
        "{}",
        stderr(&again)
    );
    // Nothing is recorded as an install.
    let list = json(&run(webcpm(home).args(["list", "--json"])));
    assert!(list["packages"].as_array().unwrap().is_empty());

    // A package directory, with its volume mounted as for an install.
    let dir = package_dir(
        home,
        &Pkg {
            name: "me/dirpkg",
            version: "1.0.0",
            wasm: Some(cat_wasm("greeting.txt")),
            ..Pkg::default()
        },
    );
    let out = run(webcpm(home).arg("run").arg(&dir));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "hello from me/dirpkg\n");

    // A .webc file, and the same file by URL, with and without the hash that vouches for it.
    let root = home.join("registry");
    let report = publish_new(home, &root, "me/webcpkg", "1.0.0", &[]);
    let sha = report["v3"]["sha256"].as_str().unwrap().to_string();
    let file = home.join("pkg.webc");
    std::fs::copy(root.join(format!("blobs/{sha}.webc")), &file).unwrap();
    let out = run(webcpm(home).arg("run").arg(&file));
    assert_eq!(stdout(&out), "me/webcpkg\n");

    let registry = Registry::start(home, &root);
    let base = registry.url.trim_end_matches("/graphql");
    let url = format!("{base}/blobs/{sha}.webc");
    let out = run(webcpm(home).args(["run", &url, "--sha256", &sha]));
    assert_eq!(stdout(&out), "me/webcpkg\n");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let out = run(webcpm(home).args(["run", &url]));
    assert_eq!(stdout(&out), "me/webcpkg\n");
    assert!(stderr(&out).contains("no --sha256"), "{}", stderr(&out));
    let out = run(webcpm(home).args(["run", &url, "--sha256", &"0".repeat(64)]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SHA-256 mismatch"),
        "{}",
        stderr(&out)
    );

    // What is not a container is refused, naming the file.
    std::fs::write(home.join("junk.webc"), b"not a container").unwrap();
    let out = run(webcpm(home).current_dir(home).args(["run", "./junk.webc"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("./junk.webc"), "{}", stderr(&out));
}

#[test]
fn a_legacy_wapm_toml_and_every_spelling_of_the_wasi_runner_run() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    for (i, runner) in ["wasi@unstable_", "wasi", "https://webc.org/runner/wasi"]
        .into_iter()
        .enumerate()
    {
        // A package directory as wapm wrote them: `wapm.toml`, no `wasmer.toml`.
        let dir = home.join(format!("legacy-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.wasm"), hello_wasm("legacy\n", 0)).unwrap();
        std::fs::write(
            dir.join("wapm.toml"),
            format!(
                "[package]\nname = \"test/legacy{i}\"\nversion = \"1.0.0\"\ndescription = \"old\"\n\n\
                 [[module]]\nname = \"main\"\nsource = \"main.wasm\"\nabi = \"wasi\"\n\n\
                 [[command]]\nname = \"main\"\nmodule = \"main\"\nrunner = \"{runner}\"\n"
            ),
        )
        .unwrap();
        let out = run(webcpm(home).arg("run").arg(&dir));
        assert_eq!(out.status.code(), Some(0), "{runner}");
        assert_eq!(stdout(&out), "legacy\n", "{runner}");
        publish(home, &root, &dir, &[]);
    }
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["run", "test/legacy0", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "legacy\n");

    // A directory with neither file says which it looked for.
    let empty = home.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(webcpm(home).arg("run").arg(&empty));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no wasmer.toml (nor wapm.toml)"),
        "{}",
        stderr(&out)
    );
}

/// `webcpm run ARGS` with every plain-http request sent to the proxy at `proxy` (on loopback):
/// a connection to it is a request that was attempted.
fn run_through(home: &std::path::Path, proxy: &str, args: &[&str]) -> std::process::Output {
    run(webcpm(home)
        .env("HTTP_PROXY", proxy)
        .env("http_proxy", proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("WEBCPM_HTTP_TIMEOUT", "30")
        .arg("run")
        .args(args))
}

#[test]
fn run_refuses_plain_http_to_another_host_before_connecting() {
    use std::io::{BufRead, Write};
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());

    // 192.0.2.1 is TEST-NET: nothing answers there, and nothing is sent there.
    let started = std::time::Instant::now();
    let out = run_through(home, &proxy_url, &["http://192.0.2.1/x.webc"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("http://192.0.2.1/x.webc")
            && err.contains("--allow-insecure-http")
            && err.contains("WEBCPM_ALLOW_INSECURE_HTTP"),
        "{err}"
    );
    proxy.set_nonblocking(true).unwrap();
    let attempted = proxy.accept();
    assert!(
        matches!(&attempted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection was attempted: {attempted:?}"
    );
    // Refused at once, not after the 30 s that a connection may take.
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");

    // Allowed, the same request goes out (to the proxy, which answers it): the refusal above
    // was the check's, not the network's.
    proxy.set_nonblocking(false).unwrap();
    let answering = std::thread::spawn(move || {
        let (stream, _) = proxy.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        reader
            .get_mut()
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
        first
    });
    let out = run_through(
        home,
        &proxy_url,
        &["--allow-insecure-http", "http://192.0.2.1/x.webc"],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("HTTP 502"), "{}", stderr(&out));
    let request = answering.join().unwrap();
    assert!(
        request.starts_with("GET http://192.0.2.1/x.webc "),
        "{request}"
    );
}
