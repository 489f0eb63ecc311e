//! Settings: every configurable value, the layer it came from, and the typed values the rest of
//! webcpm takes.
//!
//! Layers, lowest first: the built-in defaults (`config/default.toml`, compiled in) < the system
//! file (`/etc/webcpm/config.toml`) < the user file (`$XDG_CONFIG_HOME/webcpm/config.toml` or
//! `--config FILE`) < the environment (`WEBCPM_*`, all listed in [`ENV_VARS`]) < command-line
//! flags. Values are kept as dotted keys (`webc.priority`) with their [`Layer`], so that
//! `config show` can say where each came from.
//!
//! This module reads the files it is given; it never reads the environment itself: the CLI passes
//! the variables in, so that a library user decides what applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fetch::FetchOptions;
use crate::http::HttpOptions;
use crate::package::WebcVersion;
mod edit;

pub use edit::{Edit, EditError, edit_file};

use crate::package::PackageName;
use crate::policy::{Forced, Policy, Rollout};
use crate::runtime::{CacheConfig, Limits};

/// The built-in defaults.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// The fleet-wide file.
pub const SYSTEM_FILE: &str = "/etc/webcpm/config.toml";

/// Every environment variable webcpm reads, with the key it sets (`None`: not a config key).
pub const ENV_VARS: &[(&str, Option<&str>, &str)] = &[
    ("WEBCPM_HOME", None, "the store's directory (--home)"),
    ("WEBCPM_CONFIG", None, "the user config file (--config)"),
    (
        "WEBCPM_SYSTEM_CONFIG",
        None,
        "the system config file (default /etc/webcpm/config.toml)",
    ),
    (
        "WEBCPM_REGISTRY",
        Some("registry.url"),
        "the registry's GraphQL URL (--registry)",
    ),
    (
        "WEBCPM_TOKEN",
        Some("registry.token"),
        "a bearer token for the registry",
    ),
    (
        "WEBCPM_CA_FILE",
        Some("registry.ca_file"),
        "a PEM file of CAs trusted on top of the system's",
    ),
    (
        "WEBCPM_WEBC",
        None,
        "force one WebC format, v2 or v3 (--webc)",
    ),
    (
        "WEBCPM_WEBC_PRIORITY",
        Some("webc.priority"),
        "format order, e.g. `v2,v3`",
    ),
    ("WEBCPM_FALLBACK", Some("webc.fallback"), "true or false"),
    ("WEBCPM_V3_PERCENT", Some("rollout.v3_percent"), "0 to 100"),
    (
        "WEBCPM_CONCURRENCY",
        Some("download.concurrency"),
        "parallel downloads",
    ),
    (
        "WEBCPM_MAX_SIZE",
        Some("download.max_size"),
        "largest package in bytes",
    ),
    (
        "WEBCPM_HTTP_RETRIES",
        Some("download.retries"),
        "retries of transient failures",
    ),
    (
        "WEBCPM_HTTP_TIMEOUT",
        Some("download.timeout"),
        "seconds a connection or read may stall",
    ),
    (
        "WEBCPM_ALLOW_INSECURE_HTTP",
        Some("download.allow_insecure_http"),
        "true or false",
    ),
    (
        "WEBCPM_MAX_STORE_SIZE",
        Some("store.max_size"),
        "the store's capacity in bytes",
    ),
    (
        "WEBCPM_COMPILE_CACHE",
        Some("compile.cache"),
        "keep compiled code, true or false",
    ),
    (
        "WEBCPM_COMPILE_DIR",
        Some("compile.directory"),
        "where compiled code is kept",
    ),
    (
        "WEBCPM_MAX_MEMORY",
        Some("run.max_memory"),
        "a program's memory limit in bytes",
    ),
    (
        "WEBCPM_TIMEOUT",
        Some("run.timeout"),
        "seconds before a program is stopped",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Default,
    System,
    User,
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Default => f.write_str("default"),
            Layer::System => f.write_str("system file"),
            Layer::User => f.write_str("user file"),
            Layer::Env(name) => write!(f, "env {name}"),
            Layer::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("`{key}` = {value} ({layer}): {reason}")]
    Invalid {
        key: String,
        value: String,
        layer: Layer,
        reason: String,
    },
    #[error("unknown setting `{0}`; `webcpm config show` lists them")]
    UnknownKey(String),
}

/// What the settings are built from.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub system_file: Option<PathBuf>,
    pub user_file: Option<PathBuf>,
    /// `(name, value)` pairs of the environment; only names in [`ENV_VARS`] are looked at.
    pub env: Vec<(String, String)>,
    /// `(key, value, flag)` set by command-line flags.
    pub flags: Vec<(String, toml::Value, String)>,
}

/// The effective configuration, with provenance.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, (toml::Value, Layer)>,
    /// `[packages."ns/name"] webc = ...`, with the layer of each.
    pins: BTreeMap<PackageName, (WebcVersion, Layer)>,
    /// Set by `--webc` or `WEBCPM_WEBC`.
    pub forced: Option<Forced>,
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, other.clone())),
        }
    }
}

fn read_file(path: &Path) -> Result<Option<Vec<(String, toml::Value)>>, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingsError::Parse {
            path: path.to_path_buf(),
            reason: e.message().to_string(),
        })?;
    let mut out = Vec::new();
    flatten("", &table, &mut out);
    Ok(Some(out))
}

/// Reads an environment value as the type the default has.
fn env_value(default: &toml::Value, text: &str) -> toml::Value {
    match default {
        toml::Value::Integer(_) => text
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(text.to_string())),
        toml::Value::Boolean(_) => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
            "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
            _ => toml::Value::String(text.to_string()),
        },
        toml::Value::Array(_) => toml::Value::Array(
            text.split(',')
                .map(|s| toml::Value::String(s.trim().to_string()))
                .collect(),
        ),
        _ => toml::Value::String(text.to_string()),
    }
}

/// Reads a value given on the command line (`config set KEY VALUE`) as the type the key has:
/// a number, `true`/`false`, a list (`v2,v3` or `["v2", "v3"]`), or text.
pub fn parse_value(key: &str, text: &str) -> Result<toml::Value, SettingsError> {
    let defaults: toml::Table = DEFAULTS.parse().expect("built-in defaults are valid TOML");
    let mut flat = Vec::new();
    flatten("", &defaults, &mut flat);
    let shape = match flat.into_iter().find(|(k, _)| k == key) {
        Some((_, v)) => v,
        None if key == "registry.token" => toml::Value::String(String::new()),
        None => return Err(SettingsError::UnknownKey(key.to_string())),
    };
    if matches!(shape, toml::Value::Array(_)) && text.trim_start().starts_with('[') {
        let wrapped: Result<toml::Table, _> = format!("v = {text}").parse();
        if let Ok(mut t) = wrapped
            && let Some(v) = t.remove("v")
        {
            return Ok(v);
        }
    }
    Ok(env_value(&shape, text))
}

impl Settings {
    /// Layers the sources over the built-in defaults and checks every value.
    pub fn load(sources: &Sources) -> Result<Settings, SettingsError> {
        let defaults: toml::Table = DEFAULTS.parse().expect("built-in defaults are valid TOML");
        let mut flat = Vec::new();
        flatten("", &defaults, &mut flat);
        let mut values: BTreeMap<String, (toml::Value, Layer)> = flat
            .into_iter()
            .map(|(k, v)| (k, (v, Layer::Default)))
            .collect();
        let shapes = values.clone();
        // Keys that have no default but may be set.
        const OPTIONAL: &[&str] = &["registry.token"];
        let mut pins = BTreeMap::new();
        let mut set = |key: String, value: toml::Value, layer: Layer| {
            if let Some(rest) = key.strip_prefix("packages.") {
                let bad = |reason: &str| SettingsError::Invalid {
                    key: key.clone(),
                    value: value.to_string(),
                    layer: layer.clone(),
                    reason: reason.to_string(),
                };
                let (name, field) = rest.rsplit_once('.').ok_or_else(|| {
                    bad("expected [packages.\"ns/name\"] webc = \"v2\" or \"v3\"")
                })?;
                if field != "webc" {
                    return Err(bad("the only setting of a package is `webc`"));
                }
                let name: PackageName = name
                    .parse()
                    .map_err(|e: crate::package::InputError| bad(&e.to_string()))?;
                let webc: WebcVersion = value
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("expected \"v2\" or \"v3\""))?;
                pins.insert(name, (webc, layer));
                return Ok(());
            }
            if values.contains_key(&key) || OPTIONAL.contains(&key.as_str()) {
                values.insert(key, (value, layer));
                Ok(())
            } else {
                Err(SettingsError::UnknownKey(key))
            }
        };
        for (file, layer) in [
            (&sources.system_file, Layer::System),
            (&sources.user_file, Layer::User),
        ] {
            if let Some(path) = file
                && let Some(entries) = read_file(path)?
            {
                for (k, v) in entries {
                    set(k, v, layer.clone())?;
                }
            }
        }
        let mut forced = None;
        for (name, text) in &sources.env {
            if name == "WEBCPM_WEBC" {
                let webc = text.parse().map_err(|e: crate::package::InputError| {
                    SettingsError::Invalid {
                        key: "webc".into(),
                        value: text.clone(),
                        layer: Layer::Env(name.clone()),
                        reason: e.to_string(),
                    }
                })?;
                forced = Some(Forced {
                    webc,
                    source: name.clone(),
                });
                continue;
            }
            let Some((_, Some(key), _)) = ENV_VARS.iter().find(|(n, _, _)| n == name) else {
                continue;
            };
            let value = match shapes.get(*key) {
                Some((like, _)) => env_value(like, text),
                None => toml::Value::String(text.clone()),
            };
            set(key.to_string(), value, Layer::Env(name.clone()))?;
        }
        for (key, value, flag) in &sources.flags {
            set(key.clone(), value.clone(), Layer::Flag(flag.clone()))?;
        }
        let settings = Settings {
            values,
            pins,
            forced,
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        self.policy()?;
        self.http()?;
        self.fetch()?;
        self.concurrency()?;
        self.v3_percent()?;
        self.compile_cache()?;
        self.limits()?;
        self.store_max_size()?;
        Ok(())
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> SettingsError {
        let (value, layer) = self.values[key].clone();
        SettingsError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            layer,
            reason: reason.into(),
        }
    }

    fn int(&self, key: &str, min: i64, max: i64) -> Result<i64, SettingsError> {
        match &self.values[key].0 {
            toml::Value::Integer(n) if (min..=max).contains(n) => Ok(*n),
            _ => Err(self.invalid(key, format!("expected a whole number from {min} to {max}"))),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, SettingsError> {
        match &self.values[key].0 {
            toml::Value::Boolean(b) => Ok(*b),
            _ => Err(self.invalid(key, "expected true or false")),
        }
    }

    /// Every value with its layer, for `config show`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &toml::Value, &Layer)> {
        self.values.iter().map(|(k, (v, l))| (k.as_str(), v, l))
    }

    /// The per-package pins with their layers.
    pub fn pins(&self) -> impl Iterator<Item = (&PackageName, &WebcVersion, &Layer)> {
        self.pins.iter().map(|(n, (w, l))| (n, w, l))
    }

    pub fn get(&self, key: &str) -> Option<(&toml::Value, &Layer)> {
        self.values.get(key).map(|(v, l)| (v, l))
    }

    pub fn registry_url(&self) -> String {
        self.values["registry.url"]
            .0
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn token(&self) -> Option<String> {
        self.values
            .get("registry.token")
            .and_then(|(v, _)| v.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }

    pub fn policy(&self) -> Result<Policy, SettingsError> {
        let key = "webc.priority";
        let toml::Value::Array(items) = &self.values[key].0 else {
            return Err(self.invalid(key, "expected a list such as [\"v3\", \"v2\"]"));
        };
        let mut priority = Vec::new();
        for item in items {
            let webc: WebcVersion = item
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.invalid(key, "each entry must be \"v2\" or \"v3\""))?;
            if !priority.contains(&webc) {
                priority.push(webc);
            }
        }
        if priority.is_empty() {
            return Err(self.invalid(key, "name at least one format"));
        }
        Ok(Policy {
            priority,
            fallback: self.bool("webc.fallback")?,
            forced: self.forced.clone(),
            rollout: Rollout {
                v3_percent: self.v3_percent()?,
                installation_id: String::new(),
                pins: self
                    .pins
                    .iter()
                    .map(|(n, (w, _))| (n.clone(), *w))
                    .collect(),
                rolled_back: self.bool("rollout.rolled_back")?,
            },
        })
    }

    pub fn v3_percent(&self) -> Result<u8, SettingsError> {
        self.int("rollout.v3_percent", 0, 100).map(|n| n as u8)
    }

    pub fn concurrency(&self) -> Result<usize, SettingsError> {
        self.int("download.concurrency", 1, 64).map(|n| n as usize)
    }

    /// Where and whether compiled code is kept.
    pub fn compile_cache(&self) -> Result<CacheConfig, SettingsError> {
        if !self.bool("compile.cache")? {
            return Ok(CacheConfig::disabled());
        }
        let mut cache = CacheConfig::default();
        match &self.values["compile.directory"].0 {
            toml::Value::String(dir) if dir.is_empty() => {}
            toml::Value::String(dir) => cache = cache.with_directory(dir),
            _ => return Err(self.invalid("compile.directory", "expected a path")),
        }
        let capacity = self.int("compile.capacity", 0, i64::MAX)?;
        if capacity > 0 {
            cache = cache.with_capacity(capacity as u64);
        }
        Ok(cache)
    }

    /// The store's capacity in bytes, if any.
    pub fn store_max_size(&self) -> Result<Option<u64>, SettingsError> {
        let n = self.int("store.max_size", 0, i64::MAX)?;
        Ok((n > 0).then_some(n as u64))
    }

    /// Limits on running programs.
    pub fn limits(&self) -> Result<Limits, SettingsError> {
        let memory = self.int("run.max_memory", 0, i64::MAX)?;
        let timeout = self.int("run.timeout", 0, i64::MAX)?;
        Ok(Limits {
            max_memory: (memory > 0).then_some(memory as u64),
            timeout: (timeout > 0).then(|| Duration::from_secs(timeout as u64)),
        })
    }

    pub fn http(&self) -> Result<HttpOptions, SettingsError> {
        let timeout = Duration::from_secs(self.int("download.timeout", 1, 3600)? as u64);
        Ok(HttpOptions {
            connect_timeout: timeout,
            read_timeout: timeout,
            allow_insecure_http: self.bool("download.allow_insecure_http")?,
            ca_file: match &self.values["registry.ca_file"].0 {
                toml::Value::String(path) if path.is_empty() => None,
                toml::Value::String(path) => Some(path.into()),
                _ => return Err(self.invalid("registry.ca_file", "expected a path")),
            },
        })
    }

    pub fn fetch(&self) -> Result<FetchOptions, SettingsError> {
        Ok(FetchOptions {
            max_size: self.int("download.max_size", 1, i64::MAX)? as u64,
            retries: self.int("download.retries", 0, 100)? as u32,
            allow_insecure_http: self.bool("download.allow_insecure_http")?,
            ..FetchOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "registry.url".into(),
                toml::Value::String("http://127.0.0.1:1/graphql".into()),
                "--registry".into(),
            )],
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(
            s.policy().unwrap().priority,
            vec![WebcVersion::V2, WebcVersion::V3]
        );
        assert_eq!(s.get("webc.priority").unwrap().1, &Layer::User);
        assert_eq!(s.fetch().unwrap().retries, 9);
        assert_eq!(
            s.get("download.retries").unwrap().1,
            &Layer::Env("WEBCPM_HTTP_RETRIES".into())
        );
        assert!(!s.policy().unwrap().fallback);
        assert_eq!(s.registry_url(), "http://127.0.0.1:1/graphql");
        assert_eq!(s.get("download.concurrency").unwrap().1, &Layer::Default);
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
}
