//! The README's tour, run as written, and the user guide's list of environment variables
//! checked against the code.

use std::process::Stdio;

use crate::common::*;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn the_tour_in_the_readme_runs_as_written() {
    let text = readme();
    let block = text
        .split("<!-- readme-test -->")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("\n```").next())
        .expect("the README has a checked block");
    let port = free_port();
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}\n",
        block.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
    );
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let work = home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_webcpm"))
        .parent()
        .unwrap();
    let mut cmd = bash(home);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .arg("-c")
    .arg(&script)
    .current_dir(&work)
    .stdin(Stdio::null());
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "the README's tour failed");
    let stdout = stdout(&out);
    assert!(stdout.contains("Hello, world!"), "{stdout}");
    assert!(stdout.contains("       1       3      14"), "{stdout}");
    assert!(stdout.contains("me/greeter@1.0.0 -> WebC v3"), "{stdout}");
    assert!(stdout.contains("checked"), "{stdout}");
}

#[test]
fn every_environment_variable_is_documented() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/user-guide.md"))
        .unwrap();
    for var in webcpm_client::settings::ENV_VARS {
        let name = var.name;
        assert!(
            text.contains(&format!("`{name}`")),
            "{name} is not in docs/user-guide.md"
        );
    }
}
