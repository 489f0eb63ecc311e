//! `webcpm sbom`: a lockfile's packages as CycloneDX 1.6 and SPDX 2.3 documents, each validated
//! against the format's published JSON schema (tests/fixtures/sbom), with every package, both
//! distributions' hashes, the atoms' SHA-256 and ABI, and the dependencies.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::common::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom")
}

/// Validates `doc` against the schema at `id`, with the published schemas as the only
/// resources (nothing is fetched); the errors, if any.
fn validate(id: &str, doc: &serde_json::Value) -> Result<(), String> {
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    for (url, file) in [
        (
            "http://cyclonedx.org/schema/bom-1.6.schema.json",
            "cyclonedx-bom-1.6.schema.json",
        ),
        (
            "http://cyclonedx.org/schema/spdx.schema.json",
            "cyclonedx-spdx.schema.json",
        ),
        (
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            "cyclonedx-jsf-0.82.schema.json",
        ),
        ("http://spdx.org/rdf/terms/2.3", "spdx-2.3.schema.json"),
    ] {
        let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
        compiler
            .add_resource(url, serde_json::from_str(&text).unwrap())
            .unwrap();
    }
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(id, &mut schemas)
        .map_err(|e| e.to_string())?;
    schemas.validate(doc, index).map_err(|e| format!("{e:#}"))
}

const CYCLONEDX: &str = "http://cyclonedx.org/schema/bom-1.6.schema.json";
const SPDX: &str = "http://spdx.org/rdf/terms/2.3";

/// The bill's time, so that two bills of one lockfile are the same bytes.
const NOW: &str = "2026-12-07T12:00:00Z";

fn sbom(home: &Path, format: &str, extra: &[&str]) -> std::process::Output {
    run(webcpm(home)
        .args(["sbom", "--format", format, "--lockfile"])
        .arg(home.join("webcpm.lock"))
        .args(extra)
        .env("WEBCPM_NOW", NOW))
}

/// The SHA-256 of each atom of a `.webc` file, read with `webc` itself.
fn atom_hashes(file: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(file).unwrap();
    let version = webc::detect(bytes.as_slice()).unwrap();
    let container = webc::Container::from_bytes_and_version(bytes.into(), version).unwrap();
    let mut atoms: Vec<(String, String)> = container
        .atoms()
        .into_iter()
        .map(|(name, bytes)| {
            let digest = Sha256::digest(&bytes);
            (name, digest.iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect();
    atoms.sort();
    atoms
}

/// A registry at `root` with test/lib@1.0.0 (published by alice) and test/app@1.0.0, which
/// depends on test/lib@^1.
fn app_and_lib(home: &Path, root: &Path) -> Registry {
    publish_new(home, root, "test/lib", "1.0.0", &["--publisher", "alice"]);
    let app = Pkg {
        name: "test/app",
        version: "1.0.0",
        dependencies: &[("test/lib", "^1")],
        ..Pkg::default()
    };
    publish(home, root, &package_dir(home, &app), &[]);
    Registry::start(home, root)
}

fn lock_two(home: &Path, registry: &Registry) -> serde_json::Value {
    let out = run(webcpm(home)
        .args([
            "lock",
            "test/app@^1",
            "--json",
            "--registry",
            &registry.url,
            "-o",
        ])
        .arg(home.join("webcpm.lock")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(home.join("webcpm.lock")).unwrap();
    serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap()
}

#[test]
fn cyclonedx_and_spdx_documents_are_valid_and_list_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let registry = app_and_lib(home, &root);
    let lock = lock_two(home, &registry);

    let out = sbom(home, "cyclonedx", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    validate(CYCLONEDX, &bom).unwrap();
    assert_eq!(bom["metadata"]["timestamp"], NOW);

    // Every locked package, with both distributions' hashes as the lockfile has them.
    let components = bom["components"].as_array().unwrap();
    assert_eq!(components.len(), 2, "{bom:#}");
    let lib = components.iter().find(|c| c["name"] == "lib").unwrap();
    assert_eq!(lib["group"], "test");
    assert_eq!(lib["publisher"], "alice");
    let locked = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "test/lib")
        .unwrap();
    for (i, webc) in ["v2", "v3"].into_iter().enumerate() {
        let dist = &lib["components"][i];
        let sha256 = locked[webc]["sha256"].as_str().unwrap();
        assert_eq!(dist["hashes"][0]["content"], sha256, "{dist:#}");
        assert_eq!(dist["externalReferences"][0]["url"], locked[webc]["url"]);
        // The atoms, each with the SHA-256 of its bytes and its ABI.
        let want = atom_hashes(&root.join("blobs").join(format!("{sha256}.webc")));
        let atoms = dist["components"].as_array().unwrap();
        assert_eq!(atoms.len(), want.len());
        for (atom, (name, hash)) in atoms.iter().zip(&want) {
            assert_eq!(atom["name"], name.as_str());
            assert_eq!(atom["hashes"][0]["content"], hash.as_str());
            assert_eq!(atom["properties"][0]["value"], "preview1", "{atom:#}");
        }
    }
    let depends = |doc: &serde_json::Value, on: &str| -> Vec<String> {
        let deps = doc["dependencies"].as_array().unwrap();
        let d = deps.iter().find(|d| d["ref"] == on).unwrap();
        serde_json::from_value(d["dependsOn"].clone()).unwrap()
    };
    assert_eq!(depends(&bom, "test/app@1.0.0"), ["test/lib@1.0.0"]);
    assert!(depends(&bom, "test/lib@1.0.0").is_empty());

    // SPDX: one package per distribution, the atoms as files, the dependency between them.
    let written = home.join("spdx.json");
    let out = sbom(home, "spdx", &["-o", written.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Wrote an SPDX 2.3 document (2 packages)"));
    let text = std::fs::read_to_string(&written).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    validate(SPDX, &doc).unwrap();
    assert_eq!(doc["packages"].as_array().unwrap().len(), 4);
    let id_of = |name: &str, webc: &str| {
        let packages = doc["packages"].as_array().unwrap();
        let p = packages
            .iter()
            .find(|p| p["name"] == name && p["SPDXID"].as_str().unwrap().ends_with(webc))
            .unwrap();
        p["SPDXID"].as_str().unwrap().to_string()
    };
    let has = |from: &str, kind: &str, to: &str| {
        doc["relationships"].as_array().unwrap().iter().any(|r| {
            r["spdxElementId"] == from
                && r["relationshipType"] == kind
                && r["relatedSpdxElement"] == to
        })
    };
    assert!(has(
        &id_of("test/app", "v3"),
        "DEPENDS_ON",
        &id_of("test/lib", "v3")
    ));
    assert!(has(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        &id_of("test/app", "v3")
    ));
    let files = doc["files"].as_array().unwrap();
    assert!(!files.is_empty());
    let contained = |file: &str| {
        ["v2", "v3"].into_iter().any(|webc| {
            ["test/app", "test/lib"]
                .into_iter()
                .any(|name| has(&id_of(name, webc), "CONTAINS", file))
        })
    };
    for f in files {
        let algorithms: Vec<&str> = f["checksums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["algorithm"].as_str().unwrap())
            .collect();
        assert_eq!(algorithms, ["SHA1", "SHA256"]);
        assert!(contained(f["SPDXID"].as_str().unwrap()), "{f:#}");
    }

    // The validator is no rubber stamp: a wrong hash algorithm or a missing field fails.
    let mut bad = bom.clone();
    bad["components"][0]["components"][0]["hashes"][0]["alg"] = serde_json::json!("SHA256");
    assert!(validate(CYCLONEDX, &bad).is_err());
    let mut bad = doc.clone();
    bad.as_object_mut().unwrap().remove("creationInfo");
    assert!(validate(SPDX, &bad).is_err());
}

#[test]
fn offline_it_needs_the_store_and_then_reads_only_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let mut registry = app_and_lib(home, &home.join("registry"));
    lock_two(home, &registry);

    let out = sbom(home, "spdx", &["--offline"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not in the store"),
        "{}",
        stderr(&out)
    );
    let online = sbom(home, "spdx", &[]);
    assert_eq!(online.status.code(), Some(0), "{}", stderr(&online));

    // With the registry gone, the same document comes from the store alone.
    registry.stop();
    let out = sbom(home, "spdx", &["--offline"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, online.stdout);
}
