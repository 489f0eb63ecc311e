//! The inventory as a CycloneDX 1.6 JSON document.
//!
//! Each package version is a `library` component (`group` the namespace, `publisher` who
//! published it); inside it, each distribution is a `file` component with its SHA-256 and its
//! download URL (an external reference of type `distribution`), and inside that, each atom is a
//! `file` component with its SHA-256 and its ABI as the property `webcpm:abi`. `dependencies`
//! gives each version's locked dependencies. `bom-ref`s are `ns/name@version`,
//! `ns/name@version#v3` and `ns/name@version#v3/atom`.

use serde_json::{Value, json};

use super::{AtomEntry, DistEntry, Entry, Inventory};

/// The document, as JSON.
pub fn cyclonedx(inv: &Inventory) -> Value {
    let components: Vec<Value> = inv.packages.iter().map(component).collect();
    let dependencies: Vec<Value> = inv
        .packages
        .iter()
        .map(|p| json!({ "ref": p.key, "dependsOn": p.dependencies }))
        .chain(std::iter::once(
            json!({ "ref": subject_ref(inv), "dependsOn": inv.roots }),
        ))
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": inv.created,
            "tools": { "components": [{
                "type": "application",
                "name": "webcpm",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "application",
                "bom-ref": subject_ref(inv),
                "name": inv.subject,
                "hashes": [hash(&inv.lockfile_sha256)],
                "properties": [{ "name": "webcpm:registry", "value": inv.registry }],
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

fn subject_ref(inv: &Inventory) -> String {
    format!("lockfile:{}", inv.subject)
}

fn hash(sha256: &str) -> Value {
    json!({ "alg": "SHA-256", "content": sha256 })
}

fn component(p: &Entry) -> Value {
    let (group, name) = p.name.split_once('/').unwrap_or(("", &p.name));
    let mut c = json!({
        "type": "library",
        "bom-ref": p.key,
        "group": group,
        "name": name,
        "version": p.version,
        "components": p.distributions.iter().map(|d| distribution(p, d)).collect::<Vec<_>>(),
    });
    if let Some(publisher) = &p.publisher {
        c["publisher"] = json!(publisher);
    }
    c
}

fn distribution(p: &Entry, d: &DistEntry) -> Value {
    let at = format!("{}#{}", p.key, d.webc);
    let atoms: Vec<Value> = d.atoms.iter().map(|a| atom(&at, a)).collect();
    json!({
        "type": "file",
        "bom-ref": at,
        "name": format!("{}-{}.{}.webc", p.name.replace('/', "-"), p.version, d.webc),
        "hashes": [hash(&d.sha256)],
        "externalReferences": [{ "type": "distribution", "url": d.url, "hashes": [hash(&d.sha256)] }],
        "properties": [
            { "name": "webcpm:webc", "value": d.webc.to_string() },
            { "name": "webcpm:size", "value": d.size.to_string() },
        ],
        "components": atoms,
    })
}

fn atom(at: &str, a: &AtomEntry) -> Value {
    json!({
        "type": "file",
        "bom-ref": format!("{at}/{}", a.name),
        "name": a.name,
        "hashes": [hash(&a.sha256)],
        "properties": [
            { "name": "webcpm:abi", "value": a.abi },
            { "name": "webcpm:size", "value": a.size.to_string() },
        ],
    })
}
