//! `webcpm demo` and the README: what a newcomer runs first must work.

use crate::common::*;

#[test]
fn the_demo_tells_the_whole_story_and_leaves_nothing_running() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let demo_home = home.join("demo");
    let out = run(webcpm(home).args(["demo", "--home"]).arg(&demo_home));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for expected in [
        "every package in WebC v2 and v3",
        "-> WebC v3",
        "v2  not_tried",
        "Installed demo/greeter@1.0.0 as WebC v3",
        "Hello, webcpm!",
        "2       9      44",
        "loaded precompiled artifact",
        "v3 rollout 50%",
        "rollout rollback",
        "rollout resume",
        "corrupt 0, missing 0",
        "_/greeter@0.1.0 -> WebC v3",
        "the v2 and v3 nodes name the same file",
        "the registry left out piritaSize, webcVersion, webcManifest",
        "_/greeter@0.1.0 as WebC v2",
    ] {
        assert!(
            text.contains(expected),
            "the demo shows `{expected}`:\n{text}"
        );
    }
    // The same story every time: the 50% step moves the word counter to v2 and keeps the
    // greeter on v3; the rollback then moves the greeter.
    let half = text
        .split("== 6.")
        .nth(1)
        .unwrap()
        .split("== 7.")
        .next()
        .unwrap();
    assert!(
        half.contains("1 of 2 installed packages re-pointed"),
        "{half}"
    );
    assert!(half.contains("demo/wordcount v3 -> v2"), "{half}");
    let rollback = text
        .split("== 7.")
        .nth(1)
        .unwrap()
        .split("== 8.")
        .next()
        .unwrap();
    assert!(rollback.contains("demo/greeter v3 -> v2"), "{rollback}");
    // After the rollback every install was on v2.
    let after_rollback = text.split("== 8.").next().unwrap();
    let list = after_rollback.split("$ webcpm list").last().unwrap();
    assert!(!list.contains(" v3 "), "{list}");
    // The demo's config stayed in its home, not in the user's config directory.
    assert!(demo_home.join("config.toml").exists());
    assert!(!home.join("xdg-config/webcpm/config.toml").exists());
    // Nothing is left listening: the registry it printed refuses connections.
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("serving them at "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/graphql");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "{addr} still accepts connections"
    );
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definition() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(webcpm(tmp.path()).args(["completions", shell]));
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(
            text.contains("rollout") && text.contains("install"),
            "{shell}"
        );
    }
    let out = run(webcpm(tmp.path()).arg("man"));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(".TH webcpm"));
}
