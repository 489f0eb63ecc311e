//! The local registry: `registry add` publishes every package as WebC v2 and v3, and
//! `registry serve` answers the resolve query with both nodes.

use crate::common::*;
use webcpm_client::container;
use webcpm_client::package::{Offer, WebcVersion};

fn fetch_all(url: &str) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        reqwest::get(url)
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    })
}

#[test]
fn serve_offers_both_formats_through_the_typed_client() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, report) = hello_registry(home);
    assert_eq!(report["package"], "test/hello");
    assert_eq!(report["version"], "1.0.0");
    let registry = Registry::start(home, &root);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let releases = rt.block_on(async {
        let client = webcpm_client::registry::RegistryClient::new(
            webcpm_client::http::client(&Default::default()).unwrap(),
            &registry.url,
            None,
        )
        .unwrap();
        client
            .package(&"test/hello".parse().unwrap())
            .await
            .unwrap()
            .expect("package is known")
    });
    assert_eq!(releases.len(), 1);
    let release = &releases[0];
    assert_eq!(release.version.to_string(), "1.0.0");
    assert!(!release.archived);

    let mut atoms = Vec::new();
    for webc in WebcVersion::ALL {
        let Offer::Offered(dist) = release.offer(webc) else {
            panic!("{webc} not offered: {:?}", release.offer(webc));
        };
        assert_eq!(dist.claimed, Some(webc));
        assert_eq!(dist.sha256.hex(), report[webc.as_str()]["sha256"]);
        assert_eq!(dist.size, report[webc.as_str()]["size"].as_u64());
        assert!(dist.manifest.is_some(), "webcManifest is sent");
        let bytes = fetch_all(&dist.url);
        assert_eq!(Some(bytes.len() as u64), dist.size);
        assert_eq!(
            webcpm_client::package::Sha256Digest::of(&bytes),
            dist.sha256
        );
        let magic: &[u8] = match webc {
            WebcVersion::V2 => b"\0webc002",
            WebcVersion::V3 => b"\0webc003",
        };
        assert_eq!(&bytes[..8], magic);
        let checked = container::open(bytes.into()).unwrap();
        atoms.push(checked.atoms());
    }
    assert_eq!(atoms[0], atoms[1], "both formats hold the same atoms");
    assert_eq!(atoms[0].len(), 1);

    // An unknown package is null, as the real registry answers.
    let unknown = rt.block_on(async {
        webcpm_client::registry::RegistryClient::new(
            webcpm_client::http::client(&Default::default()).unwrap(),
            &registry.url,
            None,
        )
        .unwrap()
        .package(&"test/nope".parse().unwrap())
        .await
        .unwrap()
    });
    assert!(unknown.is_none());

    // Downloads are logged.
    assert!(registry.log().iter().any(|l| l.starts_with("GET /blobs/")));
}

#[test]
fn an_existing_webc_of_either_version_yields_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let first = publish_new(home, &root, "test/orig", "1.0.0", &[]);
    for webc in ["v2", "v3"] {
        let sha = first[webc]["sha256"].as_str().unwrap();
        let file = root.join("blobs").join(format!("{sha}.webc"));
        assert!(file.exists(), "{file:?}");
        let other_root = home.join(format!("registry-from-{webc}"));
        let report = publish(
            home,
            &other_root,
            &file,
            &["--name", "other/copy", "--version", "2.0.0"],
        );
        assert_eq!(report["package"], "other/copy");
        assert_eq!(report["version"], "2.0.0");
        // The input's own format is kept byte for byte.
        assert_eq!(report[webc]["sha256"], sha);
        for w in ["v2", "v3"] {
            let sha = report[w]["sha256"].as_str().unwrap();
            let bytes =
                std::fs::read(other_root.join("blobs").join(format!("{sha}.webc"))).unwrap();
            assert_eq!(bytes.len() as u64, report[w]["size"].as_u64().unwrap());
            container::open(bytes.into()).unwrap();
        }
    }
}

#[test]
fn bad_input_to_registry_add_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let good = package_dir(
        home,
        &Pkg {
            name: "test/good",
            version: "1.0.0",
            ..Pkg::default()
        },
    );

    let empty = home.join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    let escaping = package_dir(
        home,
        &Pkg {
            name: "test/escape",
            version: "1.0.0",
            ..Pkg::default()
        },
    );
    std::fs::write(home.join("outside.wasm"), hello_wasm("x", 0)).unwrap();
    let toml = std::fs::read_to_string(escaping.join("wasmer.toml"))
        .unwrap()
        .replace("source = \"main.wasm\"", "source = \"../outside.wasm\"");
    std::fs::write(escaping.join("wasmer.toml"), toml).unwrap();

    let not_webc = home.join("not.webc");
    std::fs::write(&not_webc, b"this is not a webc file at all").unwrap();

    let cases: Vec<(&str, std::path::PathBuf, Vec<&str>, &str)> = vec![
        ("no wasmer.toml", empty, vec![], "wasmer.toml"),
        ("escaping module", escaping, vec![], "outside.wasm"),
        (
            "invalid name",
            good.clone(),
            vec!["--name", "not a name"],
            "not a name",
        ),
        (
            "invalid version",
            good.clone(),
            vec!["--version", "one"],
            "one",
        ),
        ("not WebC", not_webc, vec![], "WebC"),
    ];
    for (what, path, extra, named) in cases {
        let root = home.join(format!("root-{}", what.replace(' ', "-")));
        let out = run(webcpm(home)
            .args(["registry", "add", "--root"])
            .arg(&root)
            .arg(&path)
            .args(&extra));
        assert_eq!(out.status.code(), Some(1), "{what}: exit code");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines[0].starts_with("error: "), "{what}: {err}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("error: ") || l.starts_with("  hint: ")),
            "{what}: one error line (and hints): {err}"
        );
        assert!(
            err.contains(named),
            "{what}: the error names `{named}`: {err}"
        );
        assert!(!root.exists(), "{what}: the registry root was created");
    }

    // Publishing the same version twice is refused without --force, and nothing changes.
    let root = home.join("root-dup");
    let first = publish(home, &root, &good, &[]);
    let out = run(webcpm(home)
        .args(["registry", "add", "--root"])
        .arg(&root)
        .arg(&good));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let again = publish(home, &root, &good, &["--force"]);
    assert_eq!(again["v3"]["sha256"], first["v3"]["sha256"]);
}

/// `webcpm registry …` runs `webcpm-registry` with the same arguments: its output, its exit codes,
/// the global flags `webcpm` took before `registry` (`--json`), and `webcpm`'s own global flags
/// after it, which `webcpm` accepted there before the registry was a binary of its own.
#[test]
fn webcpm_registry_runs_the_registry_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let made = run(webcpm(home)
        .args([
            "--json",
            "registry",
            "token",
            "create",
            "--namespace",
            "me",
            "--root",
        ])
        .arg(&root)
        .arg("--home")
        .arg(home.join("elsewhere")));
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    assert_eq!(json(&made)["namespace"], "me");
    let bad = run(webcpm(home)
        .args([
            "registry",
            "token",
            "create",
            "--namespace",
            "no/pe",
            "--root",
        ])
        .arg(&root));
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("error:"), "{}", stderr(&bad));
    let help = run(webcpm(home).args(["registry", "--help"]));
    assert_eq!(help.status.code(), Some(0));
    assert!(
        stdout(&help).contains("webcpm-registry"),
        "{}",
        stdout(&help)
    );
}
