//! PostgreSQL and the CNCF distribution registry (`docker-registry`), each started by the test
//! that needs it, on 127.0.0.1, in a temporary directory, and stopped when dropped.
//!
//! Both come from Debian's packages (`postgresql`, `docker-registry`); `.ci/run` installs them
//! and sets `WEBCPM_REQUIRE_SERVICES=1`, which turns a service that cannot start into a failure.
//! Without it, a machine that lacks them skips those tests with one line each.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::free_port;

/// Says why a test is skipped or, under CI, fails it.
fn unavailable(what: &str, why: &str) {
    if std::env::var_os("WEBCPM_REQUIRE_SERVICES").is_some_and(|v| v != "0") {
        panic!("{what} cannot start ({why}) and WEBCPM_REQUIRE_SERVICES is set");
    }
    // Straight to the process's stderr, past the test harness's capture: the line shows in a
    // plain `cargo test`.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {what} is not available here ({why}); install Debian's package to run this test"
    );
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited: {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not listen within 30 s"))
}

/// The first of `names` found on PATH or in `dirs`.
fn find(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all: Vec<PathBuf> = std::env::split_paths(&path).collect();
    all.extend(dirs.iter().cloned());
    for dir in all {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The uid and gid of a system user, from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .flatten()
    })
}

fn kill(child: &mut Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A PostgreSQL server of its own, with trust authentication on 127.0.0.1.
pub(crate) struct Postgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub(crate) fn start() -> Option<Postgres> {
        let lib: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
            .unwrap_or_default();
        let (Some(initdb), Some(postgres)) = (find(&["initdb"], &lib), find(&["postgres"], &lib))
        else {
            unavailable("PostgreSQL", "no initdb and postgres programs");
            return None;
        };
        Self::start_with(&initdb, &postgres)
            .map_err(|why| unavailable("PostgreSQL", &why))
            .ok()
    }

    fn start_with(initdb: &Path, postgres: &Path) -> Result<Postgres, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        // PostgreSQL refuses to run as root: then it runs as the `postgres` user.
        let ids = if unsafe { libc::geteuid() } == 0 {
            let ids =
                user_ids("postgres").ok_or("running as root and there is no postgres user")?;
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .map_err(|e| e.to_string())?;
            Some(ids)
        } else {
            None
        };
        let as_user = |cmd: &mut Command| {
            if let Some((uid, gid)) = ids {
                cmd.uid(uid).gid(gid);
            }
        };
        let mut init = Command::new(initdb);
        init.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "webcpm", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_user(&mut init);
        let out = init.output().map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let port = free_port();
        let mut serve = Command::new(postgres);
        serve
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=32MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut serve);
        let mut child = serve.spawn().map_err(|e| format!("postgres: {e}"))?;
        if let Err(why) = wait_for_port(port, &mut child, "postgres") {
            kill(&mut child);
            return Err(why);
        }
        let pg = Postgres {
            child,
            port,
            _dir: dir,
        };
        // The port answers before the server accepts queries.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match postgres::Client::connect(&pg.url("postgres"), postgres::NoTls) {
                Ok(_) => return Ok(pg),
                Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The URL of database `name` on this server.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("postgres://webcpm@127.0.0.1:{}/{name}", self.port)
    }

    /// A program of PostgreSQL's (`pg_dump`, `pg_restore`).
    pub(crate) fn program(name: &str) -> PathBuf {
        let lib: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
            .unwrap_or_default();
        find(&[name], &lib).unwrap_or_else(|| panic!("no {name}"))
    }

    /// A new, empty database; returns its URL.
    pub(crate) fn database(&self, name: &str) -> String {
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("the test's PostgreSQL answers");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("a new database");
        self.url(name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A CNCF distribution registry (`docker-registry`) of its own, storing in a temporary
/// directory, without authentication.
pub(crate) struct OciRegistry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl OciRegistry {
    pub(crate) fn start() -> Option<OciRegistry> {
        let Some(program) = find(&["docker-registry"], &[]) else {
            unavailable("docker-registry", "no docker-registry program");
            return None;
        };
        Self::start_with(&program)
            .map_err(|why| unavailable("docker-registry", &why))
            .ok()
    }

    fn start_with(program: &Path) -> Result<OciRegistry, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        Self::start_in(program, dir)
    }

    /// A new registry that starts from a copy of this one's storage (as a backup restores it).
    pub(crate) fn copy(&self) -> OciRegistry {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("cp")
            .arg("-a")
            .arg(self.dir.path().join("storage"))
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let program = find(&["docker-registry"], &[]).unwrap();
        Self::start_in(&program, dir).unwrap()
    }

    fn start_in(program: &Path, dir: tempfile::TempDir) -> Result<OciRegistry, String> {
        let port = free_port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?;
        if let Err(why) = wait_for_port(port, &mut child, "docker-registry") {
            kill(&mut child);
            return Err(why);
        }
        Ok(OciRegistry { child, port, dir })
    }

    /// `oci://127.0.0.1:PORT/REPO`.
    pub(crate) fn repo(&self, repo: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo}", self.port)
    }

    /// The digests of the blobs that the manifest tagged `tag` in `repo` lists, read from the
    /// registry's storage.
    pub(crate) fn tagged_layers(&self, repo: &str, tag: &str) -> Vec<String> {
        let link = self
            .dir
            .path()
            .join("storage/docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        let link = std::fs::read_to_string(&link).unwrap();
        let hex = link.trim().strip_prefix("sha256:").unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.blob_file(hex)).unwrap()).unwrap();
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// The file that holds a blob's bytes in the registry's storage.
    pub(crate) fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
