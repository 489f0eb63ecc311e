//! The project's own names for what a registry offers: package names, version requests, WebC
//! formats, SHA-256 digests and distributions.
//!
//! Everything that arrives from outside (the command line, a registry's answer, a package's
//! manifest) is parsed into these types at the edge, so that the rest of webcpm never handles a
//! raw string where a checked value is meant. Parsing never panics: every failure is an
//! [`InputError`] that names the offending text and what was expected.
//!
//! # Package names
//!
//! The Wasmer registry has namespaces (`wasmer/python`) and one legacy global namespace, `_`,
//! which holds packages published before namespaces existed (`_/cowsay`). The Wasmer CLI accepts
//! for a registry package `[registry:]namespace/name[@tag]` or a bare `name[@tag]`
//! (`NamedPackageIdent` in `wasmer-config`): the text is trimmed, split at its last `@` (an empty
//! tag is no tag), then at its last `/`; without a `/`, the name has no namespace. It sends a
//! bare name to the registry as it is (`getPackage(name: "cowsay")`), and the registry answers
//! with the package's namespace, `_`.
//!
//! webcpm accepts the same three forms, `ns/name`, `_/name` and `name`, each with an optional
//! `@version-or-requirement`, and spells every name one way: a bare `name` *is* `_/name`. So
//! `cowsay`, `_/cowsay` and `_/Cowsay` are one package, stored, listed, pinned and installed as
//! `_/cowsay`, and `_/cowsay` is what is sent to the registry (which knows it by that name too).
//! Dependencies written either way are the same package. What the Wasmer CLI accepts and
//! webcpm does not: a registry prefix (`registry.example.com:ns/name`; use `--registry`), URLs
//! and paths (not registry packages), named tags (`@stable`), and characters other than ASCII
//! letters, digits, `-` and `_` in a name part (the Wasmer CLI checks none; the registry itself
//! accepts no others). A full version (`@1.2.3`) means exactly that version, as in
//! `cargo install`, where the Wasmer CLI reads it as `^1.2.3`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a piece of outside input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "invalid package name `{0}`: expected `namespace/name`, `_/name` or `name`, made of letters, digits, `-` and `_`"
    )]
    PackageName(String),
    #[error(
        "`{0}` names a registry in the package name; webcpm takes the registry from --registry or WEBCPM_REGISTRY: pass `namespace/name`"
    )]
    RegistryPrefix(String),
    #[error("invalid version `{text}`: {reason}")]
    Version { text: String, reason: String },
    #[error("invalid version requirement `{text}`: {reason}")]
    VersionReq { text: String, reason: String },
    #[error("invalid SHA-256 digest `{0}`: expected 64 hexadecimal digits")]
    Digest(String),
    #[error("unknown WebC format `{0}`: expected `v2` or `v3`")]
    WebcVersion(String),
    #[error("unknown ABI `{0}`: expected preview0, preview1, wasix32, wasix64 or other")]
    Abi(String),
}

/// A package's name, `namespace/name`, as the Wasmer registry spells it. A bare `name` is in the
/// legacy global namespace and is kept as `_/name` (see the module's documentation).
///
/// Names are compared case-insensitively (legacy packages have mixed case), so they are kept in
/// lower case: two spellings of one name are one package everywhere in webcpm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName {
    full: String,
    slash: usize,
}

impl PackageName {
    /// The longest name (both parts and the slash) that is accepted.
    pub const MAX_LEN: usize = 128;

    /// The legacy global namespace, where a bare `name` lives.
    pub const GLOBAL_NAMESPACE: &str = "_";

    /// Whether the package is in the global namespace `_`.
    pub fn is_global(&self) -> bool {
        self.namespace() == Self::GLOBAL_NAMESPACE
    }

    pub fn namespace(&self) -> &str {
        &self.full[..self.slash]
    }

    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

fn valid_name_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

impl FromStr for PackageName {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || InputError::PackageName(text.to_string());
        let trimmed = text.trim();
        let (namespace, name) = match trimmed.split_once('/') {
            Some((namespace, name)) => (namespace, name),
            None => (Self::GLOBAL_NAMESPACE, trimmed),
        };
        if namespace.contains(':') && !trimmed.contains("://") {
            return Err(InputError::RegistryPrefix(text.to_string()));
        }
        let namespace_ok = namespace == Self::GLOBAL_NAMESPACE || valid_name_part(namespace);
        if !namespace_ok || !valid_name_part(name) {
            return Err(bad());
        }
        let full = format!("{namespace}/{name}").to_ascii_lowercase();
        if full.len() > Self::MAX_LEN {
            return Err(bad());
        }
        Ok(PackageName {
            full,
            slash: namespace.len(),
        })
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.full)
    }
}

impl Serialize for PackageName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

/// Parses a published version (`1.2.3`, `0.1.0-rc.1`).
pub fn parse_version(text: &str) -> Result<semver::Version, InputError> {
    semver::Version::parse(text.trim()).map_err(|e| InputError::Version {
        text: text.to_string(),
        reason: e.to_string(),
    })
}

/// Which versions of a package a request accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRequest {
    /// `latest`, or no version given: the highest version that is not archived.
    Latest,
    /// A full version (`1.2.3`): that version and no other, as `cargo install foo@1.2.3` means.
    Exact(semver::Version),
    /// A semver requirement (`^1.2`, `~1`, `>=1, <2`, `=1.0.0`).
    Req(semver::VersionReq),
}

impl VersionRequest {
    /// Whether the request names `version` and no other (`1.2.3`, `=1.2.3`): a yanked
    /// (archived) version is still taken then, as cargo takes a yanked version that a lockfile
    /// or an exact `=` names.
    pub fn pins(&self, version: &semver::Version) -> bool {
        match self {
            VersionRequest::Exact(v) => v == version,
            VersionRequest::Req(req) => match req.comparators.as_slice() {
                [c] => {
                    c.op == semver::Op::Exact
                        && c.minor.is_some()
                        && c.patch.is_some()
                        && req.matches(version)
                }
                _ => false,
            },
            VersionRequest::Latest => false,
        }
    }

    pub fn matches(&self, version: &semver::Version) -> bool {
        match self {
            VersionRequest::Latest => version.pre.is_empty(),
            VersionRequest::Exact(v) => v == version,
            VersionRequest::Req(req) => req.matches(version),
        }
    }
}

impl FromStr for VersionRequest {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text == "latest" || text == "*" {
            return Ok(VersionRequest::Latest);
        }
        if let Ok(v) = semver::Version::parse(text) {
            return Ok(VersionRequest::Exact(v));
        }
        semver::VersionReq::parse(text)
            .map(VersionRequest::Req)
            .map_err(|e| InputError::VersionReq {
                text: text.to_string(),
                reason: e.to_string(),
            })
    }
}

impl fmt::Display for VersionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRequest::Latest => f.write_str("latest"),
            VersionRequest::Exact(v) => write!(f, "{v}"),
            VersionRequest::Req(r) => write!(f, "{r}"),
        }
    }
}

/// What a user asks for: `ns/name`, `ns/name@1.2.3`, `ns/name@^1.2`, `ns/name@latest`, and the
/// same with `_/name` or a bare `name` (the global namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    pub name: PackageName,
    pub version: VersionRequest,
}

impl FromStr for PackageSpec {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // As the Wasmer CLI does: trimmed, split at the last `@`; an empty tag is no tag.
        let text = text.trim();
        let (name, version) = match text.rsplit_once('@') {
            Some((name, version)) => (name, version.parse()?),
            None => (text, VersionRequest::Latest),
        };
        Ok(PackageSpec {
            name: name.parse()?,
            version,
        })
    }
}

impl fmt::Display for PackageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            VersionRequest::Latest => write!(f, "{}", self.name),
            v => write!(f, "{}@{v}", self.name),
        }
    }
}

/// What became of one candidate format of an install, as `resolve --explain`, the index and
/// `install` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateOutcome {
    /// The format installed (or, before downloading, the one to try first).
    Chosen,
    /// Not usable: not offered by every member of the tree, or not a valid node.
    Skipped,
    /// Usable, but an earlier format was chosen (or it is not allowed).
    NotTried,
    /// Tried, and its download or checks failed.
    Failed,
}

impl CandidateOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateOutcome::Chosen => "chosen",
            CandidateOutcome::Skipped => "skipped",
            CandidateOutcome::NotTried => "not_tried",
            CandidateOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for CandidateOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for CandidateOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            CandidateOutcome::Chosen,
            CandidateOutcome::Skipped,
            CandidateOutcome::NotTried,
            CandidateOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not a candidate outcome"))
    }
}

/// The two container formats a registry offers every version in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebcVersion {
    V2,
    V3,
}

impl WebcVersion {
    pub const ALL: [WebcVersion; 2] = [WebcVersion::V2, WebcVersion::V3];

    pub fn as_str(self) -> &'static str {
        match self {
            WebcVersion::V2 => "v2",
            WebcVersion::V3 => "v3",
        }
    }

    /// The version of the `webc` crate's reader and writer for this format.
    pub fn to_webc(self) -> webc::Version {
        match self {
            WebcVersion::V2 => webc::Version::V2,
            WebcVersion::V3 => webc::Version::V3,
        }
    }

    pub fn from_webc(version: webc::Version) -> Option<Self> {
        match version {
            webc::Version::V2 => Some(WebcVersion::V2),
            webc::Version::V3 => Some(WebcVersion::V3),
            _ => None,
        }
    }

    /// The other format: the one to fall back to.
    pub fn other(self) -> Self {
        match self {
            WebcVersion::V2 => WebcVersion::V3,
            WebcVersion::V3 => WebcVersion::V2,
        }
    }
}

impl FromStr for WebcVersion {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "v2" | "2" => Ok(WebcVersion::V2),
            "v3" | "3" => Ok(WebcVersion::V3),
            _ => Err(InputError::WebcVersion(text.to_string())),
        }
    }
}

impl fmt::Display for WebcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The system interface an atom is built for, as its imports say (WebC manifests do not say it:
/// the runner is `https://webc.org/runner/wasi` for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Abi {
    /// WASI preview 0: imports from `wasi_unstable`.
    Preview0,
    /// WASI preview 1: imports from `wasi_snapshot_preview1`.
    Preview1,
    /// WASIX on 32-bit memory: imports from `wasix_32v1`.
    Wasix32,
    /// WASIX on 64-bit memory: imports from `wasix_64v1` or `wasix_http_client_v1`.
    Wasix64,
    /// WASI preview 1 with threads (`wasm32-wasip1-threads`): imports `wasi`.`thread-spawn`
    /// and a shared memory. Wasmer runs these; wasmtime's CLI dropped its wasi-threads.
    #[serde(rename = "wasi-threads")]
    WasiThreads,
    /// None of these: a module with no WASI imports, or another interface.
    Other,
}

impl Abi {
    pub fn as_str(self) -> &'static str {
        match self {
            Abi::Preview0 => "preview0",
            Abi::Preview1 => "preview1",
            Abi::Wasix32 => "wasix32",
            Abi::Wasix64 => "wasix64",
            Abi::WasiThreads => "wasi-threads",
            Abi::Other => "other",
        }
    }

    /// Whether Wasmer's WASIX implementation runs it: WASIX, and wasi-threads (which it
    /// implements too); everything else runs on wasmtime.
    pub fn on_wasmer(self) -> bool {
        matches!(self, Abi::Wasix32 | Abi::Wasix64 | Abi::WasiThreads)
    }
}

impl FromStr for Abi {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            Abi::Preview0,
            Abi::Preview1,
            Abi::Wasix32,
            Abi::Wasix64,
            Abi::WasiThreads,
            Abi::Other,
        ]
        .into_iter()
        .find(|abi| abi.as_str() == text)
        .ok_or_else(|| InputError::Abi(text.to_string()))
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A SHA-256 digest, compared as bytes and shown as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Sha256Digest(sha2::Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Sha256Digest {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let mut out = [0u8; 32];
        if text.len() != 64 || hex::decode_to_slice(text, &mut out).is_err() {
            return Err(InputError::Digest(text.chars().take(80).collect()));
        }
        Ok(Sha256Digest(out))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A dependency that a package's manifest declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The name the package uses for it (the manifest's key).
    pub alias: String,
    pub spec: PackageSpec,
}

/// One format of one package version, as a registry offers it: where to download it and what
/// the bytes must be.
///
/// The URL and the SHA-256 are required; the rest may be missing, as the real registry leaves
/// them null for many versions. The SHA-256 is the proof of the bytes: without a size the
/// download is bounded by `download.max_size` and by the server's `Content-Length`; without a
/// `webcVersion` the node is taken to be the format its alias asks for (the bytes are checked
/// anyway); without a manifest, the manifest comes from the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// The format this node was asked for.
    pub webc: WebcVersion,
    pub url: String,
    pub sha256: Sha256Digest,
    /// `piritaSize`, when the registry gives it.
    pub size: Option<u64>,
    /// The format the registry says the bytes are in (`webcVersion`); fetch checks the bytes.
    pub claimed: Option<WebcVersion>,
    /// The dependencies named in the node's `webcManifest`.
    pub dependencies: Vec<Dependency>,
    /// The node's `webcManifest`, as JSON text, when it sent one.
    pub manifest: Option<String>,
    /// `piritaExpiresInSeconds`: the URL is signed and stops working after this long.
    pub expires_in: Option<u64>,
}

impl Distribution {
    /// The registry's names of the optional fields this node left out.
    pub fn left_out(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.size.is_none() {
            fields.push("piritaSize");
        }
        if self.claimed.is_none() {
            fields.push("webcVersion");
        }
        if self.manifest.is_none() {
            fields.push("webcManifest");
        }
        fields
    }
}

/// What a registry said about one format of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A usable node: a URL and a SHA-256, and whatever else it gave.
    Offered(Distribution),
    /// The node is absent, or both its URL and its hash are null: the format is not offered.
    NotOffered,
    /// The node is there but cannot be used (a hash that is not a SHA-256, a hash without a
    /// URL, a bad URL, a manifest that does not parse); the text says what was wrong.
    Invalid(String),
}

impl Offer {
    pub fn distribution(&self) -> Option<&Distribution> {
        match self {
            Offer::Offered(d) => Some(d),
            _ => None,
        }
    }
}

/// One version of a package with both of its formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: PackageName,
    pub version: semver::Version,
    pub archived: bool,
    /// When it was published (Unix seconds), as the registry says (`createdAt`); `None` when it
    /// does not.
    pub published_at: Option<i64>,
    /// Who published it (`publishedBy { username }`); `None` when the registry does not say.
    pub publisher: Option<String>,
    pub v2: Offer,
    pub v3: Offer,
}

impl Release {
    pub fn offer(&self, webc: WebcVersion) -> &Offer {
        match webc {
            WebcVersion::V2 => &self.v2,
            WebcVersion::V3 => &self.v3,
        }
    }

    /// Why none of `formats` can be used, or `None` when one of them can. A version that cannot
    /// be had in any allowed format is skipped by the resolver, as Wasmer's resolver skips
    /// versions whose metadata it cannot use.
    pub fn unusable(&self, formats: &[WebcVersion]) -> Option<String> {
        let mut reasons = Vec::new();
        for &webc in formats {
            match self.offer(webc) {
                Offer::Offered(_) => return None,
                Offer::NotOffered => reasons.push(format!("{webc}: not offered")),
                Offer::Invalid(why) => reasons.push(format!("{webc}: {why}")),
            }
        }
        Some(reasons.join("; "))
    }

    /// Whether the v2 and v3 nodes name the same file (one hash), as the real registry answers
    /// for versions published before WebC v3 existed.
    pub fn shared_file(&self) -> Option<&Distribution> {
        match (self.v2.distribution(), self.v3.distribution()) {
            (Some(v2), Some(v3)) if v2.sha256 == v3.sha256 => Some(v2),
            _ => None,
        }
    }
}

/// Reads the dependencies out of a WebC manifest's `use` map. Entries that are URLs or vendored
/// manifests are not registry packages and are left to the runtime; a registry entry that does
/// not parse is an error naming it.
pub fn dependencies_of(manifest: &webc::metadata::Manifest) -> Result<Vec<Dependency>, String> {
    use webc::metadata::UrlOrManifest;
    let mut deps = Vec::new();
    for (alias, target) in &manifest.use_map {
        if let UrlOrManifest::RegistryDependentUrl(text) = target {
            let spec: PackageSpec = text
                .parse()
                .map_err(|e| format!("dependency `{alias}` = `{text}`: {e}"))?;
            deps.push(Dependency {
                alias: alias.clone(),
                spec,
            });
        }
    }
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_folded() {
        let n: PackageName = "Wasmer/Python_3-x".parse().unwrap();
        assert_eq!(n.as_str(), "wasmer/python_3-x");
        assert_eq!(n.namespace(), "wasmer");
        assert_eq!(n.name(), "python_3-x");
        for bad in [
            "",
            "/b",
            "a/",
            "a/b/c",
            "a/../b",
            "a b/c",
            "-a/b",
            "a/b@",
            "__/b",
            "_a/b",
            "@1",
            "./x",
            "https://registry.wasmer.io/ns/name",
        ] {
            assert!(bad.parse::<PackageName>().is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            "registry.example.com:ns/name".parse::<PackageName>(),
            Err(InputError::RegistryPrefix(_))
        ));
    }

    #[test]
    fn a_bare_name_is_in_the_global_namespace() {
        for text in ["cowsay", "_/cowsay", "_/CowSay", "  cowsay "] {
            let n: PackageName = text.parse().unwrap();
            assert_eq!(n.as_str(), "_/cowsay", "{text}");
            assert_eq!((n.namespace(), n.name()), ("_", "cowsay"));
            assert!(n.is_global());
        }
        assert!(!"wasmer/python".parse::<PackageName>().unwrap().is_global());
        let s: PackageSpec = "cowsay@^0.2".parse().unwrap();
        assert_eq!(s.to_string(), "_/cowsay@^0.2");
        let s: PackageSpec = "cowsay@".parse().unwrap();
        assert_eq!(s.version, VersionRequest::Latest);
        let s: PackageSpec = "_/cowsay@0.2.0".parse().unwrap();
        assert_eq!(
            s.version,
            VersionRequest::Exact(semver::Version::new(0, 2, 0))
        );
        assert!("cowsay@stable".parse::<PackageSpec>().is_err());
        let long = "a".repeat(PackageName::MAX_LEN - 1);
        assert!(long.parse::<PackageName>().is_err(), "`_/` counts");
    }

    #[test]
    fn specs_parse_versions_and_requirements() {
        let s: PackageSpec = "ns/pkg@1.2.3".parse().unwrap();
        assert_eq!(
            s.version,
            VersionRequest::Exact(semver::Version::new(1, 2, 3))
        );
        let s: PackageSpec = "ns/pkg@^1".parse().unwrap();
        assert!(s.version.matches(&semver::Version::new(1, 9, 0)));
        assert!(!s.version.matches(&semver::Version::new(2, 0, 0)));
        let s: PackageSpec = "ns/pkg@latest".parse().unwrap();
        assert_eq!(s.version, VersionRequest::Latest);
        assert!("ns/pkg@not a version".parse::<PackageSpec>().is_err());
    }

    #[test]
    fn digests_round_trip() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(d.hex().parse::<Sha256Digest>().unwrap(), d);
        assert!("zz".parse::<Sha256Digest>().is_err());
        assert!("ab".repeat(33).parse::<Sha256Digest>().is_err());
    }
}
