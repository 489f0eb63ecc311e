//! `webcpm-registry add` and `archive`: putting a package version into a local registry root.
//!
//! The input is a package directory (a `wasmer.toml` with its modules and files) or a `.webc`
//! file of any WebC version. It is checked WHOLE before the registry root is touched: every path
//! that `wasmer.toml` names must stay inside the directory (no absolute path, no `..` above it,
//! no symbolic link leading out) and exist; the package is built with strict checks; the
//! container is opened and checked, converted to WebC v2 and v3, both results are opened and
//! checked again and must hold the same atoms (names and bytes). A failed `add` creates no file,
//! no directory and no database.
//!
//! On disk (see [`super::db`] for the database):
//! ```text
//! DIR/registry.sqlite        the index
//! DIR/blobs/<sha256hex>.webc  each stored container, named by the SHA-256 of its bytes
//! DIR/tmp/                    temporary files, renamed into blobs/ once complete and fsynced
//! ```
//! Blobs are content-addressed and never rewritten in place; the database row naming them is
//! written last, in one transaction. A blob left behind by a replaced (`--force`) version stays
//! on disk: another version may share it.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

use super::blobs::BlobError;
use super::db::{About, BlobRecord, Db, DbError, Published};
use super::staging::Staging;
use super::storage::Storage;
use crate::container::{self, Checked, ContainerError, Format, Requests};
use crate::package::{PackageName, Sha256Digest, WebcVersion};
use crate::package_dir::{self, DirError, one_line};

/// The largest container the registry stores: the protocol's sizes are GraphQL `Int` (32 bits).
pub(crate) const MAX_BLOB_SIZE: u64 = i32::MAX as u64;

/// What `registry add` was told besides the input.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// The package's name; by default the one in `wasmer.toml` or in the container's manifest.
    pub name: Option<PackageName>,
    /// The version; by default the one in `wasmer.toml` or in the container's manifest.
    pub version: Option<semver::Version>,
    /// Replace the version when it is already there.
    pub force: bool,
    /// Offer only this format; the other is still built and checked, but not offered.
    pub only: Option<WebcVersion>,
    /// The package's description; by default the one in `wasmer.toml` or in the container's
    /// manifest.
    pub description: Option<String>,
    /// A readme, kept when the package names none of its own (the publish API's `readme`).
    pub readme: Option<String>,
    /// The publish time to record (Unix seconds), for a copy of another registry's version;
    /// `None`: now.
    pub published_at: Option<i64>,
    /// Who published it (`publishedBy`).
    pub publisher: Publisher,
}

/// Who published a version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Publisher {
    /// The namespace's owner, who publishes into it (`add` without `--publisher`).
    #[default]
    Namespace,
    /// A user: the publish token's, the operator's `--publisher`, or another registry's.
    Named(String),
    /// Not known: a copy of a version whose registry did not say.
    Unknown,
}

/// One stored format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobReport {
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// What `registry add` stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddReport {
    pub package: PackageName,
    /// The version, as semver text.
    pub version: String,
    pub v2: BlobReport,
    pub v3: BlobReport,
    /// Set when only this format is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only: Option<WebcVersion>,
}

/// Why a package could not be added or archived.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read {path}: {reason}; check the path")]
    ReadInput { path: PathBuf, reason: String },
    #[error(transparent)]
    Dir(#[from] DirError),
    #[error("{0} is not a WebC file; pass a package directory or a .webc file")]
    NotWebc(PathBuf),
    #[error("{path}: {reason}; the package cannot be published")]
    Container { path: PathBuf, reason: String },
    #[error(
        "the WebC v2 and v3 forms of {path} differ ({reason}); the package cannot be published"
    )]
    Mismatch { path: PathBuf, reason: String },
    #[error(
        "the WebC {format} form of {path} is {size} bytes, more than the registry's limit of {MAX_BLOB_SIZE}; make the package smaller"
    )]
    TooLarge {
        path: PathBuf,
        format: WebcVersion,
        size: u64,
    },
    #[error(
        "the package's manifest cannot be written as JSON ({0}); fix the package's annotations"
    )]
    ManifestJson(String),
    #[error("the package has no name: pass --name ns/name")]
    NoName,
    #[error("the package's name `{text}` is invalid ({reason}); pass --name ns/name")]
    BadName { text: String, reason: String },
    #[error("the package has no version: pass --version X.Y.Z")]
    NoVersion,
    #[error("the package's version `{text}` is not semver ({reason}); pass --version X.Y.Z")]
    BadVersion { text: String, reason: String },
    #[error("{name}@{version} is already in the registry; pass --force to replace it")]
    Exists {
        name: PackageName,
        version: semver::Version,
    },
    #[error("no registry in {0}; add a package there first with `webcpm-registry add`")]
    NoRegistry(PathBuf),
    #[error("{name}@{version} is not in the registry; check the name and version")]
    NoSuchVersion {
        name: PackageName,
        version: semver::Version,
    },
    #[error("cannot write {path}: {source}; check the disk and its permissions")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl PublishError {
    /// Whether the input was at fault (exit code 1); otherwise the disk or the database was
    /// (exit code 2).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            PublishError::Io { .. } | PublishError::Db(_) | PublishError::Blob(_)
        )
    }
}

/// Adds a package directory or a `.webc` file to the registry, as both WebC v2 and v3: the
/// files first, then the version's row, so that no reader sees a version without its files.
pub fn add(storage: &Storage, input: &Path, opts: &AddOptions) -> Result<AddReport, PublishError> {
    let prepared = prepare(input, opts, &Staging::for_root(&storage.root))?;
    write(storage, &prepared, opts)
}

/// A version's files as another registry served them (a mirror's upstream): `label` names them
/// in errors; a format the other registry does not offer is `None`.
pub(crate) struct Copied {
    pub(crate) label: String,
    pub(crate) v2: Option<Bytes>,
    pub(crate) v3: Option<Bytes>,
}

/// Adds a version from another registry's exact files, so that their SHA-256 stay the same
/// here: each is opened with every check `add` makes; a format that was not offered is made
/// from the other, as `add` makes it, and not offered either.
pub(crate) fn add_copy(
    storage: &Storage,
    copied: &Copied,
    opts: &AddOptions,
) -> Result<AddReport, PublishError> {
    let (prepared, only) = prepare_copy(copied, opts)?;
    let opts = AddOptions {
        only,
        ..opts.clone()
    };
    write(storage, &prepared, &opts)
}

/// Writes a checked version: its files, then its row.
fn write(
    storage: &Storage,
    prepared: &Prepared,
    opts: &AddOptions,
) -> Result<AddReport, PublishError> {
    let (name, version) = (&prepared.name, &prepared.version);
    std::fs::create_dir_all(&storage.root).map_err(|source| PublishError::Io {
        path: storage.root.clone(),
        source,
    })?;
    let mut db = Db::open(&storage.database)?;
    if !opts.force && db.version_exists(name, version)? {
        return Err(PublishError::Exists {
            name: name.clone(),
            version: version.clone(),
        });
    }
    let v2 = store_blob(storage, &prepared.v2)?;
    let v3 = store_blob(storage, &prepared.v3)?;
    storage
        .blobs
        .tag_version(name, version, &[(v2.sha256, v2.size), (v3.sha256, v3.size)])?;
    // The digests the blob store computed as it stored the files: not hashed a second time.
    let record = |blob: &BlobReport, manifest: &str| BlobRecord {
        sha256: blob.sha256,
        size: blob.size,
        manifest: manifest.to_string(),
    };
    let outcome = db.publish(
        name,
        version,
        &record(&v2, &prepared.v2_manifest),
        &record(&v3, &prepared.v3_manifest),
        opts.only,
        opts.force,
    )?;
    match outcome {
        Published::AlreadyExists => {
            // Another publisher won the race, and this one's tag may have replaced its tag:
            // point it back at the files that the registry serves. The answer stays "exists".
            if let Err(e) = retag_stored(storage, &mut db, name, version) {
                tracing::error!(
                    "{name}@{version} may be tagged with another publisher's files: {e}; \
                     add it again with `webcpm registry add --force` to tag it anew"
                );
            }
            return Err(PublishError::Exists {
                name: name.clone(),
                version: version.clone(),
            });
        }
        Published::Replaced => tracing::info!("replaced {name}@{version}"),
        Published::Inserted => tracing::info!("added {name}@{version}"),
    }
    let about = About {
        description: prepared.description.as_deref(),
        readme: prepared.readme.as_deref(),
        requests: Some(&prepared.requests),
        publisher: match &opts.publisher {
            Publisher::Namespace => Some(name.namespace()),
            Publisher::Named(user) => Some(user.as_str()),
            Publisher::Unknown => None,
        },
    };
    db.set_about(name, version, &about)?;
    if let Some(at) = opts.published_at {
        db.set_published_at(name, version, at)?;
    }
    Ok(AddReport {
        package: name.clone(),
        version: version.to_string(),
        v2,
        v3,
        only: opts.only,
    })
}

/// Tags `name@version` with the files that its row records.
fn retag_stored(
    storage: &Storage,
    db: &mut Db,
    name: &PackageName,
    version: &semver::Version,
) -> Result<(), PublishError> {
    let stored = db
        .package(name)?
        .and_then(|p| p.versions.into_iter().find(|v| &v.version == version));
    if let Some(v) = stored {
        let files = [(v.v2.sha256, v.v2.size), (v.v3.sha256, v.v3.size)];
        storage.blobs.tag_version(name, version, &files)?;
    }
    Ok(())
}

/// Marks a version archived (yanked), with the reason if one is given, or not archived.
/// Archived versions are still listed and downloadable, but are never `latest`, and clients
/// take them only when asked for exactly.
pub fn set_archived(
    storage: &Storage,
    name: &PackageName,
    version: &semver::Version,
    archived: bool,
    reason: Option<&str>,
) -> Result<(), PublishError> {
    let mut db = Db::open_existing(&storage.database)?
        .ok_or_else(|| PublishError::NoRegistry(storage.root.clone()))?;
    if !db.set_archived(name, version, archived, reason)? {
        return Err(PublishError::NoSuchVersion {
            name: name.clone(),
            version: version.clone(),
        });
    }
    Ok(())
}

/// A checked input, ready to be written.
struct Prepared {
    name: PackageName,
    version: semver::Version,
    v2: Bytes,
    v3: Bytes,
    v2_manifest: String,
    v3_manifest: String,
    description: Option<String>,
    /// The package's own readme, else the one given with it.
    readme: Option<String>,
    /// What its commands ask of the host.
    requests: Requests,
}

/// What an input says about itself: its `wasmer.toml`, else its container's `wapm` annotation.
#[derive(Default)]
struct Identity {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
}

impl Identity {
    /// What `wasmer.toml` said, else what the container's `wapm` annotation says.
    fn or_container(self, container: &Checked) -> Identity {
        let wapm = container.manifest().wapm().ok().flatten();
        let from_wapm = |field: fn(&webc::metadata::annotations::Wapm) -> Option<String>| {
            wapm.as_ref().and_then(field)
        };
        Identity {
            name: self.name.or_else(|| from_wapm(|w| w.name.clone())),
            version: self.version.or_else(|| from_wapm(|w| w.version.clone())),
            description: self
                .description
                .or_else(|| from_wapm(|w| w.description.clone())),
        }
    }
}

/// The name, version and description to publish: the options first, then what the input says.
fn identify(
    opts: &AddOptions,
    said: Identity,
) -> Result<(PackageName, semver::Version, Option<String>), PublishError> {
    let name = match (&opts.name, said.name) {
        (Some(name), _) => name.clone(),
        (None, Some(text)) => text.parse().map_err(|e| PublishError::BadName {
            reason: one_line(&e),
            text,
        })?,
        (None, None) => return Err(PublishError::NoName),
    };
    let version = match (&opts.version, said.version) {
        (Some(v), _) => v.clone(),
        (None, Some(text)) => {
            semver::Version::parse(text.trim()).map_err(|e| PublishError::BadVersion {
                reason: one_line(&e),
                text,
            })?
        }
        (None, None) => return Err(PublishError::NoVersion),
    };
    Ok((name, version, opts.description.clone().or(said.description)))
}

/// Everything `add` checks before touching the registry root.
fn prepare(input: &Path, opts: &AddOptions, staging: &Staging) -> Result<Prepared, PublishError> {
    let read_err = |e: std::io::Error| PublishError::ReadInput {
        path: input.into(),
        reason: e.to_string(),
    };
    let staging_err = |source| PublishError::Io {
        path: staging.dir().to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(input).map_err(read_err)?;
    let (bytes, toml) = if meta.is_dir() {
        let built = package_dir::build(input)?;
        let said = Identity {
            name: built.name,
            version: built.version,
            description: built.description,
        };
        (staging.keep(built.bytes).map_err(staging_err)?, said)
    } else {
        let file = std::fs::File::open(input).map_err(read_err)?;
        (
            staging.copy(file).map_err(staging_err)?,
            Identity::default(),
        )
    };
    let original = container::open(bytes.clone()).map_err(|e| container_err(input, e))?;

    let form = |webc: WebcVersion| -> Result<(Bytes, Checked), PublishError> {
        let converted =
            container::convert(&bytes, &original, webc).map_err(|e| container_err(input, e))?;
        let size = converted.len() as u64;
        if size > MAX_BLOB_SIZE {
            return Err(PublishError::TooLarge {
                path: input.into(),
                format: webc,
                size,
            });
        }
        // A conversion to the input's own format is the input: it is on disk already.
        let converted = match original.format == Format::Current(webc) {
            true => converted,
            false => staging.keep(converted).map_err(staging_err)?,
        };
        let checked = container::open(converted.clone()).map_err(|e| container_err(input, e))?;
        if checked.format != Format::Current(webc) {
            return Err(PublishError::Mismatch {
                path: input.into(),
                reason: format!("converting to {webc} gave a {} file", checked.format),
            });
        }
        Ok((converted, checked))
    };
    let (v2, c2) = form(WebcVersion::V2)?;
    let (v3, c3) = form(WebcVersion::V3)?;
    same_atoms(input, &original, &c2)?;
    same_atoms(input, &c2, &c3)?;

    let (name, version, description) = identify(opts, toml.or_container(&original))?;
    let json = |c: &Checked| {
        serde_json::to_string(c.manifest()).map_err(|e| PublishError::ManifestJson(one_line(&e)))
    };
    let readme = container::readme(&c3).or_else(|| opts.readme.clone().map(container::cut_readme));
    Ok(Prepared {
        name,
        version,
        description,
        readme,
        requests: container::requests(&c3),
        v2_manifest: json(&c2)?,
        v3_manifest: json(&c3)?,
        v2,
        v3,
    })
}

fn container_err(path: &Path, source: ContainerError) -> PublishError {
    match source {
        ContainerError::NotWebc => PublishError::NotWebc(path.into()),
        other => PublishError::Container {
            path: path.into(),
            reason: one_line(&other),
        },
    }
}

/// Opens `bytes` with every check and makes sure it is a `webc` file.
fn open_as(path: &Path, bytes: &Bytes, webc: WebcVersion) -> Result<Checked, PublishError> {
    let checked = container::open(bytes.clone()).map_err(|e| container_err(path, e))?;
    if checked.format != Format::Current(webc) {
        return Err(PublishError::Mismatch {
            path: path.into(),
            reason: format!("the {webc} file is a {} file", checked.format),
        });
    }
    Ok(checked)
}

/// [`prepare`] for [`add_copy`]: both files checked, and the format made here, if any.
fn prepare_copy(
    copied: &Copied,
    opts: &AddOptions,
) -> Result<(Prepared, Option<WebcVersion>), PublishError> {
    let path = PathBuf::from(&copied.label);
    let made = |from: &Bytes, webc: WebcVersion, to: WebcVersion| -> Result<Bytes, PublishError> {
        let checked = open_as(&path, from, webc)?;
        container::convert(from, &checked, to).map_err(|e| container_err(&path, e))
    };
    let (v2, v3, only) = match (&copied.v2, &copied.v3) {
        (Some(v2), Some(v3)) => (v2.clone(), v3.clone(), None),
        (Some(v2), None) => {
            let v3 = made(v2, WebcVersion::V2, WebcVersion::V3)?;
            (v2.clone(), v3, Some(WebcVersion::V2))
        }
        (None, Some(v3)) => {
            let v2 = made(v3, WebcVersion::V3, WebcVersion::V2)?;
            (v2, v3.clone(), Some(WebcVersion::V3))
        }
        (None, None) => {
            return Err(PublishError::Mismatch {
                path,
                reason: "neither format is offered".into(),
            });
        }
    };
    let c2 = open_as(&path, &v2, WebcVersion::V2)?;
    let c3 = open_as(&path, &v3, WebcVersion::V3)?;
    same_atoms(&path, &c2, &c3)?;
    let (name, version, description) = identify(opts, Identity::default().or_container(&c3))?;
    let json = |c: &Checked| {
        serde_json::to_string(c.manifest()).map_err(|e| PublishError::ManifestJson(one_line(&e)))
    };
    let prepared = Prepared {
        name,
        version,
        description,
        readme: container::readme(&c3),
        requests: container::requests(&c3),
        v2_manifest: json(&c2)?,
        v3_manifest: json(&c3)?,
        v2,
        v3,
    };
    Ok((prepared, only))
}

fn same_atoms(input: &Path, a: &Checked, b: &Checked) -> Result<(), PublishError> {
    let (left, right) = (a.atoms(), b.atoms());
    if left == right {
        return Ok(());
    }
    let names = |atoms: &[(String, Sha256Digest, u64)]| {
        atoms
            .iter()
            .map(|(n, d, _)| format!("{n}:{}", &d.hex()[..12]))
            .collect::<Vec<_>>()
            .join(",")
    };
    Err(PublishError::Mismatch {
        path: input.into(),
        reason: format!(
            "{} atoms [{}] but {} atoms [{}]",
            a.format,
            names(&left),
            b.format,
            names(&right)
        ),
    })
}

/// Stores one file of a version where the registry keeps its blobs.
fn store_blob(storage: &Storage, bytes: &Bytes) -> Result<BlobReport, PublishError> {
    Ok(BlobReport {
        sha256: storage.blobs.put(bytes)?,
        size: bytes.len() as u64,
    })
}

/// The module of [`package_dir`]: a WASI command that exits with 0.
#[cfg(test)]
const WAT: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") i32.const 0 call $exit))"#;

/// Writes a package directory, for tests: one WASI module, one command, one `[fs]` data
/// directory.
#[cfg(test)]
pub(crate) fn package_dir(dir: &Path, name: &str, version: &str) {
    let toml = format!(
        r#"[package]
name = "{name}"
version = "{version}"
description = "a test package"

[[module]]
name = "hello"
source = "hello.wasm"
abi = "wasi"

[[command]]
name = "hello"
module = "hello"
runner = "wasi"

[fs]
"/data" = "data"
"#
    );
    std::fs::write(dir.join("wasmer.toml"), toml).unwrap();
    std::fs::write(dir.join("hello.wasm"), wat::parse_str(WAT).unwrap()).unwrap();
    std::fs::create_dir_all(dir.join("data/sub")).unwrap();
    std::fs::write(dir.join("data/greeting.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("data/sub/more.txt"), "more\n").unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_path(root: &Path, blob: &BlobReport) -> PathBuf {
        root.join("blobs")
            .join(format!("{}.webc", blob.sha256.hex()))
    }

    fn check_blob(root: &Path, blob: &BlobReport, magic: &[u8]) -> Vec<u8> {
        let bytes = std::fs::read(blob_path(root, blob)).unwrap();
        assert!(bytes.starts_with(magic), "{:?}", &bytes[..8]);
        assert_eq!(bytes.len() as u64, blob.size);
        assert_eq!(Sha256Digest::of(&bytes), blob.sha256);
        bytes
    }

    #[test]
    fn add_a_directory_then_its_webc_files() {
        let tmp = tempfile::tempdir().unwrap();
        let pkg = tmp.path().join("pkg");
        std::fs::create_dir(&pkg).unwrap();
        package_dir(&pkg, "Test/Hello", "1.0.0");
        let root = tmp.path().join("registry");

        let report = add(&Storage::local(&root), &pkg, &AddOptions::default()).unwrap();
        assert_eq!(report.package.as_str(), "test/hello");
        assert_eq!(report.version, "1.0.0");
        let v2 = check_blob(&root, &report.v2, b"\0webc002");
        let v3 = check_blob(&root, &report.v3, b"\0webc003");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["package"], "test/hello");
        assert_eq!(json["v2"]["sha256"], report.v2.sha256.hex());
        assert_eq!(json["v3"]["size"], report.v3.size);

        // Both forms hold the module and the data volume.
        for bytes in [&v2, &v3] {
            let checked = container::open(Bytes::from(bytes.clone())).unwrap();
            let atoms = checked.atoms();
            assert_eq!(atoms.len(), 1);
            assert_eq!(atoms[0].0, "hello");
            assert!(checked.manifest().commands.contains_key("hello"));
        }

        // The manifests stored as JSON read back as WebC manifests.
        let mut db = Db::open_existing(&super::super::db::Database::new(&root, None).unwrap())
            .unwrap()
            .unwrap();
        let record = db.package(&report.package).unwrap().unwrap();
        for blob in [&record.versions[0].v2, &record.versions[0].v3] {
            let _: webc::metadata::Manifest = serde_json::from_str(&blob.manifest).unwrap();
        }
        drop(db);

        // Adding it again is refused, unless forced.
        let err = add(&Storage::local(&root), &pkg, &AddOptions::default()).unwrap_err();
        assert!(matches!(err, PublishError::Exists { .. }), "{err}");
        assert!(err.is_input());
        assert!(err.to_string().contains("--force"), "{err}");
        let forced = AddOptions {
            force: true,
            ..AddOptions::default()
        };
        assert_eq!(add(&Storage::local(&root), &pkg, &forced).unwrap(), report);

        // Each produced file is an input too; the containers carry no name, so one is given.
        for (blob, format) in [(&report.v2, "v2"), (&report.v3, "v3")] {
            let file = tmp.path().join(format!("hello-{format}.webc"));
            std::fs::copy(blob_path(&root, blob), &file).unwrap();
            let other = tmp.path().join(format!("other-{format}"));
            let err = add(&Storage::local(&other), &file, &AddOptions::default()).unwrap_err();
            assert!(matches!(err, PublishError::NoName), "{err}");
            assert!(!other.exists());
            let opts = AddOptions {
                name: Some("test/copy".parse().unwrap()),
                version: Some(semver::Version::new(2, 0, 0)),
                ..AddOptions::default()
            };
            let again = add(&Storage::local(&other), &file, &opts).unwrap();
            assert_eq!(again.package.as_str(), "test/copy");
            assert_eq!(again.version, "2.0.0");
            // The input's own format is stored as it is.
            let kept = if format == "v2" { &again.v2 } else { &again.v3 };
            assert_eq!(kept, blob);
            check_blob(&other, &again.v2, b"\0webc002");
            check_blob(&other, &again.v3, b"\0webc003");
        }

        // Archiving.
        let version = semver::Version::new(1, 0, 0);
        set_archived(
            &Storage::local(&root),
            &report.package,
            &version,
            true,
            None,
        )
        .unwrap();
        let mut db = Db::open_existing(&super::super::db::Database::new(&root, None).unwrap())
            .unwrap()
            .unwrap();
        assert!(db.package(&report.package).unwrap().unwrap().versions[0].archived);
        let err = set_archived(
            &Storage::local(&root),
            &report.package,
            &semver::Version::new(9, 9, 9),
            true,
            None,
        )
        .unwrap_err();
        assert!(matches!(err, PublishError::NoSuchVersion { .. }) && err.is_input());
        let nowhere = tmp.path().join("nowhere");
        assert!(
            set_archived(
                &Storage::local(&nowhere),
                &report.package,
                &version,
                true,
                None
            )
            .is_err()
        );
        assert!(!nowhere.exists());
    }

    #[test]
    fn a_package_larger_than_memory_keeps_is_staged_on_disk_and_stored_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let pkg = tmp.path().join("pkg");
        std::fs::create_dir(&pkg).unwrap();
        package_dir(&pkg, "test/large", "1.0.0");
        // Bytes no compressor shortens, past the size that stays in memory.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let large: Vec<u8> = (0..crate::staging::KEEP_IN_MEMORY + 4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(pkg.join("data/large.bin"), &large).unwrap();
        let root = tmp.path().join("registry");
        std::fs::create_dir_all(root.join("tmp")).unwrap();

        let from_dir = add(&Storage::local(&root), &pkg, &AddOptions::default()).unwrap();
        let v3 = check_blob(&root, &from_dir.v3, b"\0webc003");
        check_blob(&root, &from_dir.v2, b"\0webc002");
        let checked = container::open(Bytes::from(v3.clone())).unwrap();
        let volume = checked.container.get_volume("/data").unwrap();
        assert_eq!(
            volume.read_file("/large.bin").unwrap().0.as_ref(),
            &large[..]
        );

        // The stored v3 file, added again as a file under another version: copied, not read.
        let file = tmp.path().join("large.webc");
        std::fs::write(&file, &v3).unwrap();
        let opts = AddOptions {
            name: Some("test/large".parse().unwrap()),
            version: Some(semver::Version::new(2, 0, 0)),
            ..AddOptions::default()
        };
        let from_file = add(&Storage::local(&root), &file, &opts).unwrap();
        assert_eq!(from_file.v3.sha256, from_dir.v3.sha256);
        assert_eq!(from_file.v2.sha256, from_dir.v2.sha256);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn bad_inputs_are_refused_before_the_root_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("registry");
        let refused = |input: &Path, opts: &AddOptions| {
            let err = add(&Storage::local(&root), input, opts).unwrap_err();
            assert!(err.is_input(), "not an input error: {err}");
            assert!(!err.to_string().contains('\n'), "{err:?}");
            assert!(!root.exists(), "the root was created by {input:?}: {err}");
            err
        };
        let fresh = |name: &str| {
            let dir = tmp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            package_dir(&dir, "test/hello", "1.0.0");
            dir
        };
        let defaults = AddOptions::default();

        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = refused(&empty, &defaults);
        assert!(
            matches!(err, PublishError::Dir(DirError::NoManifest(_))),
            "{err}"
        );
        assert!(err.to_string().starts_with("no wasmer.toml"), "{err}");

        let escape = fresh("escape");
        std::fs::write(tmp.path().join("escape.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let toml = std::fs::read_to_string(escape.join("wasmer.toml")).unwrap();
        let bad = toml.replace("source = \"hello.wasm\"", "source = \"../escape.wasm\"");
        std::fs::write(escape.join("wasmer.toml"), bad).unwrap();
        let err = refused(&escape, &defaults);
        assert!(
            matches!(err, PublishError::Dir(DirError::Escapes { .. })),
            "{err}"
        );

        let absolute = fresh("absolute");
        let bad = toml.replace("\"/data\" = \"data\"", "\"/data\" = \"/etc\"");
        std::fs::write(absolute.join("wasmer.toml"), bad).unwrap();
        let err = refused(&absolute, &defaults);
        assert!(
            matches!(err, PublishError::Dir(DirError::Escapes { .. })),
            "{err}"
        );

        #[cfg(unix)]
        {
            let linked = fresh("linked");
            std::fs::remove_dir_all(linked.join("data")).unwrap();
            std::os::unix::fs::symlink(tmp.path(), linked.join("data")).unwrap();
            let err = refused(&linked, &defaults);
            assert!(
                matches!(err, PublishError::Dir(DirError::Escapes { .. })),
                "{err}"
            );
        }

        let missing = fresh("missing");
        std::fs::remove_file(missing.join("hello.wasm")).unwrap();
        let err = refused(&missing, &defaults);
        assert!(
            matches!(err, PublishError::Dir(DirError::Missing { .. })),
            "{err}"
        );

        let broken = fresh("broken");
        std::fs::write(broken.join("wasmer.toml"), "[package\nname = 1").unwrap();
        let err = refused(&broken, &defaults);
        assert!(
            matches!(err, PublishError::Dir(DirError::BadManifest { .. })),
            "{err}"
        );

        let badname = fresh("badname");
        let bad = toml.replace("name = \"test/hello\"", "name = \"a/b/c\"");
        std::fs::write(badname.join("wasmer.toml"), bad).unwrap();
        let err = refused(&badname, &defaults);
        assert!(matches!(err, PublishError::BadName { .. }), "{err}");
        assert!(err.to_string().contains("--name"), "{err}");

        let not_webc = tmp.path().join("not.webc");
        std::fs::write(&not_webc, b"this is not a container").unwrap();
        let err = refused(&not_webc, &defaults);
        assert!(matches!(err, PublishError::NotWebc(_)), "{err}");
        assert!(err.to_string().contains("is not a WebC file"), "{err}");

        let truncated = tmp.path().join("truncated.webc");
        std::fs::write(&truncated, b"\0webc003garbage").unwrap();
        let err = refused(&truncated, &defaults);
        assert!(matches!(err, PublishError::Container { .. }), "{err}");

        let err = refused(&tmp.path().join("does-not-exist"), &defaults);
        assert!(matches!(err, PublishError::ReadInput { .. }), "{err}");

        // A duplicate: the registry exists, and nothing in it changes.
        let good = fresh("good");
        add(&Storage::local(&root), &good, &defaults).unwrap();
        let listing = |dir: &Path| {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let blobs = listing(&root.join("blobs"));
        let err = add(&Storage::local(&root), &good, &defaults).unwrap_err();
        assert!(
            matches!(err, PublishError::Exists { .. }) && err.is_input(),
            "{err}"
        );
        assert_eq!(listing(&root.join("blobs")), blobs);
    }
}
