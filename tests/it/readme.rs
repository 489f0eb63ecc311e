//! The README's tour, run as written, and the user guide's list of environment variables
//! checked against the code.

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
    // Run as the docs' examples are: a fresh home, both binaries first on PATH, a free port.
    crate::docs::run_block(
        "README.md",
        0,
        block,
        &[
            "Hello, world!",
            "       1       3      14",
            "me/greeter@1.0.0 -> WebC v3",
            "checked",
        ],
    );
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
