//! `webcpm demo`: the whole story on a built-in local registry, with no network.
//!
//! It starts the local registry (`webcpm-registry`, a process of its own) on 127.0.0.1, publishes two example packages
//! that ship with webcpm (WASI programs written in WAT, assembled here: a greeter that reads a
//! file from its own volume and a word counter that reads stdin), and then runs the real
//! `webcpm` commands one by one, showing each command and its real output: resolve, install,
//! run, a warm run's start time, a staged rollout, an emergency rollback to v2, resume, a fleet
//! rollback published by the registry and followed by the machine, a verification of the store,
//! and, with the registry answering as the real Wasmer registry does (`--real-shapes`), a legacy
//! package under a bare name whose nodes lack sizes and share one file. Everything lives in a
//! temporary directory (or `--home`), and the user's own config file is never touched.

use crate::printer::{out, out_text};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// An example package: its name, its WAT source, and the files of its `data` volume.
type Example = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const PACKAGES: &[Example] = &[
    (
        "demo/greeter",
        include_str!("greeter.wat"),
        &[(
            "greeting.txt",
            "This line comes from greeting.txt, inside the package's own volume, mounted at /data.\n",
        )],
    ),
    ("demo/wordcount", include_str!("wordcount.wat"), &[]),
];

/// The demo store's installation id: with it, the 50% step keeps `demo/greeter` in the v3
/// cohort (bucket 16) and moves `demo/wordcount` to v2 (bucket 84), so that every run tells the
/// same story and the rollback visibly moves the greeter.
pub(crate) const INSTALLATION_ID: &str = "webcpm-demo-0";

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo: cannot build the example package {name}: {reason}")]
    Example { name: String, reason: String },
    #[error("demo: {0}")]
    Registry(String),
    #[error("demo: cannot create the store: {0}")]
    Store(String),
    #[error("demo: `{command}` failed with exit code {code:?}")]
    Step { command: String, code: Option<i32> },
}

fn example_dir(
    parent: &Path,
    name: &str,
    wat: &str,
    files: &[(&str, &str)],
) -> Result<PathBuf, DemoError> {
    let short = name.split('/').nth(1).unwrap_or(name);
    let dir = parent.join(short);
    std::fs::create_dir_all(dir.join("data"))?;
    let wasm = wat::parse_str(wat).map_err(|e| DemoError::Example {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(dir.join(format!("{short}.wasm")), wasm)?;
    for (file, text) in files {
        std::fs::write(dir.join("data").join(file), text)?;
    }
    std::fs::write(
        dir.join("wasmer.toml"),
        format!(
            r#"[package]
name = "{name}"
version = "1.0.0"
description = "An example package of the webcpm demo"

[[module]]
name = "{short}"
source = "{short}.wasm"
abi = "wasi"

[[command]]
name = "{short}"
module = "{short}"
runner = "wasi"

[fs]
"/data" = "data"
"#
        ),
    )?;
    Ok(dir)
}

/// Runs the demo. `home` keeps everything there; without it a temporary directory is used and
/// removed at the end.
pub(crate) async fn run(home: Option<PathBuf>, registry_exe: PathBuf) -> Result<(), DemoError> {
    let temp = match &home {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("webcpm-demo-").tempdir()?),
    };
    let base = home.clone().unwrap_or_else(|| {
        temp.as_ref()
            .expect("a temporary home")
            .path()
            .to_path_buf()
    });
    std::fs::create_dir_all(&base)?;
    let registry_root = base.join("registry");
    let demo = Demo {
        exe: std::env::current_exe()?,
        registry_exe,
        registry_root: registry_root.clone(),
        store: base.join("store"),
        config: base.join("config.toml"),
        registry: String::new(),
    };

    let sources = base.join("packages");
    demo.publish_examples(&sources)?;
    let server = Server::start(&demo.registry_exe, &registry_root, false)?;
    let demo = Demo {
        registry: server.url.clone(),
        ..demo
    };
    out!("  serving them at {} (loopback only)", demo.registry);

    seed_store(&demo.store)?;
    demo.story().await?;
    server.stop();

    heading(
        11,
        "As the real registry answers: a bare name, no sizes, one file behind both nodes",
    );
    let server = demo.real_shapes(&sources)?;
    let demo = Demo {
        registry: server.url.clone(),
        ..demo
    };
    demo.legacy_story().await?;
    server.stop();
    out!();
    match &home {
        Some(h) => out!("Done. Everything is kept in {}.", h.display()),
        None => out!("Done. The temporary registry and store are removed."),
    }
    drop(temp);
    Ok(())
}

/// Creates the demo's store with its fixed installation id (a store that exists keeps its own).
fn seed_store(path: &Path) -> Result<(), DemoError> {
    let store = crate::store::Store::open(path).map_err(|e| DemoError::Store(e.to_string()))?;
    store
        .index()
        .meta_init("installation_id", INSTALLATION_ID)
        .map_err(|e| DemoError::Store(e.to_string()))?;
    Ok(())
}

/// A `webcpm-registry serve` process on 127.0.0.1, stopped (SIGTERM, then waited for) by
/// [`Server::stop`] or when dropped.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(exe: &Path, root: &Path, real_shapes: bool) -> Result<Server, DemoError> {
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--root"])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if real_shapes {
            cmd.arg("--real-shapes");
        }
        let mut child = cmd.spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let mut server = Server {
            child,
            url: String::new(),
        };
        match line.trim().strip_prefix("listening on ") {
            Some(url) => server.url = url.to_string(),
            None => {
                return Err(DemoError::Registry(format!(
                    "the registry did not start: {line:?}"
                )));
            }
        }
        Ok(server)
    }

    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling a child process this struct owns and has not yet waited for.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

struct Demo {
    exe: PathBuf,
    registry_exe: PathBuf,
    registry_root: PathBuf,
    store: PathBuf,
    config: PathBuf,
    registry: String,
}

fn heading(n: u32, text: &str) {
    out!("\n== {n}. {text}");
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

impl Demo {
    /// Step 10: a legacy package, served as the real registry serves it.
    async fn legacy_story(&self) -> Result<(), DemoError> {
        // Pinned to v3 whatever its rollout cohort: the fallback to v2 is the story.
        self.step(&["rollout", "pin", "greeter", "v3"], None)
            .await?;
        self.step(&["resolve", "greeter", "--explain"], None)
            .await?;
        self.step(&["install", "greeter"], None).await?;
        self.step(&["run", "greeter", "--", "legacy"], None).await
    }

    /// Steps 2 to 10: the commands, one by one, against the running registry.
    async fn story(&self) -> Result<(), DemoError> {
        heading(2, "Resolve: one GraphQL query asks for both formats");
        self.step(&["resolve", "demo/greeter", "--explain"], None)
            .await?;

        heading(
            3,
            "Install: v3 first, verified while it streams, compiled once",
        );
        self.step(&["install", "demo/greeter", "demo/wordcount"], None)
            .await?;
        self.step(&["list"], None).await?;

        heading(4, "Run: WASI programs from the store");
        self.step(&["run", "demo/greeter", "--", "webcpm"], None)
            .await?;
        self.step(
            &["run", "demo/wordcount"],
            Some("the quick brown fox\njumps over the lazy dog\n"),
        )
        .await?;

        heading(5, "A warm run starts from native code, memory-mapped");
        let started = Instant::now();
        let (out, err) = self.capture(&["run", "demo/greeter", "-v"]).await?;
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        out_text!("{}", indent(&out));
        if let Some(line) = err
            .lines()
            .find(|l| l.contains("loaded precompiled artifact"))
        {
            out!("  {}", line.trim().trim_start_matches("INFO").trim());
        }
        out!("  the whole `webcpm run` process took {wall:.1} ms");

        heading(
            6,
            "A staged rollout: v3 for 50% of (machine, package) pairs",
        );
        self.step(&["rollout", "set", "--v3-percent", "50"], None)
            .await?;
        self.step(&["rollout", "status"], None).await?;

        heading(7, "Emergency: roll every install back to v2");
        self.step(&["rollout", "rollback"], None).await?;
        self.step(&["list"], None).await?;
        self.step(&["run", "demo/greeter"], None).await?;

        heading(
            8,
            "Resume: back to the policy before the rollback, with no download",
        );
        self.step(&["rollout", "resume", "--offline"], None).await?;
        self.step(&["list"], None).await?;

        self.fleet().await?;

        heading(10, "The store is consistent");
        self.step(&["cache", "verify"], None).await?;
        Ok(())
    }

    /// Step 9: the registry holds the rollout policy, signed; the machine pins its key and
    /// follows an operator's rollback.
    async fn fleet(&self) -> Result<(), DemoError> {
        heading(
            9,
            "A fleet: the registry signs the policy, machines follow it",
        );
        let root = self.registry_root.to_string_lossy().into_owned();
        // A demo home used before keeps its key: then the status says which it is.
        let key = match self.registry_json(&["keygen", "--root", &root]) {
            Ok(report) => report["public_key"].as_str().map(str::to_string),
            Err(_) => self.registry_json(&["rollout", "status", "--root", &root])?["public_key"]
                .as_str()
                .map(str::to_string),
        }
        .ok_or_else(|| DemoError::Registry("the registry reported no signing key".into()))?;
        out!("  the registry's signing key: {key}");
        self.step(&["config", "set", "rollout.policy_key", &key], None)
            .await?;
        let reason = "demo: v3 crash reports";
        let rollback = [
            "registry", "rollout", "rollback", "--root", &root, "--by", "demo", "--reason", reason,
        ];
        self.step(&rollback, None).await?;
        self.step(&["rollout", "sync"], None).await?;
        self.step(&["rollout", "status"], None).await?;
        let resume = [
            "registry", "rollout", "resume", "--root", &root, "--by", "demo", "--reason", "fixed",
        ];
        self.step(&resume, None).await?;
        self.step(&["rollout", "sync"], None).await?;
        Ok(())
    }

    /// Step 1: the example packages, built from their WAT sources and published as v2 and v3.
    fn publish_examples(&self, sources: &Path) -> Result<(), DemoError> {
        heading(1, "A local registry: every package in WebC v2 and v3");
        for (name, wat, files) in PACKAGES {
            let dir = example_dir(sources, name, wat, files)?;
            let report = self.add(&dir, &["--force"])?;
            let short = |format: &str| {
                let hex = report[format]["sha256"].as_str().unwrap_or_default();
                hex.get(..12).unwrap_or(hex).to_string()
            };
            out!(
                "  published {}@{}: v2 {} ({} bytes), v3 {} ({} bytes)",
                report["package"].as_str().unwrap_or_default(),
                report["version"].as_str().unwrap_or_default(),
                short("v2"),
                report["v2"]["size"],
                short("v3"),
                report["v3"]["size"],
            );
        }
        Ok(())
    }

    /// Publishes the greeter again as `_/greeter@0.1.0`, in WebC v2 only (a package from before
    /// v3), and serves the registry in the real registry's shapes.
    fn real_shapes(&self, sources: &Path) -> Result<Server, DemoError> {
        let (name, wat, files) = PACKAGES[0];
        let dir = example_dir(&sources.join("legacy"), name, wat, files)?;
        let flags = [
            "--name",
            "greeter",
            "--version",
            "0.1.0",
            "--force",
            "--webc",
            "v2",
        ];
        self.add(&dir, &flags)?;
        Server::start(&self.registry_exe, &self.registry_root, true)
    }

    /// `webcpm-registry add` of a package directory into the demo's registry.
    fn add(&self, dir: &Path, flags: &[&str]) -> Result<serde_json::Value, DemoError> {
        let root = self.registry_root.to_string_lossy().into_owned();
        let dir = dir.to_string_lossy().into_owned();
        let mut args = vec!["add", "--root", &root, &dir];
        args.extend_from_slice(flags);
        self.registry_json(&args)
    }

    /// Runs a `webcpm-registry` command with `--json` and returns what it printed.
    fn registry_json(&self, args: &[&str]) -> Result<serde_json::Value, DemoError> {
        let out = Command::new(&self.registry_exe)
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()?;
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if !out.status.success() {
            return Err(DemoError::Registry(format!(
                "`webcpm-registry {}` failed: {}",
                args.join(" "),
                value["error"].as_str().unwrap_or("no message")
            )));
        }
        Ok(value)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .env("WEBCPM_HOME", &self.store)
            .env("WEBCPM_REGISTRY", &self.registry)
            // The demo's rollout edits go to its own config file, never the user's.
            .env("WEBCPM_CONFIG", &self.config)
            .env(
                "WEBCPM_SYSTEM_CONFIG",
                self.config.with_extension("system.toml"),
            )
            .env_remove("WEBCPM_WEBC")
            .env_remove("WEBCPM_TOKEN");
        cmd
    }

    /// Shows a command and runs it: stdout shown indented, stderr (progress) passed through.
    async fn step(&self, args: &[&str], stdin: Option<&str>) -> Result<(), DemoError> {
        match stdin {
            Some(text) => out!("$ printf {:?} | webcpm {}", text, args.join(" ")),
            None => out!("$ webcpm {}", args.join(" ")),
        }
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let text = stdin.map(str::to_string);
        let command = args.join(" ");
        let output = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut child = cmd.spawn()?;
            if let (Some(text), Some(mut pipe)) = (text, child.stdin.take()) {
                pipe.write_all(text.as_bytes())?;
            }
            child.wait_with_output()
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        out_text!("{}", indent(&String::from_utf8_lossy(&output.stdout)));
        let _ = std::io::stdout().flush();
        if !output.status.success() {
            return Err(DemoError::Step {
                command,
                code: output.status.code(),
            });
        }
        Ok(())
    }

    /// Runs a command and returns its stdout and stderr.
    async fn capture(&self, args: &[&str]) -> Result<(String, String), DemoError> {
        out!("$ webcpm {}", args.join(" "));
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        let output = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        if !output.status.success() {
            return Err(DemoError::Step {
                command: args.join(" "),
                code: output.status.code(),
            });
        }
        Ok((
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::bucket;

    #[test]
    fn the_demo_id_splits_the_examples_at_half() {
        let id = super::INSTALLATION_ID;
        assert!(bucket(id, &"demo/greeter".parse().unwrap()) < 50);
        assert!(bucket(id, &"demo/wordcount".parse().unwrap()) >= 50);
    }
}
