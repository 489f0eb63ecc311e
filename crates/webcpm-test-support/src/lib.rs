//! Shared test machinery: the webcpm binary as a real process, a real local registry process on
//! 127.0.0.1, and packages built from WAT in temporary directories. Tests use it; nothing that
//! ships does.

// A test shows each command it ran and its output on stderr, which the harness keeps for a
// failing test.
#![allow(clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The directory of the binaries under test: where cargo put them, beside the `deps/` of this
/// test's own executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().expect("a directory");
    match dir.file_name() {
        Some(name) if name == "deps" => {
            dir.parent().expect("the profile's directory").to_path_buf()
        }
        _ => dir.to_path_buf(),
    }
}

/// The `webcpm` binary under test.
pub fn webcpm_exe() -> PathBuf {
    bin_dir().join("webcpm")
}

/// A command for the webcpm binary, isolated from the user's environment and config.
pub fn webcpm(home: &Path) -> Command {
    let mut cmd = Command::new(webcpm_exe());
    for (k, _) in std::env::vars() {
        if k.starts_with("WEBCPM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("WEBCPM_HOME", home.join("store"))
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "webcpm=info")
        .stdin(Stdio::null());
    cmd
}

/// `bash` with the same environment as [`webcpm`], for tests that need a shell around it.
pub fn bash(home: &Path) -> Command {
    let base = webcpm(home);
    let mut cmd = Command::new("bash");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs and returns the output; prints it for debugging failed tests.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("webcpm runs");
    eprintln!(
        "$ {:?}\n--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
        cmd,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// A WASI command that prints `text` and exits with `code`.
pub fn hello_wasm(text: &str, code: i32) -> Vec<u8> {
    hello_wasm_for("wasi_snapshot_preview1", text, code)
}

/// The same, importing `fd_write` and `proc_exit` from `namespace` (`wasi_unstable` for WASI
/// preview 0, `wasix_32v1` for WASIX).
pub fn hello_wasm_for(namespace: &str, text: &str, code: i32) -> Vec<u8> {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    let len = text.len();
    wat::parse_str(format!(
        r#"(module
  (import "{namespace}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{namespace}" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
    (call $exit (i32.const {code}))))"#
    ))
    .expect("valid WAT")
}

/// Options for a test package.
#[derive(Default)]
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub dependencies: &'a [(&'a str, &'a str)],
    pub files: &'a [(&'a str, &'a str)],
    pub text: &'a str,
    /// The module, instead of one that prints `text`.
    pub wasm: Option<Vec<u8>>,
}

/// Writes a package directory: wasmer.toml, one WASI module, a command and a `data` volume.
pub fn package_dir(parent: &Path, pkg: &Pkg) -> PathBuf {
    let dir = parent.join(format!("{}-{}", pkg.name.replace('/', "-"), pkg.version));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let text = if pkg.text.is_empty() {
        pkg.name
    } else {
        pkg.text
    };
    let wasm = pkg
        .wasm
        .clone()
        .unwrap_or_else(|| hello_wasm(&format!("{text}\n"), 0));
    std::fs::write(dir.join("main.wasm"), wasm).unwrap();
    std::fs::write(
        dir.join("data/greeting.txt"),
        format!("hello from {}\n", pkg.name),
    )
    .unwrap();
    for (path, content) in pkg.files {
        let p = dir.join("data").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let mut toml = format!(
        "[package]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"a test package\"\n\n",
        pkg.name, pkg.version
    );
    if !pkg.dependencies.is_empty() {
        toml.push_str("[dependencies]\n");
        for (name, req) in pkg.dependencies {
            toml.push_str(&format!("\"{name}\" = \"{req}\"\n"));
        }
        toml.push('\n');
    }
    toml.push_str(
        "[[module]]\nname = \"main\"\nsource = \"main.wasm\"\nabi = \"wasi\"\n\n\
         [[command]]\nname = \"main\"\nmodule = \"main\"\nrunner = \"wasi\"\n\n\
         [fs]\n\"/data\" = \"data\"\n",
    );
    std::fs::write(dir.join("wasmer.toml"), toml).unwrap();
    dir
}

/// Publishes a directory or file into the registry at `root`; returns the `--json` report.
pub fn publish(home: &Path, root: &Path, path: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run(webcpm(home)
        .args(["registry", "add", "--json", "--root"])
        .arg(root)
        .arg(path)
        .args(extra));
    assert_eq!(out.status.code(), Some(0), "registry add failed");
    json(&out)
}

/// Writes the default package `name@version` (a module that prints its name, a `data` volume)
/// and publishes it into the registry at `root`; returns the `--json` report.
pub fn publish_new(
    home: &Path,
    root: &Path,
    name: &str,
    version: &str,
    extra: &[&str],
) -> serde_json::Value {
    let pkg = Pkg {
        name,
        version,
        ..Pkg::default()
    };
    publish(home, root, &package_dir(home, &pkg), extra)
}

/// Publishes the default package `name@1.0.0` with `dependencies` (name, requirement) into the
/// registry at `root`; returns the `--json` report.
pub fn publish_with_deps(
    home: &Path,
    root: &Path,
    name: &str,
    dependencies: &[(&str, &str)],
) -> serde_json::Value {
    let pkg = Pkg {
        name,
        version: "1.0.0",
        dependencies,
        ..Pkg::default()
    };
    publish(home, root, &package_dir(home, &pkg), &[])
}

/// A token made as an operator makes one: `registry token create KIND --root ROOT PLACE`, where
/// `kind` is `["--namespace", NS]` or `["--reports", "--name", NAME]` and `place` names where
/// the registry keeps its state (`--database-file F`, ...), if not in the root.
pub fn make_token(home: &Path, root: &Path, kind: &[&str], place: &[&str]) -> String {
    let out = run(webcpm(home)
        .args(["registry", "token", "create"])
        .args(kind)
        .arg("--root")
        .arg(root)
        .args(place));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A registry root with `test/hello@1.0.0`; returns it with the `registry add --json` report.
pub fn hello_registry(home: &Path) -> (PathBuf, serde_json::Value) {
    let root = home.join("registry");
    let report = publish_new(home, &root, "test/hello", "1.0.0", &[]);
    (root, report)
}

/// A `webcpm registry serve` process on 127.0.0.1; killed on drop.
pub struct Registry {
    child: Child,
    pub url: String,
    pub access_log: PathBuf,
}

impl Registry {
    pub fn start(home: &Path, root: &Path) -> Registry {
        Self::start_with(home, root, &[])
    }

    pub fn start_with(home: &Path, root: &Path, extra: &[&str]) -> Registry {
        std::fs::create_dir_all(root).unwrap();
        let access_log = home.join(format!(
            "access-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut serve = webcpm(home);
        serve
            .args(["registry", "serve", "--listen", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(extra);
        let (child, url) = Self::spawn(serve, &access_log);
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Registry {
            child,
            url,
            access_log,
        }
    }

    /// Starts `registry serve` with an access log; returns the process and the URL of its
    /// first line, `listening on URL`.
    fn spawn(mut serve: Command, access_log: &Path) -> (Child, String) {
        let mut child = serve
            .arg("--access-log")
            .arg(access_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("registry starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        (child, url)
    }

    /// Lines of the access log.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the server to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Files in the store's tmp/.
pub fn temp_files(home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(home.join("store/tmp"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Every blob file in the store.
pub fn blob_files(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(shards) = std::fs::read_dir(home.join("store/blobs/sha256")) {
        for shard in shards {
            for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                out.push(f.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// A WASI command that prints its arguments separated by spaces, then a newline, and exits with
/// the number of arguments.
pub fn echo_wasm() -> Vec<u8> {
    echo_wasm_for("wasi_snapshot_preview1")
}

/// The same, importing from `namespace` (`wasi_unstable`: WASI preview 0).
pub fn echo_wasm_for(namespace: &str) -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 900) " \n")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 8) (local.get $ptr))
    (i32.store (i32.const 12) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))))
  (func (export "_start") (local $i i32) (local $p i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 32) (i32.const 1024)))
    (local.set $i (i32.const 1))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
      (if (i32.gt_u (local.get $i) (i32.const 1)) (then (call $write (i32.const 900) (i32.const 1))))
      (local.set $p (i32.load (i32.add (i32.const 32) (i32.mul (local.get $i) (i32.const 4)))))
      (call $write (local.get $p) (call $strlen (local.get $p)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $write (i32.const 901) (i32.const 1))
    (call $exit (i32.sub (i32.load (i32.const 0)) (i32.const 1)))))"#
            .replace("wasi_snapshot_preview1", namespace),
    )
    .expect("valid WAT")
}

/// A WASI command that prints the file `path` of its first preopened directory (fd 3), or exits
/// with the WASI errno when it cannot open it.
pub fn cat_wasm(path: &str) -> Vec<u8> {
    let escaped: String = path.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "{escaped}")
  (func (export "_start") (local $err i32) (local $fd i32)
    (local.set $err (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const {len})
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
    (if (local.get $err) (then (call $exit (local.get $err))))
    (local.set $fd (i32.load (i32.const 0)))
    (i32.store (i32.const 8) (i32.const 1024))
    (i32.store (i32.const 12) (i32.const 4096))
    (drop (call $fd_read (local.get $fd) (i32.const 8) (i32.const 1) (i32.const 16)))
    (i32.store (i32.const 12) (i32.load (i32.const 16)))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 20)))
    (call $exit (i32.const 0))))"#,
        len = path.len()
    ))
    .expect("valid WAT")
}

/// Replaces what the registry offers for one format of a version with `bytes`: the file and the
/// advertised hash and size. The registry then lies or serves hostile content, as a test needs.
pub fn replace_blob(root: &Path, name: &str, version: &str, webc: &str, bytes: &[u8]) {
    let sha = webcpm_client::package::Sha256Digest::of(bytes).hex();
    std::fs::write(root.join("blobs").join(format!("{sha}.webc")), bytes).unwrap();
    rusqlite::Connection::open(root.join("registry.sqlite"))
        .unwrap()
        .execute(
            &format!(
                "UPDATE versions SET {webc}_sha256 = ?1, {webc}_size = ?2 WHERE package = ?3 AND version = ?4"
            ),
            rusqlite::params![sha, bytes.len() as i64, name, version],
        )
        .unwrap();
}

/// Appends a custom section of `extra` bytes to a module: a large package that still compiles
/// in an instant.
pub fn pad_wasm(mut wasm: Vec<u8>, extra: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    let mut payload = Vec::with_capacity(extra + 16);
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    // Not all zeros, so that nothing on the way can compress it away.
    payload.extend((0..extra).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    wasm.push(0);
    leb(payload.len(), &mut wasm);
    wasm.extend_from_slice(&payload);
    wasm
}

/// A free TCP port on 127.0.0.1 (free when asked; a test binds it right after). It is taken
/// from below the kernel's ephemeral range (32768 and up on Linux), where no `bind` to port 0
/// and no outgoing connection of a test running beside this one can take it in between.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (start.wrapping_add(n) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Writes a `--faults` file under `home`; returns its path.
pub fn fault_file(home: &Path, name: &str, toml: &str) -> PathBuf {
    std::fs::create_dir_all(home).unwrap();
    let path = home.join(format!("faults-{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

impl Registry {
    /// A registry on 127.0.0.1:PORT that hands out download URLs on `http://{public_host}:PORT`
    /// (`--public-url`), so that blobs live on another origin than `url` (which stays
    /// `http://127.0.0.1:PORT/graphql`) while reaching the same process.
    pub fn start_public(home: &Path, root: &Path, public_host: &str, extra: &[&str]) -> Registry {
        let port = free_port();
        let public_url = format!("http://{public_host}:{port}");
        let mut registry = Self::start_behind(home, root, port, &public_url, extra);
        registry.url = format!("http://127.0.0.1:{port}/graphql");
        registry
    }

    /// A registry on 127.0.0.1:`port` that names itself `public_url` (`--public-url`), for a
    /// test that puts something in front of it (a TLS terminator, a proxy); `url` is
    /// `{public_url}/graphql`.
    pub fn start_behind(
        home: &Path,
        root: &Path,
        port: u16,
        public_url: &str,
        extra: &[&str],
    ) -> Registry {
        std::fs::create_dir_all(home).unwrap();
        std::fs::create_dir_all(root).unwrap();
        let access_log = home.join(format!("access-behind-{port}.log"));
        let mut serve = webcpm(home);
        serve
            .args(["registry", "serve", "--root"])
            .arg(root)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--public-url", public_url])
            .args(extra);
        let (child, url) = Self::spawn(serve, &access_log);
        Registry {
            child,
            url,
            access_log,
        }
    }

    /// The access log lines of downloads of the blob `sha256`.
    pub fn blob_log(&self, sha256: &str) -> Vec<String> {
        let path = format!(" /blobs/{sha256}.webc ");
        self.log()
            .into_iter()
            .filter(|l| l.contains(&path))
            .collect()
    }
}

/// Publishes `name@1.0.0`, a WASI command that prints its name, padded with a custom section of
/// `pad` bytes (large, yet compiled in an instant).
pub fn publish_padded(home: &Path, root: &Path, name: &str, pad: usize) {
    publish_padded_with(home, root, name, pad, &[]);
}

/// The same, with more arguments for `registry add`.
pub fn publish_padded_with(home: &Path, root: &Path, name: &str, pad: usize, extra: &[&str]) {
    let dir = package_dir(
        home,
        &Pkg {
            name,
            version: "1.0.0",
            wasm: Some(pad_wasm(hello_wasm(&format!("{name}\n"), 0), pad)),
            ..Pkg::default()
        },
    );
    publish(home, root, &dir, extra);
}

/// A v3 container with the atoms of `good` (a valid WebC file), `manifest`, and a `/data`
/// volume holding `data`: a package a test then alters or serves as a hostile registry would.
pub fn v3_with_data(
    good: &[u8],
    manifest: &webc::metadata::Manifest,
    data: std::collections::BTreeMap<webc::PathSegment, webc::v3::write::DirEntry<'static>>,
    checksums: webc::v3::ChecksumAlgorithm,
) -> Vec<u8> {
    use webc::v3::write::{Directory, FileEntry, Writer};
    use webc::v3::{SignatureAlgorithm, Timestamps};
    let checked = webcpm_client::container::open(good.to_vec().into()).unwrap();
    let atoms: std::collections::BTreeMap<_, _> = checked
        .container
        .atoms()
        .into_iter()
        .map(|(n, b)| {
            (
                webc::PathSegment::parse(&n).unwrap(),
                FileEntry::owned(b.into_bytes(), Timestamps::default()),
            )
        })
        .collect();
    let mut writer = Writer::new(checksums)
        .write_manifest(manifest)
        .unwrap()
        .write_atoms(atoms)
        .unwrap();
    writer
        .write_volume("/data", Directory::new(data, Timestamps::default()))
        .unwrap();
    writer.finish(SignatureAlgorithm::None).unwrap().to_vec()
}

/// Checks an install of a package whose command's atom the engine cannot compile: the install
/// succeeded and said so, and `run` fails naming the command and `reason`.
pub fn assert_installed_but_cannot_run(
    home: &Path,
    install: &Output,
    package: &str,
    command: &str,
    reason: &str,
) {
    assert_eq!(install.status.code(), Some(0), "the package installs");
    let said = stderr(install);
    assert!(
        said.contains(&format!("Cannot compile {command}")),
        "{said}"
    );
    let out = run(webcpm(home).args(["run", package]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let cannot = format!("command `{command}` cannot run on this engine");
    assert!(err.contains(&cannot), "{err}");
    assert!(err.contains(reason), "{err}");
}

/// Runs `webcpm run PACKAGE`, sends it SIGINT (Ctrl-C) after 700 ms, and returns its exit code.
pub fn exit_code_after_ctrl_c(home: &Path, package: &str) -> Option<i32> {
    let child = webcpm(home)
        .args(["run", package])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: sending SIGINT to a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    child.wait_with_output().unwrap().status.code()
}
