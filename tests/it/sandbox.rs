//! What a package can touch: hostile packages written with webc's own writers are refused at
//! every way into the store; a program cannot change its package's files on either engine, has
//! no network without `--net`, writes only where the user gave it a directory; grants last; and
//! an update that asks for more says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use webc::PathSegment;
use webc::v3::write::{DirEntry, FileEntry, SymlinkEntry};
use webc::v3::{ChecksumAlgorithm, Timestamps};

use crate::common::*;

type Data = BTreeMap<PathSegment, DirEntry<'static>>;

fn seg(name: &str) -> PathSegment {
    PathSegment::parse(name).unwrap()
}

fn greeting() -> Data {
    [(
        seg("greeting.txt"),
        DirEntry::File(FileEntry::owned(b"hello\n".to_vec(), Timestamps::default())),
    )]
    .into_iter()
    .collect()
}

fn link(target: &'static str) -> DirEntry<'static> {
    DirEntry::Symlink(SymlinkEntry::borrowed(target, Timestamps::default()))
}

/// A package `name` whose module is `wasm`, built to WebC v3 as `registry add` builds it.
fn good_package(home: &Path, name: &str, wasm: Vec<u8>) -> Vec<u8> {
    let dir = package_dir(
        home,
        &Pkg {
            name,
            version: "1.0.0",
            wasm: Some(wasm),
            ..Pkg::default()
        },
    );
    webcpm_client::package_dir::build(&dir)
        .unwrap()
        .bytes
        .to_vec()
}

/// `good` with its manifest changed by `change` (as JSON) and `/data` holding `data`.
fn altered(good: &[u8], change: impl FnOnce(&mut serde_json::Value), data: Data) -> Vec<u8> {
    let manifest = webcpm_client::container::open(good.to_vec().into())
        .unwrap()
        .manifest()
        .clone();
    let mut value = serde_json::to_value(&manifest).unwrap();
    change(&mut value);
    let manifest = serde_json::from_value(value).unwrap();
    v3_with_data(good, &manifest, data, ChecksumAlgorithm::Sha256)
}

fn fs(mappings: serde_json::Value) -> impl FnOnce(&mut serde_json::Value) {
    move |m| m["package"]["fs"] = mappings
}

/// `good` with its manifest changed by `change`, written with webc's WebC v2 writer, its `/data`
/// volume holding `greeting.txt`.
fn altered_v2(good: &[u8], change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    use webc::v2::write::{DirEntry, Directory, FileEntry, Writer};
    use webc::v2::{ChecksumAlgorithm, SignatureAlgorithm};
    let checked = webcpm_client::container::open(good.to_vec().into()).unwrap();
    let mut value = serde_json::to_value(checked.manifest()).unwrap();
    change(&mut value);
    let manifest: webc::metadata::Manifest = serde_json::from_value(value).unwrap();
    let atoms = checked
        .container
        .atoms()
        .into_iter()
        .map(|(n, b)| (seg(&n), FileEntry::Owned(b.into_bytes())))
        .collect();
    let file = DirEntry::File(FileEntry::Owned(bytes::Bytes::from_static(b"hello\n")));
    let data = Directory {
        children: [(seg("greeting.txt"), file)].into_iter().collect(),
    };
    let mut writer = Writer::new(ChecksumAlgorithm::Sha256)
        .write_manifest(&manifest)
        .unwrap()
        .write_atoms(atoms)
        .unwrap();
    writer.write_volume("/data", data).unwrap();
    writer.finish(SignatureAlgorithm::None).unwrap().to_vec()
}

/// Hostile WebC v2 variants of `good`: every path field of the manifest.
fn hostile_v2(good: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use serde_json::json;
    let mapping = |volume: &str, host: &str, mount: &str| json!([{"volume_name": volume, "host_path": host, "mount_path": mount}]);
    vec![
        (
            "v2: host_path walks out",
            altered_v2(good, fs(mapping("/data", "/../../../etc", "/x"))),
            "package.fs[0].host_path `/../../../etc`",
        ),
        (
            "v2: mount_path walks out",
            altered_v2(good, fs(mapping("/data", "/", "/x/../../.."))),
            "package.fs[0].mount_path `/x/../../..`",
        ),
        (
            "v2: volume_name walks out",
            altered_v2(good, fs(mapping("/../..", "/", "/x"))),
            "package.fs[0].volume_name `/../..`",
        ),
        (
            "v2: mount-atom-in-volume walks out",
            altered_v2(good, |m| {
                m["commands"]["main"]["annotations"]["wasi"]["mount-atom-in-volume"] =
                    json!("../../bin")
            }),
            "commands.main.annotations.wasi.mount-atom-in-volume `../../bin`",
        ),
    ]
}

/// Hostile variants of `good`, each with the text its refusal must hold.
fn hostile(good: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use serde_json::json;
    let mapping = |volume: &str, host: &str, mount: &str| json!([{"volume_name": volume, "host_path": host, "mount_path": mount}]);
    vec![
        (
            "host_path walks out",
            altered(
                good,
                fs(mapping("/data", "../../../../tmp", "/x")),
                greeting(),
            ),
            "package.fs[0].host_path `../../../../tmp`",
        ),
        (
            "absolute host_path",
            altered(good, fs(mapping("/data", "/etc", "/x")), greeting()),
            "package.fs[0].host_path `/etc`",
        ),
        (
            "mount_path walks out",
            altered(good, fs(mapping("/data", "/", "/../../etc")), greeting()),
            "package.fs[0].mount_path `/../../etc`",
        ),
        (
            "relative mount_path",
            altered(good, fs(mapping("/data", "/", "data")), greeting()),
            "package.fs[0].mount_path `data`",
        ),
        (
            "volume_name walks out",
            altered(good, fs(mapping("../../x", "/", "/x")), greeting()),
            "package.fs[0].volume_name `../../x`",
        ),
        (
            "cwd walks out",
            altered(
                good,
                |m| m["commands"]["main"]["annotations"]["wasi"]["cwd"] = json!("../../.."),
                greeting(),
            ),
            "commands.main.annotations.wasi.cwd `../../..`",
        ),
        (
            "a chain of links",
            altered(
                good,
                |_| {},
                [
                    (seg("a"), link(".")),
                    (seg("l1"), link("a/..")),
                    (seg("l2"), link("l1/..")),
                ]
                .into_iter()
                .collect(),
            ),
            "a link may not point outside its volume",
        ),
        (
            "`..` after a link",
            altered(
                good,
                |_| {},
                [
                    (
                        seg("d"),
                        DirEntry::Dir(webc::v3::write::Directory::new(
                            [(seg("x"), link(".."))].into_iter().collect(),
                            Timestamps::default(),
                        )),
                    ),
                    (seg("up"), link("d/x/..")),
                ]
                .into_iter()
                .collect(),
            ),
            "`/up`",
        ),
        (
            "a loop of links",
            altered(
                good,
                |_| {},
                [(seg("a"), link("b")), (seg("b"), link("a"))]
                    .into_iter()
                    .collect(),
            ),
            "loop",
        ),
        ("an absolute link", absolute_link(good), "/passwd"),
        (
            "entries sharing one large range",
            overlapping(good),
            "would unpack to more than",
        ),
    ]
}

/// A `/data/passwd -> /etc/passwd` link. The writer refuses it, so a harmless one of the same
/// length is written and its bytes changed, as a hostile registry would.
fn absolute_link(good: &[u8]) -> Vec<u8> {
    let data = [(seg("passwd"), link("x/etc/passwd"))]
        .into_iter()
        .collect();
    let mut bytes = altered(good, |_| {}, data);
    let at = bytes
        .windows(12)
        .position(|w| w == b"x/etc/passwd")
        .unwrap();
    bytes[at..at + 12].copy_from_slice(b"//etc/passwd");
    bytes
}

/// 600 entries whose byte ranges are then pointed at one 1 MiB file: a 1 MB container that
/// would unpack to 600 MiB. A file's entry in the volume's header is its range (two u64) and
/// then its SHA-256.
fn overlapping(good: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let big = vec![b'B'; 1 << 20];
    let mut data: Data = (0..600)
        .map(|i| {
            let text = format!("f{i:04}").into_bytes();
            let entry = DirEntry::File(FileEntry::owned(text, Timestamps::default()));
            (seg(&format!("f{i:04}")), entry)
        })
        .collect();
    let entry = DirEntry::File(FileEntry::owned(big.clone(), Timestamps::default()));
    data.insert(seg("big"), entry);
    let mut bytes = altered(good, |_| {}, data);
    // Where a file's range is: the 16 bytes before its SHA-256 that span its length.
    let range_of = |bytes: &[u8], content: &[u8]| {
        let digest = sha2::Sha256::digest(content);
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        (16..bytes.len() - 32)
            .find(|&at| {
                bytes[at..at + 32] == digest[..]
                    && u64_at(at - 8).checked_sub(u64_at(at - 16)) == Some(content.len() as u64)
            })
            .map(|at| at - 16)
            .expect("the file's entry is in the header")
    };
    let big_range = range_of(&bytes, &big);
    let range: Vec<u8> = bytes[big_range..big_range + 16].to_vec();
    for i in 0..600 {
        let at = range_of(&bytes, format!("f{i:04}").as_bytes());
        bytes[at..at + 16].copy_from_slice(&range);
    }
    bytes
}

/// The engines' modules: one for wasmtime (WASI preview 1), one for Wasmer (WASIX).
fn engines() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("wasi", hello_wasm("hi\n", 0))];
    if cfg!(feature = "wasix") {
        out.push(("wasix", hello_wasm_for("wasix_32v1", "hi\n", 0)));
    }
    out
}

#[test]
fn hostile_packages_are_refused_at_every_way_into_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let mut cases = Vec::new();
    for (engine, wasm) in engines() {
        let good = good_package(home, &format!("test/good-{engine}"), wasm);
        let variants = hostile(&good).into_iter().chain(hostile_v2(&good));
        for (i, (what, bytes, says)) in variants.enumerate() {
            let name = format!("test/evil-{engine}-{i}");
            let file = home.join(format!("evil-{engine}-{i}.webc"));
            std::fs::write(&file, &bytes).unwrap();
            // Into the registry: `registry add` refuses it ...
            let out = run(webcpm(home)
                .args(["registry", "add", "--root"])
                .arg(&root)
                .arg(&file)
                .args(["--name", &name, "--version", "1.0.0"]));
            assert_ne!(out.status.code(), Some(0), "{engine}, {what}");
            assert!(stderr(&out).contains(says), "{engine}, {what}");
            // ... so a good package goes in, and the registry is made to serve the hostile bytes.
            publish_new(home, &root, &name, "1.0.0", &[]);
            let webc = webcpm_client::container::detect(&bytes)
                .unwrap()
                .to_string();
            replace_blob(&root, &name, "1.0.0", &webc, &bytes);
            cases.push((engine, what, name, file, says, webc));
        }
    }
    let registry = Registry::start(home, &root);
    for (engine, what, name, file, says, webc) in &cases {
        let out = run(webcpm(home).arg("run").arg(file));
        assert_eq!(out.status.code(), Some(1), "run ./file: {engine}, {what}");
        assert!(stderr(&out).contains(says), "run ./file: {engine}, {what}");
        let out =
            run(webcpm(home).args(["install", name, "--webc", webc, "--registry", &registry.url]));
        assert_eq!(out.status.code(), Some(1), "install: {engine}, {what}");
        assert!(stderr(&out).contains(says), "install: {engine}, {what}");
    }
    // Nothing of any of them entered the store.
    assert!(blob_files(home).is_empty());
    assert!(temp_files(home).is_empty());
    let volumes = home.join("store/volumes");
    assert!(!volumes.exists() || volumes.read_dir().unwrap().next().is_none());
}

/// A command that opens `path` under its first preopened directory (fd 3) with `oflags` to
/// write, and writes `pwned`; exits 0 when that worked, 100 + errno when opening failed.
fn writer_wasm(namespace: &str, path: &str, oflags: u32) -> Vec<u8> {
    let escaped: String = path.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
  (import "{namespace}" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "{namespace}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{namespace}" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "{escaped}")
  (data (i32.const 256) "pwned\n")
  (func (export "_start") (local $err i32)
    (local.set $err (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const {len})
      (i32.const {oflags}) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 0)))
    (if (local.get $err) (then (call $exit (i32.add (i32.const 100) (local.get $err)))))
    (i32.store (i32.const 8) (i32.const 256))
    (i32.store (i32.const 12) (i32.const 6))
    (local.set $err (call $fd_write (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 16)))
    (if (local.get $err) (then (call $exit (i32.add (i32.const 150) (local.get $err)))))
    (call $exit (i32.const 0))))"#,
        len = path.len()
    ))
    .unwrap()
}

/// Where a program finds a directory mounted at `/{dir}` from fd 3: wasmtime preopens each
/// mount (the first is fd 3), Wasmer preopens `/` as fd 3.
fn under_fd3(engine: &str, dir: &str, file: &str) -> String {
    match engine {
        "wasix" => format!("{dir}/{file}"),
        _ => file.to_string(),
    }
}

fn namespace(engine: &str) -> &'static str {
    match engine {
        "wasix" => "wasix_32v1",
        _ => "wasi_snapshot_preview1",
    }
}

/// The unpacked `greeting.txt` of the store's only package.
fn stored_greeting(home: &Path) -> PathBuf {
    let volumes: Vec<_> = std::fs::read_dir(home.join("store/volumes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(volumes.len(), 1);
    let found: Vec<_> = std::fs::read_dir(&volumes[0])
        .unwrap()
        .map(|e| e.unwrap().path().join("greeting.txt"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(found.len(), 1);
    found[0].clone()
}

#[test]
fn a_program_cannot_change_its_package_on_either_engine_and_verify_repairs_tampering() {
    for (engine, _) in engines() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        let root = home.join("registry");
        let ns = namespace(engine);
        let rewrite = writer_wasm(ns, &under_fd3(engine, "data", "greeting.txt"), 0);
        let create = writer_wasm(ns, &under_fd3(engine, "data", "new.txt"), 1);
        for (name, wasm) in [("test/rewrite", rewrite), ("test/create", create)] {
            let dir = package_dir(
                home,
                &Pkg {
                    name,
                    version: "1.0.0",
                    wasm: Some(wasm),
                    ..Pkg::default()
                },
            );
            publish(home, &root, &dir, &[]);
        }
        let registry = Registry::start(home, &root);
        let before = {
            let out = run(webcpm(home).args([
                "install",
                "test/rewrite",
                "--webc",
                "v3",
                "--registry",
                &registry.url,
            ]));
            assert_eq!(out.status.code(), Some(0), "{engine}");
            std::fs::read(stored_greeting(home)).unwrap()
        };
        let greeting = stored_greeting(home);
        let out = run(webcpm(home).args(["run", "test/rewrite"]));
        assert!(out.status.code().unwrap() > 100, "{engine}: the open fails");
        assert_eq!(std::fs::read(&greeting).unwrap(), before, "{engine}");

        // The package's files are read-only on disk too.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&greeting).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o444, "{engine}");

        let verify = run(webcpm(home).args(["cache", "verify"]));
        assert_eq!(verify.status.code(), Some(0), "{engine}");

        // Tampered with by hand: verify finds it, and --repair unpacks the package again.
        std::fs::set_permissions(
            &greeting,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(&greeting, "pwned\n").unwrap();
        let verify = run(webcpm(home).args(["cache", "verify"]));
        assert_eq!(verify.status.code(), Some(1), "{engine}");
        assert!(stdout(&verify).contains("tampered"), "{engine}");
        let repair = run(webcpm(home).args(["cache", "verify", "--repair"]));
        assert_eq!(repair.status.code(), Some(0), "{engine}");
        assert_eq!(std::fs::read(stored_greeting(home)).unwrap(), before);
        let verify = run(webcpm(home).args(["cache", "verify"]));
        assert_eq!(verify.status.code(), Some(0), "{engine}");

        // Only writable, as an older webcpm left its files: no damage; --repair makes them
        // read-only again.
        let greeting = stored_greeting(home);
        std::fs::set_permissions(
            &greeting,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let verify = run(webcpm(home).args(["cache", "verify"]));
        assert_eq!(verify.status.code(), Some(0), "{engine}");
        assert!(
            stdout(&verify).contains("writable: 1 unpacked entries"),
            "{engine}"
        );
        let verify = run(webcpm(home).args(["cache", "verify", "--repair"]));
        assert_eq!(verify.status.code(), Some(0), "{engine}");
        assert!(stdout(&verify).contains("read-only again"), "{engine}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&greeting).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o444, "{engine}");

        // Creating a file beside the package's fails too.
        let out = run(webcpm(home).args(["run", "test/create", "--registry", &registry.url]));
        assert!(
            out.status.code().unwrap() > 100,
            "{engine}: the create fails"
        );
        let created = std::fs::read_dir(home.join("store/volumes"))
            .unwrap()
            .flat_map(|v| std::fs::read_dir(v.unwrap().path()).unwrap())
            .any(|v| v.unwrap().path().join("new.txt").exists());
        assert!(!created, "{engine}");
    }
}

#[test]
fn a_program_writes_only_into_a_directory_the_user_gave_it() {
    for (engine, _) in engines() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        let module = home.join("writer.wasm");
        let path = under_fd3(engine, "out", "x.txt");
        std::fs::write(&module, writer_wasm(namespace(engine), &path, 1)).unwrap();
        let host = home.join("host-out");
        std::fs::create_dir(&host).unwrap();

        // Nothing given: there is nothing to write into.
        let out = run(webcpm(home).arg("run").arg(&module));
        assert!(out.status.code().unwrap() > 100, "{engine}");

        // `--volume HOST:GUEST` and `--mapdir GUEST:HOST`, as `wasmer run` spells them.
        let out = run(webcpm(home)
            .arg("run")
            .arg(&module)
            .arg("--volume")
            .arg(format!("{}:/out", host.display())));
        assert_eq!(out.status.code(), Some(0), "{engine}");
        assert_eq!(
            std::fs::read_to_string(host.join("x.txt")).unwrap(),
            "pwned\n"
        );
        std::fs::remove_file(host.join("x.txt")).unwrap();
        let out = run(webcpm(home)
            .arg("run")
            .arg(&module)
            .arg("--mapdir")
            .arg(format!("/out:{}", host.display())));
        assert_eq!(out.status.code(), Some(0), "{engine}");
        assert!(host.join("x.txt").exists(), "{engine}");
        std::fs::remove_file(host.join("x.txt")).unwrap();

        // A grant lasts: the next runs get the directory without a flag, until it is revoked.
        let out = run(webcpm(home)
            .args(["grant", "local/writer", "--volume"])
            .arg(format!("{}:/out", host.display())));
        assert_eq!(out.status.code(), Some(0), "{engine}");
        let out = run(webcpm(home).args(["grant", "--list", "--json"]));
        let grants = json(&out)["grants"].clone();
        assert_eq!(grants[0]["package"], "local/writer", "{grants}");
        assert_eq!(grants[0]["grant"]["capability"], "dir", "{grants}");
        let out = run(webcpm(home).arg("run").arg(&module));
        assert_eq!(out.status.code(), Some(0), "{engine}");
        assert!(host.join("x.txt").exists(), "{engine}");
        let out = run(webcpm(home).args(["grant", "local/writer", "--revoke"]));
        assert_eq!(out.status.code(), Some(0), "{engine}");
        std::fs::remove_file(host.join("x.txt")).unwrap();
        let out = run(webcpm(home).arg("run").arg(&module));
        assert!(out.status.code().unwrap() > 100, "{engine}");
        assert!(!host.join("x.txt").exists(), "{engine}");

        // A host directory that does not exist is a usage error, not a surprise.
        let out = run(webcpm(home)
            .arg("run")
            .arg(&module)
            .args(["--volume", "/no/such/dir:/out"]));
        assert_eq!(out.status.code(), Some(2), "{engine}");
        assert!(stderr(&out).contains("/no/such/dir"), "{engine}");
    }
}

#[cfg(feature = "wasix")]
/// The address 127.0.0.1:`port` as WASIX's `__wasi_addr_port_t` at offset 32.
fn store_addr(port: u16) -> String {
    format!(
        "(i32.store8 (i32.const 32) (i32.const 1)) (i32.store8 (i32.const 33) (i32.const 0))
         (i32.store16 (i32.const 34) (i32.const {port}))
         (i32.store (i32.const 36) (i32.const 0x0100007f))"
    )
}

#[cfg(feature = "wasix")]
/// A WASIX command that connects to 127.0.0.1:`port` and prints `connected`; exits 10 when it
/// cannot open a socket, 11 when it cannot connect.
fn connect_wasm(port: u16) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasix_32v1" "sock_open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "sock_connect" (func $connect (param i32 i32) (result i32)))
  (import "wasix_32v1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "connected\n")
  (func (export "_start")
    (if (call $open (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 10))))
    {addr}
    (if (call $connect (i32.load (i32.const 0)) (i32.const 32)) (then (call $exit (i32.const 11))))
    (i32.store (i32.const 8) (i32.const 256))
    (i32.store (i32.const 12) (i32.const 10))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))
    (call $exit (i32.const 0))))"#,
        addr = store_addr(port)
    ))
    .unwrap()
}

#[cfg(feature = "wasix")]
/// A WASIX command that listens on 127.0.0.1:`port`, prints `listening`, and waits for its
/// stdin to close; exits 10, 12 or 13 when it cannot open, bind or listen.
fn listen_wasm(port: u16) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasix_32v1" "sock_open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "sock_bind" (func $bind (param i32 i32) (result i32)))
  (import "wasix_32v1" "sock_listen" (func $listen (param i32 i32) (result i32)))
  (import "wasix_32v1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "listening\n")
  (func (export "_start")
    (if (call $open (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 10))))
    {addr}
    (if (call $bind (i32.load (i32.const 0)) (i32.const 32)) (then (call $exit (i32.const 12))))
    (if (call $listen (i32.load (i32.const 0)) (i32.const 8)) (then (call $exit (i32.const 13))))
    (i32.store (i32.const 8) (i32.const 256))
    (i32.store (i32.const 12) (i32.const 10))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))
    (i32.store (i32.const 64) (i32.const 1024))
    (i32.store (i32.const 68) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80)))
    (call $exit (i32.const 0))))"#,
        addr = store_addr(port)
    ))
    .unwrap()
}

#[cfg(feature = "wasix")]
/// Whether `listener` gets a connection within `seconds`.
fn accepted(listener: &std::net::TcpListener, seconds: u64) -> bool {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if listener.accept().is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[cfg(feature = "wasix")]
#[test]
fn a_wasix_program_has_no_network_without_net() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();

    // Connect: refused without --net (and the listener hears nothing), made with it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = home.join("connect.wasm");
    std::fs::write(&connect, connect_wasm(port)).unwrap();
    let out = run(webcpm(home).arg("run").arg(&connect));
    assert!(matches!(out.status.code(), Some(10 | 11)), "no network");
    assert!(!accepted(&listener, 1), "nothing reached the listener");
    let out = run(webcpm(home).arg("run").arg(&connect).arg("--net"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "connected\n");
    assert!(accepted(&listener, 5), "the connection arrived");

    // Listen: refused without a grant, allowed with `grant --net`, refused again once revoked.
    let port = free_port();
    let listen = home.join("listen.wasm");
    std::fs::write(&listen, listen_wasm(port)).unwrap();
    let out = run(webcpm(home).arg("run").arg(&listen));
    assert!(
        matches!(out.status.code(), Some(10 | 12 | 13)),
        "no network"
    );
    let out = run(webcpm(home).args(["grant", "local/listen", "--net"]));
    assert_eq!(out.status.code(), Some(0));
    let mut child = webcpm(home)
        .arg("run")
        .arg(&listen)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "listening\n");
    let stream = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(stream.is_ok(), "the program listens: {stream:?}");
    child.stdin.take().unwrap().write_all(b"bye").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let out = run(webcpm(home).args(["grant", "local/listen", "--revoke", "--net"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(webcpm(home).arg("run").arg(&listen));
    assert!(matches!(out.status.code(), Some(10 | 12 | 13)), "revoked");
}

#[cfg(feature = "wasix")]
#[test]
fn an_update_that_asks_for_the_network_says_so_and_a_grant_quiets_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_new(home, &root, "test/grow", "1.0.0", &[]);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "test/grow", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("network"));

    let dir = package_dir(
        home,
        &Pkg {
            name: "test/grow",
            version: "1.1.0",
            wasm: Some(listen_wasm(free_port())),
            ..Pkg::default()
        },
    );
    publish(home, &root, &dir, &[]);
    let out = run(webcpm(home).args(["update", "test/grow", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("test/grow@1.1.0 command `main` can use the network"),
        "{err}"
    );
    assert!(err.contains("sock_listen"), "{err}");
    assert!(err.contains("webcpm grant test/grow --net"), "{err}");

    // A first install says it too, until the package is granted the network.
    let reinstall = |home: &Path| {
        let out = run(webcpm(home).args(["uninstall", "test/grow"]));
        assert_eq!(out.status.code(), Some(0));
        let out = run(webcpm(home).args(["install", "test/grow", "--registry", &registry.url]));
        assert_eq!(out.status.code(), Some(0));
        stderr(&out)
    };
    assert!(reinstall(home).contains("can use the network"));
    let out = run(webcpm(home).args(["grant", "test/grow", "--net"]));
    assert_eq!(out.status.code(), Some(0));
    let err = reinstall(home);
    assert!(!err.contains("can use the network"), "{err}");
}

#[test]
fn cache_maintenance_removes_only_what_the_store_made() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let registry = Registry::start(home, &root);
    // Compiled code kept in a directory that holds other files too.
    let shared = home.join("shared");
    let foreign = [
        shared.join("notes.txt"),
        shared.join("project/readme.md"),
        shared.join("0123456789abcdef0123456789abcdef/mine.txt"),
    ];
    for file in &foreign {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, "not webcpm's").unwrap();
    }
    let stray = home.join("store/tmp/my-notes.txt");
    let with_dir = |cmd: &mut std::process::Command| {
        cmd.env("WEBCPM_COMPILE_DIR", &shared);
    };
    let mut cmd = webcpm(home);
    with_dir(&mut cmd);
    let out = run(cmd.args(["install", "test/hello", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&stray, "mine").unwrap();
    for args in [
        &["cache", "verify"][..],
        &["cache", "gc"],
        &["cache", "clean", "--yes"],
    ] {
        let mut cmd = webcpm(home);
        with_dir(&mut cmd);
        let out = run(cmd.args(args));
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        for file in foreign.iter().chain([&stray]) {
            assert!(file.exists(), "{args:?} removed {}", file.display());
        }
    }
}

/// A WASI command that prints its environment, one variable a line.
fn env_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 16) "\n")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 20) (local.get $ptr))
    (i32.store (i32.const 24) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 20) (i32.const 1) (i32.const 28))))
  (func (export "_start") (local $i i32) (local $p i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $get (i32.const 64) (i32.const 65536)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
      (local.set $p (i32.load (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))))
      (call $write (local.get $p) (call $strlen (local.get $p)))
      (call $write (i32.const 16) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))))"#,
    )
    .unwrap()
}

#[test]
fn the_host_environment_only_when_forwarded_or_granted() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let module = home.join("printenv.wasm");
    std::fs::write(&module, env_wasm()).unwrap();
    let printenv = |extra: &[&str]| {
        let out = run(webcpm(home)
            .env("HOST_SECRET", "s3cret")
            .arg("run")
            .arg(&module)
            .args(extra));
        assert_eq!(out.status.code(), Some(0), "{extra:?}");
        stdout(&out)
    };
    let given = printenv(&["--env", "ASKED=yes"]);
    assert_eq!(given, "ASKED=yes\n", "only what was given");
    let forwarded = printenv(&["--forward-host-env"]);
    assert!(forwarded.contains("HOST_SECRET=s3cret\n"), "{forwarded}");
    let out = run(webcpm(home).args(["grant", "local/printenv", "--forward-host-env"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(printenv(&[]).contains("HOST_SECRET=s3cret\n"));
}

#[test]
fn publish_refuses_a_package_whose_links_lead_out() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);
    let dir = package_dir(
        home,
        &Pkg {
            name: "test/chain",
            version: "1.0.0",
            ..Pkg::default()
        },
    );
    // Each link's text stays inside `data`; the chain reaches the package directory's parent.
    std::os::unix::fs::symlink(".", dir.join("data/a")).unwrap();
    std::os::unix::fs::symlink("a/..", dir.join("data/l1")).unwrap();
    std::os::unix::fs::symlink("l1/..", dir.join("data/l2")).unwrap();
    let token = run(webcpm(home)
        .args(["registry", "token", "create", "--json", "--root"])
        .arg(&root)
        .args(["--namespace", "test"]));
    let token = json(&token)["token"].as_str().unwrap().to_string();
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home)
        .args(["publish", "--registry", &registry.url])
        .arg(&dir)
        .env("WEBCPM_TOKEN", &token));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("`/l1`"), "{err}");
    assert!(
        err.contains("a link may not point outside its volume"),
        "{err}"
    );
    let out = run(webcpm(home).args(["resolve", "test/chain", "--registry", &registry.url]));
    assert_ne!(out.status.code(), Some(0), "nothing was published");
}

/// The binary is position-independent (ELF type `ET_DYN`), so its own image is placed at a
/// random address like everything else it maps.
#[cfg(target_os = "linux")]
#[test]
fn the_binary_is_position_independent() {
    use std::io::Read;
    let mut header = [0u8; 18];
    std::fs::File::open(env!("CARGO_BIN_EXE_webcpm"))
        .unwrap()
        .read_exact(&mut header)
        .unwrap();
    assert_eq!(&header[..4], b"\x7fELF");
    let e_type = u16::from_le_bytes([header[16], header[17]]);
    assert_eq!(e_type, 3, "ET_DYN: a position-independent executable");
}

/// A WASIX command that opens `data/greeting.txt` to read, then tries to truncate it through
/// the handle (exit 10 + errno on failure) and to unlink it (exit 100 + errno on failure).
#[cfg(feature = "wasix")]
fn unlink_open_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasix_32v1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasix_32v1" "fd_filestat_set_size" (func $set_size (param i32 i64) (result i32)))
  (import "wasix_32v1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasix_32v1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "data/greeting.txt")
  (func (export "_start") (local $err i32) (local $truncated i32)
    (local.set $err (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 17)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
    (if (local.get $err) (then (call $exit (i32.const 1))))
    (local.set $truncated (call $set_size (i32.load (i32.const 0)) (i64.const 0)))
    (local.set $err (call $unlink (i32.const 3) (i32.const 512) (i32.const 17)))
    (if (local.get $err) (then (call $exit (i32.add (i32.const 100) (local.get $err)))))
    (call $exit (i32.add (i32.const 10) (local.get $truncated)))))"#,
    )
    .unwrap()
}

/// As root (as CI runs), the package's files' read-only modes stop nothing: the read-only file
/// system must refuse, through an open file's handle too.
#[cfg(feature = "wasix")]
#[test]
fn an_open_package_file_can_be_neither_truncated_nor_unlinked() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let dir = package_dir(
        home,
        &Pkg {
            name: "test/unlink",
            version: "1.0.0",
            wasm: Some(unlink_open_wasm()),
            ..Pkg::default()
        },
    );
    publish(home, &root, &dir, &[]);
    let registry = Registry::start(home, &root);
    let out = run(webcpm(home).args(["install", "test/unlink", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(0));
    let greeting = stored_greeting(home);
    let before = std::fs::read(&greeting).unwrap();
    let out = run(webcpm(home).args(["run", "test/unlink"]));
    assert!(out.status.code().unwrap() > 100, "the unlink is refused");
    assert_eq!(
        std::fs::read(&greeting).unwrap(),
        before,
        "not truncated either"
    );
}
