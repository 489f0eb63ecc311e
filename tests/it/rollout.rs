//! Staged rollout and emergency rollback: layered settings, cohorts, rollback and resume of real
//! installs, and a rollback killed half-way.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

fn setup(home: &Path, names: &[&str], pad: usize) -> (std::path::PathBuf, Registry) {
    let root = home.join("registry");
    for name in names {
        publish_padded(home, &root, name, pad);
    }
    let registry = Registry::start(home, &root);
    (root, registry)
}

fn formats(home: &Path) -> Vec<(String, String)> {
    let out = run(webcpm(home).args(["list", "--json"]));
    json(&out)["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["package"].as_str().unwrap().to_string(),
                p["webc"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const NAMES: [&str; 5] = ["fleet/a", "fleet/b", "fleet/c", "fleet/d", "fleet/e"];

#[test]
fn rollback_and_resume_move_every_install_and_resume_needs_no_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (_root, mut registry) = setup(home, &NAMES, 0);
    let out = run(webcpm(home)
        .args(["install", "--registry", &registry.url])
        .args(NAMES));
    assert_eq!(out.status.code(), Some(0));
    assert!(formats(home).iter().all(|(_, w)| w == "v3"));

    let out = run(webcpm(home).args(["rollout", "rollback", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert_eq!(report["installs"].as_array().unwrap().len(), 5);
    assert!(
        formats(home).iter().all(|(_, w)| w == "v2"),
        "{:?}",
        formats(home)
    );
    for name in NAMES {
        let out = run(webcpm(home).args(["run", name]));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(stdout(&out), format!("{name}\n"));
    }
    // The policy lives in the user file, where `config show` sees it.
    let out = run(webcpm(home).args(["config", "get", "rollout.rolled_back", "--json"]));
    assert_eq!(json(&out)["value"], true);
    assert_eq!(json(&out)["layer"], "user file");

    // Resume with the registry gone: everything it needs is in the store.
    registry.stop();
    let out = run(webcpm(home).args(["rollout", "resume", "--offline"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        formats(home).iter().all(|(_, w)| w == "v3"),
        "{:?}",
        formats(home)
    );
    for name in NAMES {
        let out = run(webcpm(home).args(["run", name]));
        assert_eq!(out.status.code(), Some(0));
    }

    // The event log has the policy changes and every move.
    let out = run(webcpm(home).args(["rollout", "status", "--json"]));
    let status = json(&out);
    assert_eq!(status["rolled_back"], false);
    let events = status["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["kind"] == "policy"
            && e["detail"].as_str().unwrap().starts_with("rollout resume"))
    );
    assert!(events.iter().filter(|e| e["kind"] == "repoint").count() >= 5);
    assert_eq!(status["packages"].as_array().unwrap().len(), 5);
}

#[test]
fn a_package_without_v2_stays_on_v3_and_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_new(home, &root, "fleet/new", "1.0.0", &["--webc", "v3"]);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "fleet/new", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["rollout", "rollback"]));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("fleet/new stays on v3"), "{text}");
    assert!(text.contains("not offered as v2"), "{text}");
    assert_eq!(
        formats(home),
        vec![("fleet/new".to_string(), "v3".to_string())]
    );
}

#[test]
fn a_rollback_killed_mid_way_leaves_every_install_runnable_and_can_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Packages large enough that the v2 downloads are still in flight when the kill comes.
    let (_root, registry) = setup(home, &NAMES, 6 << 20);
    let out = run(webcpm(home)
        .args(["install", "--registry", &registry.url])
        .args(NAMES));
    assert_eq!(out.status.code(), Some(0));

    for delay_ms in [30u64, 120, 400] {
        let mut child = webcpm(home)
            .args(["rollout", "rollback", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Every install points at a complete, runnable artifact, old or new.
        for name in NAMES {
            let out = run(webcpm(home).args(["run", name, "--offline"]));
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name} after a kill at {delay_ms} ms"
            );
        }
        let out = run(webcpm(home).args(["cache", "verify", "--json"]));
        assert_eq!(out.status.code(), Some(0));
        // Start again from v3 for the next round.
        let out = run(webcpm(home).args(["rollout", "resume", "--offline", "-q"]));
        assert_eq!(out.status.code(), Some(0));
    }

    let out = run(webcpm(home).args(["rollout", "rollback"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        formats(home).iter().all(|(_, w)| w == "v2"),
        "{:?}",
        formats(home)
    );
}

#[test]
fn config_set_system_leaves_the_system_file_readable_by_all_and_the_user_file_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let system = home.join("etc/webcpm/config.toml");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let set = |args: &[&str]| {
        let out = run(webcpm(home)
            .env("WEBCPM_SYSTEM_CONFIG", &system)
            .args(["config", "set"])
            .args(args));
        assert_eq!(out.status.code(), Some(0));
    };

    // A new system file, and one that an older webcpm left private.
    set(&["--system", "rollout.v3_percent", "40"]);
    assert_eq!(mode(&system), 0o644);
    std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o600)).unwrap();
    set(&["--system", "download.retries", "5"]);
    assert_eq!(mode(&system), 0o644);
    let text = std::fs::read_to_string(&system).unwrap();
    assert!(
        text.contains("v3_percent = 40") && text.contains("retries = 5"),
        "{text}"
    );

    set(&["download.concurrency", "2"]);
    assert_eq!(mode(&home.join("xdg-config/webcpm/config.toml")), 0o600);
}

#[test]
fn config_show_names_the_layer_of_each_value() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let config = home.join("xdg-config/webcpm/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "# mine\n[download]\nconcurrency = 2\n").unwrap();
    let system = home.join("system.toml");
    std::fs::write(&system, "[rollout]\nv3_percent = 40\n").unwrap();

    let out = run(webcpm(home)
        .env("WEBCPM_SYSTEM_CONFIG", &system)
        .env("WEBCPM_HTTP_RETRIES", "9")
        .args([
            "config",
            "show",
            "--json",
            "--registry",
            "http://127.0.0.1:9/graphql",
        ]));
    assert_eq!(out.status.code(), Some(0));
    let show = json(&out);
    assert_eq!(show["download.concurrency"]["value"], 2);
    assert_eq!(show["download.concurrency"]["layer"], "user file");
    assert_eq!(show["download.retries"]["value"], 9);
    assert_eq!(show["download.retries"]["layer"], "env WEBCPM_HTTP_RETRIES");
    assert_eq!(show["registry.url"]["layer"], "flag --registry");
    assert_eq!(show["rollout.v3_percent"]["value"], 40);
    assert_eq!(show["rollout.v3_percent"]["layer"], "system file");
    assert_eq!(show["webc.fallback"]["layer"], "default");

    // `config set` keeps the file's comments; a bad value is refused and changes nothing.
    let out = run(webcpm(home).args(["config", "set", "webc.priority", "v2,v3"]));
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("# mine") && text.contains("priority = [\"v2\", \"v3\"]"),
        "{text}"
    );
    let out = run(webcpm(home).args(["config", "set", "rollout.v3_percent", "250"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rollout.v3_percent"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    // Pins and percentages from the rollout commands land in the same file.
    let out = run(webcpm(home).args(["rollout", "pin", "fleet/a", "v2"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["rollout", "set", "--v3-percent", "25"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).args(["config", "show", "--json"]));
    let show = json(&out);
    assert_eq!(show["packages.fleet/a.webc"]["value"], "v2");
    assert_eq!(show["rollout.v3_percent"]["value"], 25);
    assert_eq!(show["rollout.v3_percent"]["layer"], "user file");
}
