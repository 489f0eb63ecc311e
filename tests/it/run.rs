//! `webcpm run`: compiled at install, memory-mapped at run, WASI arguments, stdout, exit codes,
//! volumes, and recovery from a damaged artifact.

use std::path::{Path, PathBuf};

use crate::common::*;

fn publish_pkg(home: &Path, root: &Path, name: &str, wasm: Vec<u8>) {
    let dir = package_dir(
        home,
        &Pkg {
            name,
            version: "1.0.0",
            wasm: Some(wasm),
            ..Pkg::default()
        },
    );
    publish(home, root, &dir, &[]);
}

/// Every compiled artifact in the store.
fn artifacts(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for engine in std::fs::read_dir(home.join("store/compiled")).unwrap() {
        for f in std::fs::read_dir(engine.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out
}

#[test]
fn run_passes_arguments_and_output_and_returns_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_pkg(home, &root, "test/echo", echo_wasm());
    let mut registry = Registry::start(home, &root);

    // Not installed yet: run installs it (compiling at install), then runs.
    let out = run(webcpm(home).args([
        "run",
        "test/echo",
        "--registry",
        &registry.url,
        "--",
        "a",
        "bb",
        "ccc",
    ]));
    assert_eq!(out.status.code(), Some(3), "exit code is the program's");
    assert_eq!(stdout(&out), "a bb ccc\n");
    assert!(stderr(&out).contains("Compiling main"), "{}", stderr(&out));
    assert_eq!(artifacts(home).len(), 1, "one artifact written at install");

    // The second run loads the artifact, with the registry stopped.
    registry.stop();
    let out = run(webcpm(home).args(["run", "test/echo", "-v", "--", "x"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "x\n");
    let err = stderr(&out);
    assert!(err.contains("loaded precompiled artifact"), "{err}");
    assert!(!err.contains("Compiling"), "{err}");

    // The index records the artifact with its size.
    let db = rusqlite::Connection::open(home.join("store/index.sqlite")).unwrap();
    let (size, error): (Option<i64>, Option<String>) = db
        .query_row("SELECT size, error FROM artifacts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        size.unwrap() as u64,
        std::fs::metadata(&artifacts(home)[0]).unwrap().len()
    );
    assert!(error.is_none());

    // A command that does not exist is a clear error.
    let out = run(webcpm(home).args(["run", "test/echo", "--command", "nope"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no command named `nope`; it has: main"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_truncated_artifact_is_compiled_again_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_pkg(home, &root, "test/echo", echo_wasm());
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "test/echo", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));

    let artifact = artifacts(home).pop().unwrap();
    let good_len = std::fs::metadata(&artifact).unwrap().len();
    let bytes = std::fs::read(&artifact).unwrap();
    let mut perms = std::fs::metadata(&artifact).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&artifact, perms).unwrap();
    std::fs::write(&artifact, &bytes[..bytes.len() / 3]).unwrap();

    let out = run(webcpm(home).args(["run", "test/echo", "-v", "--", "hi"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "hi\n");
    let err = stderr(&out);
    assert_eq!(
        err.matches("compiled it again").count(),
        1,
        "said once: {err}"
    );
    assert_eq!(std::fs::metadata(&artifact).unwrap().len(), good_len);

    let out = run(webcpm(home).args(["run", "test/echo", "-v", "--", "hi"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("loaded precompiled artifact"));
    assert!(!stderr(&out).contains("compiled it again"));
}

#[test]
fn a_volume_file_is_readable_at_its_mount_path() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_pkg(home, &root, "test/cat", cat_wasm("greeting.txt"));
    let registry = Registry::start(home, &root);
    for webc in ["v3", "v2"] {
        let h = home.join(webc);
        let out = run(webcpm(&h).args([
            "run",
            "test/cat",
            "--webc",
            webc,
            "--registry",
            &registry.url,
        ]));
        assert_eq!(out.status.code(), Some(0), "{webc}");
        assert_eq!(stdout(&out), "hello from test/cat\n", "{webc}");
    }
    // The volume is unpacked once, read-only content of the store.
    let volumes: Vec<_> = std::fs::read_dir(home.join("v3/store/volumes"))
        .unwrap()
        .collect();
    assert_eq!(volumes.len(), 1);
}

#[test]
fn host_directories_environment_and_traps() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_pkg(home, &root, "test/cat", cat_wasm("note.txt"));
    let trap = wat::parse_str(
        r#"(module
  (memory (export "memory") 1)
  (func $boom unreachable)
  (func (export "_start") call $boom))"#,
    )
    .unwrap();
    publish_pkg(home, &root, "test/trap", trap);
    let wasix = wat::parse_str(
        r#"(module
  (import "wasix_32v1" "thread_spawn" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"#,
    )
    .unwrap();
    publish_pkg(home, &root, "test/wasix", wasix);
    let registry = Registry::start(home, &root);

    // --dir HOST:GUEST is preopened after the package's own volume.
    let host = home.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("note.txt"), "from the host\n").unwrap();
    let out = run(webcpm(home).args([
        "install",
        "test/cat",
        "test/trap",
        "test/wasix",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0));

    // The package's volume is fd 3, so the host file is not found there ...
    let out = run(webcpm(home)
        .args(["run", "test/cat", "--dir"])
        .arg(format!("{}:/host", host.display())));
    assert_eq!(out.status.code(), Some(44), "ENOENT in the package volume");

    // A trap names the module and the function, with its own exit code.
    let out = run(webcpm(home).args(["run", "test/trap"]));
    assert_eq!(out.status.code(), Some(134));
    let err = stderr(&out);
    assert!(
        err.contains("trap in module `test/trap:main`, function `boom`"),
        "{err}"
    );

    // An import of another type than the runtime's is a clear error, not a crash (on Wasmer:
    // `thread_spawn` takes two arguments); in a build without Wasmer, the error names the
    // feature it needs.
    let out = run(webcpm(home).args(["run", "test/wasix"]));
    if cfg!(feature = "wasix") {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("cannot start `test/wasix:main`"), "{err}");
        assert!(err.contains("thread_spawn"), "{err}");
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("cargo feature `wasix`"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_volume_with_a_link_out_of_it_is_refused_at_install() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_pkg(home, &root, "test/evil", echo_wasm());
    // Build a v3 container whose /data volume holds a link to ../../../../etc/passwd. The
    // writer refuses such a link, so it writes a harmless one of the same length and the bytes
    // are changed afterwards, as a hostile registry would.
    use webc::v3::write::{DirEntry, SymlinkEntry};
    use webc::v3::{ChecksumAlgorithm, Timestamps};
    let sha: String = rusqlite::Connection::open(root.join("registry.sqlite"))
        .unwrap()
        .query_row("SELECT v3_sha256 FROM versions", [], |r| r.get(0))
        .unwrap();
    let good = std::fs::read(root.join("blobs").join(format!("{sha}.webc"))).unwrap();
    let manifest = webcpm_client::container::open(good.clone().into())
        .unwrap()
        .manifest()
        .clone();
    let data = [(
        webc::PathSegment::parse("passwd").unwrap(),
        DirEntry::Symlink(SymlinkEntry::borrowed(
            "xx/xx/xx/xx/etc/passwd",
            Timestamps::default(),
        )),
    )]
    .into_iter()
    .collect();
    let mut evil = v3_with_data(&good, &manifest, data, ChecksumAlgorithm::Sha256);
    let at = evil
        .windows(12)
        .position(|w| w == b"xx/xx/xx/xx/")
        .expect("the link target is in the file");
    evil[at..at + 12].copy_from_slice(b"../../../../");
    replace_blob(&root, "test/evil", "1.0.0", "v3", &evil);
    let registry = Registry::start(home, &root);

    let out = run(webcpm(home).args([
        "install",
        "test/evil",
        "--webc",
        "v3",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("a link may not point outside its volume")
            || err.contains("must be relative and stay within the volume"),
        "{err}"
    );
    assert!(err.contains("/passwd"), "{err}");
    assert!(blob_files(home).is_empty());
    assert!(temp_files(home).is_empty());
    assert!(!home.join("store/volumes").read_dir().unwrap().any(|_| true));
}

#[test]
fn ctrl_c_stops_the_program_with_130_and_a_timeout_traps() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let spin = wat::parse_str(
        r#"(module
  (memory (export "memory") 1)
  (func $spin (loop $forever (br $forever)))
  (func (export "_start") call $spin))"#,
    )
    .unwrap();
    publish_pkg(home, &root, "test/spin", spin);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "test/spin", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));

    assert_eq!(exit_code_after_ctrl_c(home, "test/spin"), Some(130));

    let out = run(webcpm(home)
        .env("WEBCPM_TIMEOUT", "1")
        .args(["run", "test/spin"]));
    assert_eq!(out.status.code(), Some(134));
    assert!(
        stderr(&out).contains("ran longer than the limit of 1 s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_atom_the_engine_cannot_compile_still_installs_and_run_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    // A memory with a custom page size: a proposal this engine does not enable.
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend([1, 4, 1, 0x60, 0, 0]); // type () -> ()
    wasm.extend([3, 2, 1, 0]); // one function
    wasm.extend([5, 4, 1, 0x08, 1, 0]); // one memory: custom page size 2^0, min 1
    wasm.extend([7, 10, 1, 6]);
    wasm.extend(b"_start");
    wasm.extend([0, 0]); // export _start
    wasm.extend([10, 4, 1, 2, 0, 0x0b]); // empty body
    publish_pkg(home, &root, "test/pages", wasm);
    let registry = Registry::start(home, &root);

    let out = run(webcpm(home).args(["install", "test/pages", "--registry", &registry.url]));
    assert_installed_but_cannot_run(home, &out, "test/pages", "main", "custom page sizes");
}

/// A WASI command that sleeps for a millisecond (`poll_oneoff` on the monotonic clock: WASI
/// waits on a timer future), prints `ready` and then waits for a line on stdin.
fn waiting_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "ready\n")
  (func (export "_start")
    ;; One clock subscription at 256: tag 0 (clock) at 264, clock 1 (monotonic) at 272,
    ;; a timeout of 1 ms at 280; one event written at 512, their count at 600.
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 1000000))
    (if (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600))
      (then (call $exit (i32.const 3))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
    (i32.store (i32.const 8) (i32.const 128))
    (i32.store (i32.const 12) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 8) (i32.const 1) (i32.const 40)))
    (call $exit (i32.const 0))))"#,
    )
    .expect("valid WAT")
}

/// The open files of process `pid` that end with `suffix`, with the access mode of each
/// (`flags & O_ACCMODE` from /proc/PID/fdinfo).
fn open_files(pid: u32, suffix: &str) -> Vec<(PathBuf, i32)> {
    let mut out = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if !target.to_string_lossy().ends_with(suffix) {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| i32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap();
        out.push((target, flags & libc::O_ACCMODE));
    }
    out
}

#[test]
fn a_warm_run_reads_the_index_read_only_and_starts_no_runtime_threads() {
    use std::io::{BufRead, BufReader, Write};
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_pkg(home, &root, "test/wait", waiting_wasm());
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "test/wait", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));

    let mut child = webcpm(home)
        .args(["run", "test/wait"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "the program runs");
    let pid = child.id();

    let index = open_files(pid, "/store/index.sqlite");
    assert!(
        !index.is_empty(),
        "the store's index is open while the program runs"
    );
    for (path, mode) in &index {
        assert_eq!(
            *mode,
            libc::O_RDONLY,
            "{} is open for writing",
            path.display()
        );
    }
    // A multi-thread tokio runtime (or its blocking pool) names its threads
    // `tokio-runtime-worker`; the warm path starts none, nor does WASI's sleep (it waits on the
    // command's own single-thread runtime, not on one WASI would start).
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("tokio-runtime")),
        "threads: {names:?}"
    );

    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success());

    // The no-op install reads the same way, and asks no registry (nothing listens there).
    let out = run(webcpm(home).args([
        "install",
        "test/wait",
        "--registry",
        "http://127.0.0.1:9/graphql",
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("test/wait@1.0.0 is already installed"),
        "{}",
        stdout(&out)
    );
}
