//! The inventory as an SPDX 2.3 JSON document.
//!
//! Each distribution of each package version is a package (its name, version, publisher as
//! `supplier`, download URL and SHA-256), and each atom in it a file (with its SHA-1, as SPDX
//! requires, and SHA-256; its ABI in the comment) that the package `CONTAINS`; the files were
//! analysed, so each package has the verification code SPDX defines over them. A distribution `DEPENDS_ON` the distribution of
//! the same WebC version of each locked dependency (or any, when that one is not offered); the
//! document `DESCRIBES` the roots' distributions. The namespace is made from the lockfile's
//! SHA-256, so the same lockfile always names the same document.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{DistEntry, Entry, Inventory, ident};
use crate::package::WebcVersion;

/// The document, as JSON.
pub fn spdx(inv: &Inventory) -> Value {
    let ids = Ids::of(inv);
    let mut packages = Vec::new();
    let mut files = Vec::new();
    let mut relationships = Vec::new();
    for (i, p) in inv.packages.iter().enumerate() {
        for d in &p.distributions {
            let id = ids
                .dist(&p.key, d.webc)
                .expect("every distribution has an id");
            packages.push(package(p, d, id));
            for (j, a) in d.atoms.iter().enumerate() {
                let file_id = format!("SPDXRef-File-{i}-{}-{j}-{}", d.webc, ident(&a.name));
                files.push(json!({
                    "SPDXID": file_id,
                    "fileName": format!("./{}", a.name),
                    "fileTypes": ["BINARY"],
                    "checksums": [
                        { "algorithm": "SHA1", "checksumValue": a.sha1 },
                        { "algorithm": "SHA256", "checksumValue": a.sha256 },
                    ],
                    "comment": format!("WebAssembly module ({} bytes); ABI: {}", a.size, a.abi),
                }));
                relationships.push(relationship(id, "CONTAINS", &file_id));
            }
            for dep in &p.dependencies {
                if let Some(to) = ids.dist(dep, d.webc).or_else(|| ids.any(dep)) {
                    relationships.push(relationship(id, "DEPENDS_ON", to));
                }
            }
        }
    }
    for root in &inv.roots {
        for id in ids.all(root) {
            relationships.push(relationship("SPDXRef-DOCUMENT", "DESCRIBES", id));
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inv.subject,
        "documentNamespace": format!("urn:webcpm:lockfile:sha256:{}", inv.lockfile_sha256),
        "comment": format!("The packages that {} locks from {}", inv.subject, inv.registry),
        "creationInfo": {
            "created": inv.created,
            "creators": [format!("Tool: webcpm-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    })
}

fn package(p: &Entry, d: &DistEntry, id: &str) -> Value {
    let mut package = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "packageFileName": format!("{}-{}.{}.webc", p.name.replace('/', "-"), p.version, d.webc),
        "downloadLocation": d.url,
        "filesAnalyzed": true,
        "packageVerificationCode": { "packageVerificationCodeValue": verification_code(d) },
        "checksums": [{ "algorithm": "SHA256", "checksumValue": d.sha256 }],
        "primaryPackagePurpose": "LIBRARY",
        "comment": format!("WebC {} distribution, {} bytes", d.webc, d.size),
        "supplier": "NOASSERTION",
    });
    if let Some(publisher) = &p.publisher {
        package["supplier"] = json!(format!("Person: {publisher}"));
    }
    package
}

/// SPDX 2.3's package verification code: the SHA-1 of the files' SHA-1s, sorted and joined.
fn verification_code(d: &DistEntry) -> String {
    let mut sha1s: Vec<&str> = d.atoms.iter().map(|a| a.sha1.as_str()).collect();
    sha1s.sort_unstable();
    hex::encode(<sha1::Sha1 as sha1::Digest>::digest(
        sha1s.concat().as_bytes(),
    ))
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to })
}

/// The SPDX id of each distribution, by package key and WebC version.
struct Ids(BTreeMap<String, Vec<(WebcVersion, String)>>);

impl Ids {
    fn of(inv: &Inventory) -> Ids {
        let mut map = BTreeMap::new();
        for (i, p) in inv.packages.iter().enumerate() {
            let ids = p
                .distributions
                .iter()
                .map(|d| {
                    (
                        d.webc,
                        format!("SPDXRef-Package-{i}-{}-{}", ident(&p.key), d.webc),
                    )
                })
                .collect();
            map.insert(p.key.clone(), ids);
        }
        Ids(map)
    }

    fn dist(&self, key: &str, webc: WebcVersion) -> Option<&str> {
        self.0
            .get(key)?
            .iter()
            .find(|(w, _)| *w == webc)
            .map(|(_, id)| id.as_str())
    }

    fn any(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.first().map(|(_, id)| id.as_str())
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .get(key)
            .into_iter()
            .flatten()
            .map(|(_, id)| id.as_str())
    }
}
