//! Settings: every configurable value, typed once, with the layer it came from.
//!
//! Layers, lowest first: the built-in defaults (`config/default.toml`, compiled in) < the system
//! file (`/etc/webcpm/config.toml`) < the user file (`$XDG_CONFIG_HOME/webcpm/config.toml` or
//! `--config FILE`) < the environment (`WEBCPM_*`, all listed in [`ENV_VARS`]) < command-line
//! flags. [`Settings::load`] layers them ([`layers`]) and then checks and types every value at
//! once: the rest of webcpm reads fields (`settings.download.retries.val`), never dotted keys,
//! and each field keeps its [`Layer`] beside it, as cargo's `Value<T>` does.
//!
//! This module reads the files it is given; it never reads the environment itself: the CLI passes
//! the variables in ([`env::layer`]), so that a library user decides what applies.

mod edit;
pub mod env;
pub mod keys;
mod layers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use edit::{Edit, EditError, Readers, edit_file};
pub use env::ENV_VARS;
pub use layers::{Layer, SettingsError, Sources, parse_value};

use layers::Layered;

use ed25519_dalek::VerifyingKey;

use crate::fetch::FetchOptions;
use crate::fleet::SourceConfig;
use crate::http::HttpOptions;
use crate::package::{PackageName, WebcVersion};
use crate::policy::{Forced, Policy, Rollout};
use crate::runtime::{CacheConfig, Limits};

/// The fleet-wide file.
pub const SYSTEM_FILE: &str = "/etc/webcpm/config.toml";

/// A typed value and the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<T> {
    pub val: T,
    pub layer: Layer,
}

/// `[registry]`.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub url: Value<String>,
    pub token: Option<Value<String>>,
    /// The registry URL the token is for ([`RegistrySettings::configured_token`]).
    pub token_for: Option<String>,
    /// `registry.credential_process`: a command and its arguments; empty for none.
    pub credential_process: Value<Vec<String>>,
    /// CA certificates trusted on top of the system's; `None`: the system's only.
    pub ca_file: Value<Option<PathBuf>>,
}

impl RegistrySettings {
    /// The configured token (`registry.token`), if it may be sent to `url`: a token set in a
    /// file is for the registry URL in force in that file; one from the environment, for the
    /// URL in force there or one that `--registry` names. A registry that a lockfile names gets
    /// a token only when it is that same URL.
    pub fn configured_token(&self, url: &str) -> Option<&Value<String>> {
        let token = self.token.as_ref()?;
        let bound = self.token_for.as_deref()?;
        same_url(bound, url).then_some(token)
    }
}

/// Whether two registry URLs are the same once parsed (case of the host, default port, an
/// empty path).
pub fn same_url(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `[webc]` and `[rollout]`: what the format policy is built from.
#[derive(Debug, Clone)]
pub struct FormatSettings {
    pub priority: Value<Vec<WebcVersion>>,
    pub fallback: Value<bool>,
    pub v3_percent: Value<u8>,
    pub rolled_back: Value<bool>,
    /// `[packages."ns/name"] webc = ...`.
    pub pins: BTreeMap<PackageName, Value<WebcVersion>>,
    /// Set by `--webc` or `WEBCPM_WEBC`.
    pub forced: Option<Forced>,
}

/// Whose rollout this machine follows (`rollout.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// The registry's signed policy.
    Registry,
    /// The local config only.
    Local,
}

/// `rollout.source`, `policy_key`, `policy_url`, `refresh` and `[telemetry]`: the registry's
/// policy and the outcome reports.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// `auto` already decided: registry when a key is pinned.
    pub source: Value<PolicySource>,
    pub policy_key: Value<Option<VerifyingKey>>,
    pub policy_url: Value<Option<String>>,
    pub refresh: Value<Duration>,
    pub report: Value<bool>,
    /// `telemetry.report_token`: sent with the reports, to the policy's registry only.
    pub report_token: Option<Value<String>>,
}

/// `[download]`.
#[derive(Debug, Clone)]
pub struct DownloadSettings {
    pub concurrency: Value<usize>,
    pub max_size: Value<u64>,
    pub retries: Value<u32>,
    pub timeout: Value<Duration>,
    pub allow_insecure_http: Value<bool>,
}

/// `[store]` and `[compile]`.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The store's capacity; `None`: no limit.
    pub max_size: Value<Option<u64>>,
    pub compile_cache: Value<bool>,
    /// Where compiled code is kept; `None`: the store's `compiled/`.
    pub compile_directory: Value<Option<PathBuf>>,
    pub compile_capacity: Value<Option<u64>>,
    /// The fleet's shared compiled code, `oci://HOST/REPO`; `None`: compile here only.
    pub compile_shared: Value<Option<String>>,
    /// The fleet's public key for compiled code; set whenever `compile_shared` is.
    pub compile_shared_key: Value<Option<VerifyingKey>>,
    /// The file of the fleet's signing key, on the machines that push compiled code.
    pub compile_shared_signing_key: Value<Option<PathBuf>>,
    /// Which atoms get baseline code first.
    pub compile_tiering: Value<crate::artifacts::Tiering>,
    /// How many times its file's size a package may unpack to.
    pub unpack_ratio: Value<u64>,
}

/// The fleet's shared compiled code, as [`Settings::shared_compile`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCompile {
    /// `oci://HOST/REPO`.
    pub url: String,
    /// Only artifacts this key signed are loaded.
    pub key: VerifyingKey,
    /// The signing key's file; `None`: pull, never push.
    pub signing_key: Option<PathBuf>,
}

/// `[run]`: limits on running programs.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub max_memory: Value<Option<u64>>,
    pub timeout: Value<Option<Duration>>,
    /// Every program gets the host's network (WASIX sockets), as with `run --net`.
    pub network: Value<bool>,
}

/// The effective configuration: typed values with their layers.
#[derive(Debug, Clone)]
pub struct Settings {
    pub registry: RegistrySettings,
    pub format: FormatSettings,
    pub download: DownloadSettings,
    pub store: StoreSettings,
    pub run: RunSettings,
    pub fleet: FleetSettings,
    pub resolve: ResolveSettings,
    /// The layers as written, for `config show` and `config get`.
    layered: Layered,
}

/// `[resolve]`: the cooldown.
#[derive(Debug, Clone)]
pub struct ResolveSettings {
    /// Seconds; 0: no cooldown.
    pub min_release_age: Value<u64>,
    pub exempt: Value<Vec<PackageName>>,
    pub allow_unknown_release_time: Value<bool>,
}

impl ResolveSettings {
    /// The cooldown, measured from `now` (Unix seconds).
    pub fn cooldown(&self, now: i64) -> crate::cooldown::Cooldown {
        crate::cooldown::Cooldown {
            min_age: Some(self.min_release_age.val).filter(|a| *a > 0),
            now,
            exempt: self.exempt.val.clone(),
            allow_unknown: self.allow_unknown_release_time.val,
        }
    }
}

/// `[resolve]`.
fn resolve(r: &Reader) -> Result<ResolveSettings, SettingsError> {
    Ok(ResolveSettings {
        min_release_age: r.typed(keys::MIN_RELEASE_AGE, |v| match v {
            toml::Value::String(text) => crate::cooldown::parse_age(text),
            toml::Value::Integer(0) => Ok(0),
            _ => Err("expected a duration such as \"7d\" or \"12h\" (\"0\": off)".into()),
        })?,
        exempt: r.typed(keys::MIN_RELEASE_AGE_EXEMPT, |v| {
            let items = v.as_array().ok_or("expected a list of package names")?;
            items
                .iter()
                .map(|item| {
                    let text = item.as_str().ok_or("each entry must be \"ns/name\"")?;
                    text.parse::<PackageName>()
                        .map_err(|e| format!("`{text}`: {e}"))
                })
                .collect()
        })?,
        allow_unknown_release_time: r.bool(keys::ALLOW_UNKNOWN_RELEASE_TIME)?,
    })
}

/// Reads typed values out of the layers, naming the key and the layer on a bad value.
struct Reader<'a>(&'a Layered);

impl Reader<'_> {
    fn raw(&self, key: &str) -> &(toml::Value, Layer) {
        &self.0.values[key]
    }

    fn typed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&toml::Value) -> Result<T, String>,
    ) -> Result<Value<T>, SettingsError> {
        let (value, layer) = self.raw(key);
        match parse(value) {
            Ok(val) => Ok(Value {
                val,
                layer: layer.clone(),
            }),
            Err(reason) => Err(SettingsError::Invalid {
                key: key.to_string(),
                value: value.to_string(),
                layer: layer.clone(),
                reason,
            }),
        }
    }

    fn int(&self, key: &str, min: i64, max: i64) -> Result<Value<i64>, SettingsError> {
        self.typed(key, |v| match v {
            toml::Value::Integer(n) if (min..=max).contains(n) => Ok(*n),
            _ => Err(format!("expected a whole number from {min} to {max}")),
        })
    }

    /// A whole number where 0 means "none".
    fn limit(&self, key: &str) -> Result<Value<Option<u64>>, SettingsError> {
        let Value { val, layer } = self.int(key, 0, i64::MAX)?;
        Ok(Value {
            val: (val > 0).then_some(val as u64),
            layer,
        })
    }

    fn bool(&self, key: &str) -> Result<Value<bool>, SettingsError> {
        self.typed(key, |v| {
            v.as_bool().ok_or_else(|| "expected true or false".into())
        })
    }

    fn text(&self, key: &str) -> Result<Value<String>, SettingsError> {
        self.typed(key, |v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| "expected text".into())
        })
    }

    /// A key without a default: `None` when unset or empty.
    fn optional_text(&self, key: &str) -> Result<Option<Value<String>>, SettingsError> {
        if !self.0.values.contains_key(key) {
            return Ok(None);
        }
        Ok(Some(self.text(key)?).filter(|t| !t.val.is_empty()))
    }
}

fn priority(value: &toml::Value) -> Result<Vec<WebcVersion>, String> {
    let toml::Value::Array(items) = value else {
        return Err("expected a list such as [\"v3\", \"v2\"]".into());
    };
    let mut priority = Vec::new();
    for item in items {
        let webc: WebcVersion = item
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or("each entry must be \"v2\" or \"v3\"")?;
        if !priority.contains(&webc) {
            priority.push(webc);
        }
    }
    if priority.is_empty() {
        return Err("name at least one format".into());
    }
    Ok(priority)
}

/// An ed25519 public key in hex, or `""` for none.
fn public_key(value: &toml::Value) -> Result<Option<VerifyingKey>, String> {
    match value.as_str() {
        Some("") => Ok(None),
        Some(text) => crate::fleet::document::parse_key(text)
            .map(Some)
            .map_err(|_| "expected an ed25519 public key in hex (64 digits)".into()),
        None => Err("expected text".into()),
    }
}

/// `[store]` and `[compile]`.
fn store(r: &Reader) -> Result<StoreSettings, SettingsError> {
    Ok(StoreSettings {
        max_size: r.limit(keys::STORE_MAX_SIZE)?,
        compile_cache: r.bool(keys::COMPILE_CACHE)?,
        compile_directory: r.typed(keys::COMPILE_DIRECTORY, path_or_none)?,
        compile_capacity: r.limit(keys::COMPILE_CAPACITY)?,
        compile_shared: compile_shared(r)?,
        compile_shared_key: r.typed(keys::COMPILE_SHARED_KEY, public_key)?,
        compile_shared_signing_key: r.typed(keys::COMPILE_SHARED_SIGNING_KEY, path_or_none)?,
        compile_tiering: r.typed(keys::COMPILE_TIERING, tiering)?,
        unpack_ratio: r.int(keys::UNPACK_RATIO, 1, 1000).map(|v| Value {
            val: v.val as u64,
            layer: v.layer,
        })?,
    })
}

/// `[run]`.
fn run(r: &Reader) -> Result<RunSettings, SettingsError> {
    let timeout = r.limit(keys::RUN_TIMEOUT)?;
    Ok(RunSettings {
        max_memory: r.limit(keys::MAX_MEMORY)?,
        timeout: Value {
            val: timeout.val.map(Duration::from_secs),
            layer: timeout.layer,
        },
        network: r.bool(keys::RUN_NETWORK)?,
    })
}

/// `rollout.source` and the other keys of the registry's policy.
fn fleet(r: &Reader) -> Result<FleetSettings, SettingsError> {
    let policy_key = r.typed(keys::POLICY_KEY, public_key)?;
    let pinned = policy_key.val.is_some();
    let source = r.typed(keys::ROLLOUT_SOURCE, |v| match v.as_str() {
        Some("registry") => Ok(PolicySource::Registry),
        Some("local") => Ok(PolicySource::Local),
        Some("auto") if pinned => Ok(PolicySource::Registry),
        Some("auto") => Ok(PolicySource::Local),
        _ => Err("expected \"registry\", \"local\" or \"auto\"".into()),
    })?;
    if source.val == PolicySource::Registry && !pinned {
        let (value, layer) = r.raw(keys::ROLLOUT_SOURCE);
        return Err(SettingsError::Invalid {
            key: keys::ROLLOUT_SOURCE.into(),
            value: value.to_string(),
            layer: layer.clone(),
            reason: format!(
                "following the registry needs its key: set {} (`webcpm registry keygen` prints it)",
                keys::POLICY_KEY
            ),
        });
    }
    Ok(FleetSettings {
        source,
        policy_key,
        policy_url: r.typed(keys::POLICY_URL, |v| match v.as_str() {
            Some("") => Ok(None),
            Some(url) => Ok(Some(url.to_string())),
            None => Err("expected a URL".into()),
        })?,
        refresh: r.typed(keys::POLICY_REFRESH, |v| match v.as_integer() {
            Some(n @ 1..=86400) => Ok(Duration::from_secs(n as u64)),
            _ => Err("expected a whole number of seconds from 1 to 86400".into()),
        })?,
        report: r.bool(keys::TELEMETRY_REPORT)?,
        report_token: r.optional_text(keys::REPORT_TOKEN)?,
    })
}

/// A path where the empty text means "none".
fn path_or_none(value: &toml::Value) -> Result<Option<PathBuf>, String> {
    match value.as_str() {
        Some("") => Ok(None),
        Some(dir) => Ok(Some(PathBuf::from(dir))),
        None => Err("expected a path".into()),
    }
}

/// `registry.credential_process`: a command line (words split at white space) or a list of
/// words; empty for none.
fn command_words(value: &toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::String(text) => Ok(text.split_whitespace().map(str::to_string).collect()),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "expected a command as text or a list of words".into()),
        _ => Err("expected a command as text or a list of words".into()),
    }
}

/// `compile.shared`: an OCI repository, or `""` for none.
fn oci_or_none(v: &toml::Value) -> Result<Option<String>, String> {
    match v.as_str() {
        Some("") => Ok(None),
        Some(url) if url.starts_with("oci://") => Ok(Some(url.to_string())),
        _ => Err("expected \"oci://HOST[:PORT]/REPOSITORY\" or \"\"".into()),
    }
}

/// `compile.shared`, checked against `compile.shared_key`: shared code is native code, loaded
/// only when the fleet's pinned key signed it, so a repository without a key is refused.
fn compile_shared(r: &Reader) -> Result<Value<Option<String>>, SettingsError> {
    let shared = r.typed(keys::COMPILE_SHARED, oci_or_none)?;
    let key = r.typed(keys::COMPILE_SHARED_KEY, public_key)?;
    if shared.val.is_some() && key.val.is_none() {
        let (value, layer) = r.raw(keys::COMPILE_SHARED);
        return Err(SettingsError::Invalid {
            key: keys::COMPILE_SHARED.into(),
            value: value.to_string(),
            layer: layer.clone(),
            reason: format!(
                "shared compiled code is native code, loaded only when the fleet's key signed it: set {} to the fleet's public key (`webcpm registry keygen --root DIR --json` makes one), or set {} = \"\" to compile here only",
                keys::COMPILE_SHARED_KEY,
                keys::COMPILE_SHARED
            ),
        });
    }
    Ok(shared)
}

/// `compile.tiering`.
fn tiering(v: &toml::Value) -> Result<crate::artifacts::Tiering, String> {
    use crate::artifacts::Tiering;
    match v.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("auto") => Ok(Tiering::Auto),
        Some("always") => Ok(Tiering::Always),
        Some("off") => Ok(Tiering::Off),
        _ => Err("expected \"auto\", \"always\" or \"off\"".into()),
    }
}

impl Settings {
    /// Layers the sources over the built-in defaults and checks and types every value.
    pub fn load(sources: &Sources) -> Result<Settings, SettingsError> {
        let layered = Layered::load(sources)?;
        let r = Reader(&layered);
        let token = r.optional_text(keys::REGISTRY_TOKEN)?;
        let settings = Settings {
            registry: RegistrySettings {
                url: r.text(keys::REGISTRY_URL)?,
                token,
                token_for: layered.token_for.clone(),
                credential_process: r.typed(keys::CREDENTIAL_PROCESS, command_words)?,
                ca_file: r.typed(keys::CA_FILE, path_or_none)?,
            },
            format: FormatSettings {
                priority: r.typed(keys::PRIORITY, priority)?,
                fallback: r.bool(keys::FALLBACK)?,
                v3_percent: r.int(keys::V3_PERCENT, 0, 100).map(|v| Value {
                    val: v.val as u8,
                    layer: v.layer,
                })?,
                rolled_back: r.bool(keys::ROLLED_BACK)?,
                pins: layered
                    .pins
                    .iter()
                    .map(|(n, (w, l))| {
                        (
                            n.clone(),
                            Value {
                                val: *w,
                                layer: l.clone(),
                            },
                        )
                    })
                    .collect(),
                forced: layered.forced.clone(),
            },
            download: DownloadSettings {
                concurrency: r.typed(keys::CONCURRENCY, |v| match v.as_integer() {
                    Some(n @ 1..=64) => Ok(n as usize),
                    _ => Err("expected a whole number from 1 to 64".into()),
                })?,
                max_size: r.typed(keys::MAX_SIZE, |v| match v.as_integer() {
                    Some(n) if n >= 1 => Ok(n as u64),
                    _ => Err(format!("expected a whole number from 1 to {}", i64::MAX)),
                })?,
                retries: r.typed(keys::RETRIES, |v| match v.as_integer() {
                    Some(n @ 0..=100) => Ok(n as u32),
                    _ => Err("expected a whole number from 0 to 100".into()),
                })?,
                timeout: r.typed(keys::TIMEOUT, |v| match v.as_integer() {
                    Some(n @ 1..=3600) => Ok(Duration::from_secs(n as u64)),
                    _ => Err("expected a whole number from 1 to 3600".into()),
                })?,
                allow_insecure_http: r.bool(keys::ALLOW_INSECURE_HTTP)?,
            },
            store: store(&r)?,
            run: run(&r)?,
            fleet: fleet(&r)?,
            resolve: resolve(&r)?,
            layered,
        };
        Ok(settings)
    }

    /// Every value as written, with its layer, for `config show`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &toml::Value, &Layer)> {
        self.layered
            .values
            .iter()
            .map(|(k, (v, l))| (k.as_str(), v, l))
    }

    /// One value as written, with its layer, for `config get`.
    pub fn get(&self, key: &str) -> Option<(&toml::Value, &Layer)> {
        self.layered.values.get(key).map(|(v, l)| (v, l))
    }

    /// Forces one format (`--webc`), over `WEBCPM_WEBC`.
    pub fn force(&mut self, forced: Forced) {
        self.format.forced = Some(forced);
    }

    /// The format policy; the installation id is the store's to fill in.
    pub fn policy(&self) -> Policy {
        let f = &self.format;
        Policy {
            priority: f.priority.val.clone(),
            fallback: f.fallback.val,
            forced: f.forced.clone(),
            rollout: Rollout {
                v3_percent: f.v3_percent.val,
                installation_id: String::new(),
                pins: f.pins.iter().map(|(n, w)| (n.clone(), w.val)).collect(),
                rolled_back: f.rolled_back.val,
                registry: None,
            },
        }
    }

    /// Where and whether compiled code is kept.
    pub fn compile_cache(&self) -> CacheConfig {
        let s = &self.store;
        if !s.compile_cache.val {
            return CacheConfig::disabled();
        }
        let mut cache = CacheConfig::default();
        if let Some(dir) = &s.compile_directory.val {
            cache = cache.with_directory(dir);
        }
        if let Some(capacity) = s.compile_capacity.val {
            cache = cache.with_capacity(capacity);
        }
        cache
    }

    /// Limits on running programs.
    pub fn limits(&self) -> Limits {
        Limits {
            max_memory: self.run.max_memory.val,
            timeout: self.run.timeout.val,
        }
    }

    /// Where the registry's policy comes from, when this machine follows one.
    pub fn policy_source(&self) -> Option<SourceConfig> {
        let f = &self.fleet;
        if f.source.val != PolicySource::Registry {
            return None;
        }
        Some(SourceConfig {
            url: f
                .policy_url
                .val
                .clone()
                .unwrap_or_else(|| crate::fleet::policy_url(&self.registry.url.val)),
            key: f.policy_key.val?,
            refresh: f.refresh.val,
        })
    }

    /// The fleet's shared compiled code, when `compile.shared` names it (with its key, which
    /// [`Settings::load`] made sure of).
    pub fn shared_compile(&self) -> Option<SharedCompile> {
        let s = &self.store;
        Some(SharedCompile {
            url: s.compile_shared.val.clone()?,
            key: s.compile_shared_key.val?,
            signing_key: s.compile_shared_signing_key.val.clone(),
        })
    }

    pub fn http(&self) -> HttpOptions {
        let d = &self.download;
        HttpOptions {
            connect_timeout: d.timeout.val,
            read_timeout: d.timeout.val,
            allow_insecure_http: d.allow_insecure_http.val,
            ca_file: self.registry.ca_file.val.clone(),
        }
    }

    pub fn fetch(&self) -> FetchOptions {
        let d = &self.download;
        FetchOptions {
            max_size: d.max_size.val,
            retries: d.retries.val,
            unpack_ratio: self.store.unpack_ratio.val,
            ..FetchOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_only_to_the_registry_it_was_given_for() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("config.toml");
        let (a, b) = ("https://a.example/graphql", "https://b.example/graphql");
        std::fs::write(
            &user,
            format!("[registry]\nurl = \"{a}\"\ntoken = \"file\"\n"),
        )
        .unwrap();
        let url = |to: &str, flag: &str| {
            (
                keys::REGISTRY_URL.into(),
                toml::Value::from(to),
                flag.into(),
            )
        };
        let load = |env: Vec<(String, String)>, flags| {
            let sources = Sources {
                system_file: None,
                user_file: Some(user.clone()),
                env,
                flags,
            };
            Settings::load(&sources).unwrap().registry
        };
        let token = |r: &RegistrySettings, to: &str| r.configured_token(to).map(|t| t.val.clone());
        // The file's token: for the file's registry, whatever the command line names.
        let r = load(Vec::new(), vec![url(b, "--registry")]);
        assert_eq!((token(&r, a), token(&r, b)), (Some("file".into()), None));
        // The environment's token follows --registry, not a lockfile's registry.
        let env = vec![("WEBCPM_TOKEN".to_string(), "env".to_string())];
        let r = load(env.clone(), vec![url(b, "--registry")]);
        assert_eq!(token(&r, b), Some("env".into()));
        let r = load(env.clone(), vec![url(b, keys::LOCKED_REGISTRY)]);
        assert_eq!((token(&r, a), token(&r, b)), (Some("env".into()), None));
        let r = load(env, vec![url(a, keys::LOCKED_REGISTRY)]);
        assert_eq!(
            token(&r, "https://A.example:443/graphql"),
            Some("env".into())
        );
    }

    #[test]
    fn layers_apply_in_order_and_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("config.toml");
        std::fs::write(
            &user,
            "[webc]\npriority = [\"v2\", \"v3\"]\n[download]\nretries = 7\n",
        )
        .unwrap();
        let s = Settings::load(&Sources {
            user_file: Some(user),
            env: vec![
                ("WEBCPM_HTTP_RETRIES".into(), "9".into()),
                ("WEBCPM_FALLBACK".into(), "false".into()),
            ],
            flags: vec![(
                keys::REGISTRY_URL.into(),
                toml::Value::String("http://127.0.0.1:1/graphql".into()),
                "--registry".into(),
            )],
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(s.policy().priority, vec![WebcVersion::V2, WebcVersion::V3]);
        assert_eq!(s.format.priority.layer, Layer::User);
        assert_eq!(s.fetch().retries, 9);
        assert_eq!(
            s.download.retries.layer,
            Layer::Env("WEBCPM_HTTP_RETRIES".into())
        );
        assert!(!s.policy().fallback);
        assert_eq!(s.registry.url.val, "http://127.0.0.1:1/graphql");
        assert_eq!(s.get(keys::CONCURRENCY).unwrap().1, &Layer::Default);
    }

    #[test]
    fn bad_values_name_key_and_layer() {
        let err = Settings::load(&Sources {
            env: vec![("WEBCPM_V3_PERCENT".into(), "150".into())],
            ..Sources::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rollout.v3_percent") && text.contains("WEBCPM_V3_PERCENT"),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_in_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("config.toml");
        std::fs::write(&user, "[webc]\npriorty = [\"v2\"]\n").unwrap();
        let err = Settings::load(&Sources {
            user_file: Some(user),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(matches!(err, SettingsError::UnknownKey(k) if k == "webc.priorty"));
    }

    #[test]
    fn a_pinned_key_makes_the_registry_the_source() {
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let load = |env: Vec<(&str, &str)>| {
            Settings::load(&Sources {
                env: env
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Sources::default()
            })
        };
        assert!(load(vec![]).unwrap().policy_source().is_none());
        let s = load(vec![("WEBCPM_POLICY_KEY", key)]).unwrap();
        let source = s.policy_source().unwrap();
        assert_eq!(source.url, "https://registry.wasmer.io/rollout/policy.json");
        assert_eq!(source.refresh, Duration::from_secs(60));
        let local = load(vec![
            ("WEBCPM_POLICY_KEY", key),
            ("WEBCPM_ROLLOUT_SOURCE", "local"),
        ]);
        assert!(local.unwrap().policy_source().is_none());
        let err = load(vec![("WEBCPM_ROLLOUT_SOURCE", "registry")]).unwrap_err();
        assert!(err.to_string().contains("rollout.policy_key"), "{err}");
        let err = load(vec![("WEBCPM_POLICY_KEY", "abc")]).unwrap_err();
        assert!(err.to_string().contains("64 digits"), "{err}");
    }

    #[test]
    fn shared_compiled_code_needs_a_pinned_key() {
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let load = |env: &[(&str, &str)]| {
            Settings::load(&Sources {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Sources::default()
            })
        };
        assert_eq!(load(&[]).unwrap().shared_compile(), None);
        let repo = (
            "WEBCPM_COMPILE_SHARED",
            "oci://127.0.0.1:5000/fleet/compiled",
        );
        let err = load(&[repo]).unwrap_err().to_string();
        assert!(
            err.contains("compile.shared_key") && err.contains("WEBCPM_COMPILE_SHARED"),
            "{err}"
        );
        let err = load(&[repo, ("WEBCPM_COMPILE_SHARED_KEY", "abc")]).unwrap_err();
        assert!(err.to_string().contains("64 digits"), "{err}");
        let s = load(&[
            repo,
            ("WEBCPM_COMPILE_SHARED_KEY", key),
            ("WEBCPM_COMPILE_SHARED_SIGNING_KEY", "/keys/compiled"),
        ])
        .unwrap();
        let shared = s.shared_compile().unwrap();
        assert_eq!(shared.url, repo.1);
        assert_eq!(crate::fleet::document::key_hex(&shared.key), key);
        assert_eq!(shared.signing_key, Some(PathBuf::from("/keys/compiled")));
        // A key without a repository is harmless: nothing is shared.
        let s = load(&[("WEBCPM_COMPILE_SHARED_KEY", key)]).unwrap();
        assert_eq!(s.shared_compile(), None);
    }

    #[test]
    fn every_default_key_has_a_typed_field() {
        // A key added to the defaults but not read here would be silently ignored.
        let s = Settings::load(&Sources::default()).unwrap();
        let read = [
            keys::REGISTRY_URL,
            keys::CA_FILE,
            keys::CREDENTIAL_PROCESS,
            keys::PRIORITY,
            keys::FALLBACK,
            keys::V3_PERCENT,
            keys::ROLLED_BACK,
            keys::ROLLOUT_SOURCE,
            keys::POLICY_KEY,
            keys::POLICY_URL,
            keys::POLICY_REFRESH,
            keys::TELEMETRY_REPORT,
            keys::CONCURRENCY,
            keys::MAX_SIZE,
            keys::RETRIES,
            keys::TIMEOUT,
            keys::ALLOW_INSECURE_HTTP,
            keys::STORE_MAX_SIZE,
            keys::COMPILE_CACHE,
            keys::COMPILE_DIRECTORY,
            keys::COMPILE_CAPACITY,
            keys::COMPILE_SHARED,
            keys::COMPILE_SHARED_KEY,
            keys::COMPILE_SHARED_SIGNING_KEY,
            keys::COMPILE_TIERING,
            keys::MAX_MEMORY,
            keys::RUN_TIMEOUT,
            keys::RUN_NETWORK,
            keys::UNPACK_RATIO,
            keys::MIN_RELEASE_AGE,
            keys::MIN_RELEASE_AGE_EXEMPT,
            keys::ALLOW_UNKNOWN_RELEASE_TIME,
        ];
        for (key, _, _) in s.entries() {
            assert!(read.contains(&key), "{key} has no typed field");
        }
    }
}
