//! Credentials per registry, as cargo keeps them: a token set in a config file goes to the
//! registry URL of that file only; a credential process and `webcpm login` give a token for one
//! URL; the token never reaches another registry (the other server's access log shows no
//! `Authorization` header at all).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

struct Site {
    registry: Registry,
    token: String,
}

fn site(home: &Path, name: &str) -> Site {
    let root = home.join(name);
    let out = run(webcpm(home)
        .args(["registry", "token", "create", "--json", "--root"])
        .arg(&root)
        .args(["--namespace", "test"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = json(&out)["token"].as_str().unwrap().to_string();
    Site {
        registry: Registry::start(home, &root),
        token,
    }
}

/// `webcpm publish` of a fresh version of test/alpha, with `config` as the config file.
fn publish(home: &Path, config: &Path, version: &str, registry: Option<&str>) -> Output {
    let pkg = Pkg {
        name: "test/alpha",
        version,
        ..Pkg::default()
    };
    let dir = package_dir(home, &pkg);
    let mut cmd = webcpm(home);
    cmd.arg("--config").arg(config).arg("publish");
    if let Some(url) = registry {
        cmd.args(["--registry", url]);
    }
    run(cmd
        .arg(&dir)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"))
}

/// The auth field of the access log's GraphQL lines: `yes` or `no` for each request.
fn auth(registry: &Registry) -> Vec<String> {
    registry
        .log()
        .iter()
        .filter(|l| l.contains(" /graphql "))
        .filter_map(|l| {
            l.split(' ')
                .find(|f| f.starts_with("auth="))
                .map(str::to_string)
        })
        .collect()
}

fn config(home: &Path, text: &str) -> PathBuf {
    let path = home.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_config_token_goes_to_its_own_registry_only() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (one, two) = (site(home, "one"), site(home, "two"));
    let file = config(
        home,
        &format!(
            "[registry]\nurl = \"{}\"\ntoken = \"{}\"\n",
            one.registry.url, one.token
        ),
    );
    let out = publish(home, &file, "1.0.0", None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(auth(&one.registry).contains(&"auth=yes".to_string()));

    // --registry names another: the file's token stays home, and the publish is refused.
    let out = publish(home, &file, "1.0.0", Some(&two.registry.url));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("webcpm login"), "{}", stderr(&out));
    let sent = auth(&two.registry);
    assert!(
        !sent.is_empty() && sent.iter().all(|a| a == "auth=no"),
        "{sent:?}"
    );
}

#[test]
fn a_credential_process_gives_the_token_for_the_url_it_is_asked_about() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (one, two) = (site(home, "one"), site(home, "two"));
    let helper = home.join("helper.sh");
    let asked = home.join("asked.txt");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\necho \"$1 $WEBCPM_REGISTRY_URL\" >> {}\ncase \"$1\" in\n  {}) echo {} ;;\n  *) echo 'no token for that registry' >&2; exit 3 ;;\nesac\n",
            asked.display(),
            two.registry.url,
            two.token
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = config(
        home,
        &format!(
            "[registry]\nurl = \"{}\"\ncredential_process = \"{} {{registry}}\"\n",
            two.registry.url,
            helper.display()
        ),
    );
    let out = publish(home, &file, "1.0.0", None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(said.trim(), format!("{0} {0}", two.registry.url));

    // Asked about another registry, the process fails, and webcpm says which command failed.
    let out = publish(home, &file, "1.0.1", Some(&one.registry.url));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("credential process") && err.contains("no token for that registry"),
        "{err}"
    );
    assert!(
        auth(&one.registry).is_empty(),
        "nothing reached the other registry"
    );
}

#[test]
fn login_keeps_a_token_per_registry_and_logout_forgets_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (one, two) = (site(home, "one"), site(home, "two"));
    let file = config(
        home,
        &format!("[registry]\nurl = \"{}\"\n", one.registry.url),
    );
    let login = |url: &str, token: &str| {
        let mut cmd = webcpm(home);
        cmd.arg("--config")
            .arg(&file)
            .args(["login", "--registry", url])
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
        child.wait_with_output().unwrap()
    };
    // No keychain answers here: the token goes to credentials.toml, readable by its owner only.
    let out = login(&one.registry.url, &one.token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = login(&two.registry.url, &two.token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept = home.join("credentials.toml");
    assert!(
        stdout(&out).contains(&kept.display().to_string()),
        "{}",
        stdout(&out)
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Each registry gets its own token.
    let out = publish(home, &file, "1.0.0", None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = publish(home, &file, "1.0.0", Some(&two.registry.url));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let mut cmd = webcpm(home);
    let out = run(cmd
        .arg("--config")
        .arg(&file)
        .args(["logout", "--registry", &two.registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = publish(home, &file, "1.0.1", Some(&two.registry.url));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(
        text.contains(&one.registry.url) && !text.contains(&two.registry.url),
        "{text}"
    );
    assert!(!text.contains(&two.token));
}
