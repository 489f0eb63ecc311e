//! The two backends: WASI preview 0 and 1 on wasmtime, WASIX on Wasmer (cargo feature `wasix`),
//! each atom sent to one by the ABI its imports say, precompiled at install and memory-mapped
//! at run; a dependency's command found at `/bin/<name>`; an atom Wasmer's singlepass compiler
//! cannot compile; and, when `../shared/real-programs` exists, real programs Wasmer builds for
//! its own tests.

use std::path::Path;

use crate::common::*;

/// Writes a package directory with one module per command, and publishes it.
fn publish_commands(
    home: &Path,
    root: &Path,
    name: &str,
    dependencies: &[(&str, &str)],
    commands: &[(&str, Vec<u8>)],
) {
    let dir = home.join(format!("{}-pkg", name.replace('/', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let mut toml = format!("[package]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n");
    if !dependencies.is_empty() {
        toml.push_str("[dependencies]\n");
        for (dep, req) in dependencies {
            toml.push_str(&format!("\"{dep}\" = \"{req}\"\n"));
        }
        toml.push('\n');
    }
    for (command, wasm) in commands {
        std::fs::write(dir.join(format!("{command}.wasm")), wasm).unwrap();
        toml.push_str(&format!(
            "[[module]]\nname = \"{command}\"\nsource = \"{command}.wasm\"\nabi = \"wasi\"\n\n\
             [[command]]\nname = \"{command}\"\nmodule = \"{command}\"\nrunner = \"wasi\"\n\n"
        ));
    }
    std::fs::write(dir.join("wasmer.toml"), toml).unwrap();
    publish(home, root, &dir, &[]);
}

/// Starts a registry on what `root` holds and installs `packages` from it; the install succeeds.
fn install_from(home: &Path, root: &Path, packages: &[&str]) -> std::process::Output {
    let registry = Registry::start(home, root);
    let out = run(webcpm(home)
        .arg("install")
        .args(packages)
        .args(["--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

/// The ABI `list --json` shows for the atom of an installed package.
fn listed_abi(home: &Path, package: &str) -> String {
    let listed = json(&run(webcpm(home).args(["list", "--json"])));
    let install = listed["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == package)
        .unwrap_or_else(|| panic!("{package} is listed: {listed}"));
    install["atoms"][0]["abi"].as_str().unwrap().to_string()
}

/// The engine directories under `compiled/`.
fn engines(home: &Path) -> usize {
    std::fs::read_dir(home.join("store/compiled"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn preview_0_and_preview_1_run_on_wasmtime_with_their_abi_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_commands(
        home,
        &root,
        "test/old",
        &[],
        &[("old", echo_wasm_for("wasi_unstable"))],
    );
    publish_commands(home, &root, "test/new", &[], &[("new", echo_wasm())]);
    install_from(home, &root, &["test/old", "test/new"]);

    for (package, abi) in [("test/old", "preview0"), ("test/new", "preview1")] {
        let out = run(webcpm(home).args(["run", package, "-v", "--", "a", "bb"]));
        assert_eq!(out.status.code(), Some(2), "exit code is the program's");
        assert_eq!(stdout(&out), "a bb\n");
        let err = stderr(&out);
        assert!(err.contains("loaded precompiled artifact"), "{err}");
        assert!(err.contains(&format!("ABI {abi}, on wasmtime")), "{err}");
        assert_eq!(listed_abi(home, package), abi);
    }
    assert_eq!(engines(home), 1, "both ran on one engine");
}

/// A WASIX command on a shared memory: `thread_id`, `getcwd` and `fd_write` from `wasix_32v1`,
/// an atomic add; it prints `wasix ok` and exits with 5 plus the errnos of the calls.
#[cfg(feature = "wasix")]
fn wasix_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasix_32v1" "thread_id" (func $thread_id (param i32) (result i32)))
  (import "wasix_32v1" "getcwd" (func $getcwd (param i32 i32) (result i32)))
  (import "wasix_32v1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
  (data (i32.const 64) "wasix ok\n")
  (func (export "_start") (local $errnos i32)
    (local.set $errnos (call $thread_id (i32.const 100)))
    (i32.store (i32.const 104) (i32.const 64))
    (local.set $errnos (i32.add (local.get $errnos)
      (call $getcwd (i32.const 128) (i32.const 104))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
    (drop (i32.atomic.rmw.add (i32.const 200) (i32.const 5)))
    (call $exit (i32.add (local.get $errnos) (i32.atomic.load (i32.const 200))))))"#,
    )
    .expect("valid WAT")
}

#[cfg(feature = "wasix")]
#[test]
fn a_wasix_module_on_shared_memory_runs_on_wasmer_from_its_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_commands(home, &root, "test/wasix", &[], &[("wasix", wasix_wasm())]);
    publish_commands(
        home,
        &root,
        "test/wecho",
        &[],
        &[("wecho", echo_wasm_for("wasix_32v1"))],
    );
    let spin = wat::parse_str(
        r#"(module (import "wasix_32v1" "proc_exit" (func (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (loop $l (br $l))))"#,
    )
    .unwrap();
    publish_commands(home, &root, "test/wspin", &[], &[("wspin", spin)]);
    // Exits with 7 when growing its memory by 100 pages (6.4 MB) fails.
    let grow = wat::parse_str(
        r#"(module (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               (call $exit (select (i32.const 7) (i32.const 0)
                 (i32.eq (memory.grow (i32.const 100)) (i32.const -1))))))"#,
    )
    .unwrap();
    publish_commands(home, &root, "test/wgrow", &[], &[("wgrow", grow)]);
    let out = install_from(
        home,
        &root,
        &["test/wasix", "test/wecho", "test/wspin", "test/wgrow"],
    );
    assert!(stderr(&out).contains("Compiling wasix"), "{}", stderr(&out));
    assert_eq!(listed_abi(home, "test/wasix"), "wasix32");

    // Warm: the artifact is mapped, nothing compiles.
    let out = run(webcpm(home).args(["run", "test/wasix", "-v"]));
    assert_eq!(stdout(&out), "wasix ok\n");
    assert_eq!(out.status.code(), Some(5), "exit code is the program's");
    let err = stderr(&out);
    assert!(err.contains("loaded precompiled artifact"), "{err}");
    assert!(err.contains("ABI wasix32, on wasmer (WASIX)"), "{err}");
    assert!(!err.contains("Compiling"), "{err}");
    assert_eq!(engines(home), 1, "only the WASIX engine has artifacts");

    // Arguments reach the program as on wasmtime.
    let out = run(webcpm(home).args(["run", "test/wecho", "--", "a", "bb"]));
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("a bb\n", Some(2))
    );

    // run.max_memory holds on Wasmer too.
    let out = run(webcpm(home).args(["run", "test/wgrow"]));
    assert_eq!(out.status.code(), Some(0), "no limit: the memory grows");
    let out = run(webcpm(home)
        .env("WEBCPM_MAX_MEMORY", "1048576")
        .args(["run", "test/wgrow"]));
    assert_eq!(
        out.status.code(),
        Some(7),
        "past run.max_memory, memory.grow fails"
    );

    // run.timeout stops a WASIX program too.
    let out = run(webcpm(home)
        .env("WEBCPM_TIMEOUT", "1")
        .args(["run", "test/wspin"]));
    assert_eq!(out.status.code(), Some(134));
    assert!(
        stderr(&out).contains("ran longer than the limit of 1 s"),
        "{}",
        stderr(&out)
    );

    // Ctrl-C ends a WASIX program with 130, as on wasmtime.
    assert_eq!(exit_code_after_ctrl_c(home, "test/wspin"), Some(130));
}

/// A WASIX command that replaces itself (`proc_exec`) with `/bin/hello`, passing it an argument.
#[cfg(feature = "wasix")]
fn exec_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasix_32v1" "proc_exec" (func $exec (param i32 i32 i32 i32)))
  (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "/bin/hello")
  (data (i32.const 96) "hello\nfrom-shell")
  (func (export "_start")
    (call $exec (i32.const 64) (i32.const 10) (i32.const 96) (i32.const 16))
    (call $exit (i32.const 99))))"#,
    )
    .expect("valid WAT")
}

#[cfg(feature = "wasix")]
#[test]
fn a_dependency_command_is_found_at_bin() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_commands(home, &root, "test/tools", &[], &[("hello", echo_wasm())]);
    publish_commands(
        home,
        &root,
        "test/shell",
        &[("test/tools", "^1")],
        &[("shell", exec_wasm())],
    );
    install_from(home, &root, &["test/shell"]);

    // The shell (WASIX) execs the tools' `hello` (WASI preview 1) from /bin.
    let out = run(webcpm(home).args(["run", "test/shell"]));
    assert_eq!(stdout(&out), "from-shell\n");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the exit code of the program it became"
    );
}

#[cfg(feature = "wasix")]
#[test]
fn a_module_singlepass_cannot_compile_installs_and_run_names_the_proposal() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let throws = wat::parse_str(
        r#"(module
  (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (tag $oops)
  (func (export "_start")
    (block $caught (try_table (catch_all $caught) (throw $oops)))
    (call $exit (i32.const 0))))"#,
    )
    .unwrap();
    publish_commands(home, &root, "test/throws", &[], &[("throws", throws)]);
    let out = install_from(home, &root, &["test/throws"]);
    let reason = "exception handling proposal";
    assert_installed_but_cannot_run(home, &out, "test/throws", "throws", reason);
}

#[cfg(not(feature = "wasix"))]
#[test]
fn without_the_wasix_feature_a_wasix_module_names_the_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let wasm = hello_wasm_for("wasix_32v1", "hi\n", 0);
    publish_commands(home, &root, "test/wasix", &[], &[("wasix", wasm)]);
    install_from(home, &root, &["test/wasix"]);
    let out = run(webcpm(home).args(["run", "test/wasix"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cargo feature `wasix`"),
        "{}",
        stderr(&out)
    );
}

/// Real programs that Wasmer builds for its own tests, run as the folder's README says they
/// behave under Wasmer.
#[cfg(feature = "wasix")]
mod real_programs {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Output, Stdio};

    use super::{install_from, publish_commands};
    use crate::common::*;

    /// Runs an installed package's command with `stdin`.
    fn run_with_stdin(home: &Path, package: &str, stdin: &str) -> Output {
        let mut child = webcpm(home)
            .args(["run", package])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        eprintln!(
            "$ run {package}\n--- exit {:?}\n{}{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// The real programs' folder, when this checkout sits beside it.
    fn real_programs() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real-programs");
        dir.is_dir().then_some(dir)
    }

    #[test]
    fn real_wasi_and_wasix_programs_behave_as_under_wasmer() {
        let Some(dir) = real_programs() else {
            println!("skipped: ../shared/real-programs does not exist");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        let root = home.join("registry");
        // (file, stdin, exit code, lines stdout must hold)
        let cases: &[(&str, &str, i32, &[&str])] = &[
            ("stdin-hello", "Hello, stdin!\n", 0, &[]),
            ("catsay", "meow", 0, &["< meow >"]),
            ("exit-1-from-main", "", 1, &[]),
            (
                "example-fork",
                "",
                0,
                &["Parent has x = 0", "Child(2) exited with 3"],
            ),
            (
                "example-vfork",
                "",
                0,
                &["Parent waiting on Child(2)", "Child(2) exited with 10"],
            ),
            (
                "example-thread-local",
                "",
                0,
                &["VAR1 in main before change: First"],
            ),
            (
                "example-multi-threading",
                "",
                0,
                &["waiting for threads", "finished"],
            ),
            ("example-sleep", "", 0, &["before", "done"]),
            ("example-signal", "", 0, &["received SIGHUP"]),
            (
                "example-longjmp",
                "",
                0,
                &["(A1)", "(A2) r=10001", "(A4) r=10003"],
            ),
        ];
        for (file, _, _, _) in cases {
            let wasm = std::fs::read(dir.join(format!("{file}.wasm"))).unwrap();
            publish_commands(home, &root, &format!("real/{file}"), &[], &[(file, wasm)]);
        }
        let names: Vec<String> = cases.iter().map(|c| format!("real/{}", c.0)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        install_from(home, &root, &names);
        for (file, stdin, code, lines) in cases {
            let out = run_with_stdin(home, &format!("real/{file}"), stdin);
            assert_eq!(out.status.code(), Some(*code), "{file}: {}", stderr(&out));
            let printed = stdout(&out);
            for line in *lines {
                assert!(printed.contains(line), "{file} prints `{line}`: {printed}");
            }
        }
    }
}

#[cfg(feature = "wasix")]
/// A `wasm32-wasip1-threads` command, as Rust and wasi-sdk build them: preview 1 imports,
/// `wasi`.`thread-spawn`, a shared `env.memory`, and `wasi_thread_start`. The thread does
/// `thread` (WAT, with `$say` to print `(ptr, len)`), then sets a flag the main thread waits on;
/// the main thread then prints `main done` and exits 0.
fn threads_wasm(thread: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (data (i32.const 256) "from a thread\n")
  (data (i32.const 300) "main done\n")
  (func $say (param $ptr i32) (param $len i32) (param $iov i32)
    (i32.store (local.get $iov) (local.get $ptr))
    (i32.store (i32.add (local.get $iov) (i32.const 4)) (local.get $len))
    (drop (call $fd_write (i32.const 1) (local.get $iov) (i32.const 1) (i32.add (local.get $iov) (i32.const 8)))))
  (func $boom unreachable)
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    {thread}
    (i32.atomic.store (i32.const 0) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "_start")
    (if (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)) (then (call $exit (i32.const 3))))
    (block $b (loop $l
      (br_if $b (i32.atomic.load (i32.const 0)))
      (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 100000000)))
      (br $l)))
    (call $say (i32.const 300) (i32.const 10) (i32.const 32))
    (call $exit (i32.const 0))))"#
    ))
    .unwrap()
}

#[cfg(feature = "wasix")]
#[test]
fn a_wasi_threads_module_runs_on_wasmer() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let says = "(call $say (i32.const 256) (i32.const 14) (i32.const 16))";
    publish_commands(
        home,
        &root,
        "test/threads",
        &[],
        &[
            ("hello", threads_wasm(says)),
            ("quit", threads_wasm("(call $exit (i32.const 7))")),
            ("boom", threads_wasm("(call $boom)")),
        ],
    );
    install_from(home, &root, &["test/threads"]);
    assert_eq!(listed_abi(home, "test/threads"), "wasi-threads");

    let out = run(webcpm(home).args(["run", "-v", "test/threads", "--command", "hello"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "from a thread\nmain done\n");
    assert!(stderr(&out).contains("ABI wasi-threads, on wasmer (WASIX)"));

    // `proc_exit` in a thread ends the whole program with its code.
    let out = run(webcpm(home).args(["run", "test/threads", "--command", "quit"]));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "");

    // A trap in a thread ends the program as Wasmer ends it (its exit code, 129, and its
    // report naming the function), never with `main done`.
    let out = run(webcpm(home).args(["run", "test/threads", "--command", "boom"]));
    assert_eq!(out.status.code(), Some(129));
    assert!(!stdout(&out).contains("main done"));
    let err = stderr(&out);
    assert!(err.contains("failed with runtime error"), "{err}");
    assert!(err.contains("at boom"), "{err}");
}

/// A command that copies its stdin to its stdout (one read of up to 4 KiB), importing from
/// `namespace`.
fn cat_stdin_wasm(namespace: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "{namespace}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{namespace}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    ))
    .unwrap()
}

/// A WASIX command that prints its working directory (`getcwd`).
fn pwd_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasix_32v1" "getcwd" (func $getcwd (param i32 i32) (result i32)))
  (import "wasix_32v1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\n")
  (func (export "_start")
    (i32.store (i32.const 8) (i32.const 256))
    (drop (call $getcwd (i32.const 1024) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))"#,
    )
    .unwrap()
}

#[test]
fn the_flags_of_wasmer_run_have_their_counterparts() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let mut commands = vec![
        ("hello", hello_wasm("hello\n", 0)),
        ("bye", hello_wasm("bye\n", 0)),
        ("cat", cat_stdin_wasm("wasi_snapshot_preview1")),
    ];
    if cfg!(feature = "wasix") {
        commands.push(("pwd", pwd_wasm()));
    }
    publish_commands(home, &root, "test/flags", &[], &commands);
    install_from(home, &root, &["test/flags"]);

    // The command, however wasmer spells it.
    for flag in ["--command", "--entrypoint", "--command-name", "-e"] {
        let out = run(webcpm(home).args(["run", "test/flags", flag, "bye"]));
        assert_eq!(stdout(&out), "bye\n", "{flag}");
    }

    // --stdin FILE.
    let input = home.join("input.txt");
    std::fs::write(&input, "from a file\n").unwrap();
    let out = run(webcpm(home)
        .args(["run", "test/flags", "--command", "cat", "--stdin"])
        .arg(&input));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "from a file\n");

    // --cwd: where a WASIX program starts; a WASI preview 1 program has none, and says so.
    if cfg!(feature = "wasix") {
        let out = run(webcpm(home).args(["run", "test/flags", "-e", "pwd", "--cwd", "/tmp"]));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(stdout(&out), "/tmp\n");
    }
    let out = run(webcpm(home).args(["run", "test/flags", "-e", "hello", "--cwd", "/tmp"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no working directory"),
        "{}",
        stderr(&out)
    );

    // A flag of wasmer's that webcpm does not have is answered, not "unexpected".
    let out = run(webcpm(home).args(["run", "test/flags", "--include-webc", "x.webc"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("`wasmer run --include-webc` has no counterpart"),
        "{err}"
    );
    assert!(err.contains("webcpm run ./pkg.webc"), "{err}");
}

#[cfg(feature = "wasix")]
#[test]
fn commands_a_program_starts_map_their_artifacts_and_use_adds_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let hello = echo_wasm_for("wasix_32v1");
    publish_commands(home, &root, "test/wtools", &[], &[("hello", hello)]);
    publish_commands(
        home,
        &root,
        "test/wshell",
        &[("test/wtools", "^1")],
        &[("wshell", exec_wasm())],
    );
    publish_commands(home, &root, "test/lone", &[], &[("lone", exec_wasm())]);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args([
        "install",
        "test/wshell",
        "test/lone",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(out.status.code(), Some(0));

    // The dependency's WASIX command was compiled at install; the exec maps it.
    let out = run(webcpm(home).args(["run", "-v", "test/wshell"]));
    assert_eq!(stdout(&out), "from-shell\n");
    let err = stderr(&out);
    assert!(
        err.contains("`hello` started from its precompiled artifact"),
        "{err}"
    );
    assert!(!err.contains("Wasmer compiles it"), "{err}");

    // Without the tools, `/bin/hello` is not there; `--use` adds them (installing them first
    // when they are not), as `wasmer run --use` does.
    let out = run(webcpm(home).args(["run", "test/lone"]));
    assert_ne!(stdout(&out), "from-shell\n");
    let fresh = home.join("fresh");
    let out = run(webcpm(&fresh).args([
        "run",
        "-v",
        "test/lone",
        "--use",
        "test/wtools",
        "--registry",
        &registry.url,
    ]));
    assert_eq!(stdout(&out), "from-shell\n");
    let err = stderr(&out);
    assert!(err.contains("Installed test/wtools@1.0.0"), "{err}");
    assert!(
        err.contains("`hello` started from its precompiled artifact"),
        "{err}"
    );
    let listed = json(&run(webcpm(&fresh).args(["list", "--json"])));
    assert_eq!(listed["packages"].as_array().unwrap().len(), 2, "{listed}");
}

/// A command that polls stdin (`poll_oneoff`: an `fd_read` of fd 0 and a clock of zero) and
/// prints `ready` when stdin is ready at once, `not ready` when only the clock fired.
fn poll_stdin_wasm(namespace: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "{namespace}" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "{namespace}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "ready\n")
  (data (i32.const 528) "not ready\n")
  (func $say (param $ptr i32) (param $len i32)
    (i32.store (i32.const 300) (local.get $ptr))
    (i32.store (i32.const 304) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 308))))
  (func (export "_start") (local $i i32) (local $ready i32)
    ;; subscription 0: fd_read of fd 0, userdata 1
    (i64.store (i32.const 0) (i64.const 1))
    (i32.store8 (i32.const 8) (i32.const 1))
    (i32.store (i32.const 16) (i32.const 0))
    ;; subscription 1: the monotonic clock, relative, timeout 0, userdata 2
    (i64.store (i32.const 48) (i64.const 2))
    (i32.store8 (i32.const 56) (i32.const 0))
    (i32.store (i32.const 64) (i32.const 1))
    (i64.store (i32.const 72) (i64.const 0))
    (i64.store (i32.const 80) (i64.const 0))
    (i32.store16 (i32.const 88) (i32.const 0))
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 2) (i32.const 200)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 200))))
      (if (i64.eq (i64.load (i32.add (i32.const 128) (i32.mul (local.get $i) (i32.const 32))))
                  (i64.const 1))
        (then (local.set $ready (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (if (local.get $ready)
      (then (call $say (i32.const 512) (i32.const 6)))
      (else (call $say (i32.const 528) (i32.const 10))))))"#
    ))
    .unwrap()
}

#[test]
fn a_filled_stdin_pipe_is_ready_at_once_on_both_engines() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let mut engines = vec![("wasi", "wasi_snapshot_preview1")];
    if cfg!(feature = "wasix") {
        engines.push(("wasix", "wasix_32v1"));
    }
    for (engine, namespace) in engines {
        let module = home.join(format!("poll-{engine}.wasm"));
        std::fs::write(&module, poll_stdin_wasm(namespace)).unwrap();
        // Compiled once, so that every run below is a warm one.
        run(webcpm(home).arg("run").arg(&module));
        for attempt in 0..5 {
            let mut child = webcpm(home)
                .arg("run")
                .arg(&module)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"data\n").unwrap();
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            assert_eq!(stdout(&out), "ready\n", "{engine}, attempt {attempt}");
        }
    }
}

/// A WASIX command that prints `hi` and then calls a function through a table with the wrong
/// type, as the old `sharrattj/bash` 1.0.16 does on its way out of `main`.
#[cfg(feature = "wasix")]
fn mismatch_at_exit_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasix_32v1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (type $void (func))
  (type $takes_one (func (param i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $handler)
  (data (i32.const 64) "hi\n")
  (func $handler)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (call_indirect (type $takes_one) (i32.const 7) (i32.const 0))))"#,
    )
    .unwrap()
}

/// Run through Wasmer's own `WasiRunner::run_command` (as `wasmer run` runs a package), the real
/// `sharrattj/bash` 1.0.16 prints its output, then traps with `indirect call type mismatch` and
/// exits 45 (WASI's `noexec`); webcpm ends such a program the same way, and says so once.
#[cfg(feature = "wasix")]
#[test]
fn a_trap_on_the_way_out_ends_a_wasix_program_as_wasmer_ends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let module = home.join("mismatch.wasm");
    std::fs::write(&module, mismatch_at_exit_wasm()).unwrap();
    let out = run(webcpm(home).arg("run").arg(&module));
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(out.status.code(), Some(45));
    let err = stderr(&out);
    assert_eq!(
        err.matches("indirect call type mismatch").count(),
        1,
        "{err}"
    );
}
