//! The raw layers: every key of the built-in defaults with the value and [`Layer`] that won,
//! read from the files, the environment and the flags in order. [`super::Settings`] turns them
//! into typed values once; `config show` and `config get` print them as they were written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::env::ENV_VARS;
use super::keys;
use crate::package::{InputError, PackageName, WebcVersion};
use crate::policy::Forced;

/// The built-in defaults.
pub(crate) const DEFAULTS: &str = include_str!("../../../../config/default.toml");

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

/// Every key with its winning value and layer, the per-package pins, and a forced format.
#[derive(Debug, Clone)]
pub(super) struct Layered {
    pub values: BTreeMap<String, (toml::Value, Layer)>,
    /// The registry URL that `registry.token` is for: the one in force in the layer that set
    /// it, or one the command line named after it (not one a lockfile named).
    pub token_for: Option<String>,
    pub pins: BTreeMap<PackageName, (WebcVersion, Layer)>,
    pub forced: Option<Forced>,
}

/// Keys that have no default but may be set.
const OPTIONAL: &[&str] = &[keys::REGISTRY_TOKEN, keys::REPORT_TOKEN];

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

/// The built-in defaults, flattened to dotted keys.
fn defaults() -> Vec<(String, toml::Value)> {
    let table: toml::Table = DEFAULTS.parse().expect("built-in defaults are valid TOML");
    let mut flat = Vec::new();
    flatten("", &table, &mut flat);
    flat
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

/// Reads text (an environment value, `config set`'s argument) as the type `shape` has.
fn typed_like(shape: &toml::Value, text: &str) -> toml::Value {
    match shape {
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
    let shape = match defaults().into_iter().find(|(k, _)| k == key) {
        Some((_, v)) => v,
        None if OPTIONAL.contains(&key) => toml::Value::String(String::new()),
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
    Ok(typed_like(&shape, text))
}

/// A `[packages."ns/name"] webc = "v2"` entry, as a flattened key and its value.
fn pin(
    key: &str,
    value: &toml::Value,
    layer: &Layer,
) -> Result<(PackageName, WebcVersion), SettingsError> {
    let bad = |reason: &str| SettingsError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        layer: layer.clone(),
        reason: reason.to_string(),
    };
    let rest = key.strip_prefix("packages.").expect("a packages.* key");
    let (name, field) = rest
        .rsplit_once('.')
        .ok_or_else(|| bad("expected [packages.\"ns/name\"] webc = \"v2\" or \"v3\""))?;
    if field != "webc" {
        return Err(bad("the only setting of a package is `webc`"));
    }
    let name: PackageName = name.parse().map_err(|e: InputError| bad(&e.to_string()))?;
    let webc = value
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("expected \"v2\" or \"v3\""))?;
    Ok((name, webc))
}

impl Layered {
    /// Layers the sources over the built-in defaults, refusing unknown keys.
    pub(super) fn load(sources: &Sources) -> Result<Layered, SettingsError> {
        let mut layered = Layered {
            values: defaults()
                .into_iter()
                .map(|(k, v)| (k, (v, Layer::Default)))
                .collect(),
            pins: BTreeMap::new(),
            forced: None,
            token_for: None,
        };
        for (file, layer) in [
            (&sources.system_file, Layer::System),
            (&sources.user_file, Layer::User),
        ] {
            if let Some(path) = file
                && let Some(entries) = read_file(path)?
            {
                for (k, v) in entries {
                    layered.set(k, v, layer.clone())?;
                }
                layered.bind_token(|l| *l == layer);
            }
        }
        for (name, text) in &sources.env {
            layered.set_env(name, text)?;
        }
        layered.bind_token(|layer| matches!(layer, Layer::Env(_)));
        for (key, value, flag) in &sources.flags {
            layered.set(key.clone(), value.clone(), Layer::Flag(flag.clone()))?;
            // A registry the user names on the command line takes the token along; one that a
            // lockfile names does not.
            if key == keys::REGISTRY_URL && flag != keys::LOCKED_REGISTRY {
                layered.bind_token(|layer| matches!(layer, Layer::Env(_) | Layer::Flag(_)));
            }
        }
        layered.bind_token(|layer| matches!(layer, Layer::Flag(_)));
        Ok(layered)
    }

    /// When the token was set by a layer `by` accepts: it is for the registry URL in force now.
    fn bind_token(&mut self, by: impl Fn(&Layer) -> bool) {
        let token_layer = self
            .values
            .get(keys::REGISTRY_TOKEN)
            .map(|(_, layer)| layer);
        if token_layer.is_some_and(by) {
            let url = self.values.get(keys::REGISTRY_URL);
            self.token_for = url.and_then(|(v, _)| v.as_str().map(str::to_string));
        }
    }

    fn set(&mut self, key: String, value: toml::Value, layer: Layer) -> Result<(), SettingsError> {
        if key.starts_with("packages.") {
            let (name, webc) = pin(&key, &value, &layer)?;
            self.pins.insert(name, (webc, layer));
        } else if self.values.contains_key(&key) || OPTIONAL.contains(&key.as_str()) {
            self.values.insert(key, (value, layer));
        } else {
            return Err(SettingsError::UnknownKey(key));
        }
        Ok(())
    }

    /// One environment variable: `WEBCPM_WEBC` forces a format, the others set their key.
    fn set_env(&mut self, name: &str, text: &str) -> Result<(), SettingsError> {
        let layer = Layer::Env(name.to_string());
        if name == "WEBCPM_WEBC" {
            let webc = text
                .parse()
                .map_err(|e: InputError| SettingsError::Invalid {
                    key: "webc".into(),
                    value: text.to_string(),
                    layer,
                    reason: e.to_string(),
                })?;
            self.forced = Some(Forced {
                webc,
                source: name.to_string(),
            });
            return Ok(());
        }
        let Some(var) = ENV_VARS.iter().find(|v| v.name == name) else {
            return Ok(());
        };
        let Some(key) = var.key else {
            return Ok(());
        };
        let value = match self.values.get(key) {
            Some((shape, _)) => typed_like(shape, text),
            None => toml::Value::String(text.to_string()),
        };
        self.set(key.to_string(), value, layer)
    }
}
