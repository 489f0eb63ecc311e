//! `webcpm config show|get|set|unset`: the effective settings with their layers, and edits of
//! the user (or system) file that keep its comments.

use crate::printer::out;
use serde_json::json;

use crate::cli::args::{ConfigCommand, GlobalArgs};
use crate::cli::config_edit::{Target, apply};
use crate::cli::context::{load_settings, sources};
use crate::cli::failure::{ExitStatus, Failure};
use crate::settings::{Edit, Layer, Settings, keys, parse_value};

/// A value as `config` shows it: a token is a credential, shown as `***`.
fn shown(key: &str, value: &toml::Value) -> toml::Value {
    if keys::SECRETS.contains(&key) {
        toml::Value::String("***".into())
    } else {
        value.clone()
    }
}

/// Every effective value, its layer, then the pins and a forced format.
fn rows(settings: &Settings) -> Vec<(String, toml::Value, String)> {
    let mut rows: Vec<(String, toml::Value, String)> = settings
        .entries()
        .map(|(key, value, layer)| (key.to_string(), shown(key, value), layer.to_string()))
        .collect();
    for (name, pin) in &settings.format.pins {
        rows.push((
            format!("packages.\"{name}\".webc"),
            toml::Value::String(pin.val.to_string()),
            pin.layer.to_string(),
        ));
    }
    if let Some(forced) = &settings.format.forced {
        let layer = Layer::Env(forced.source.clone());
        rows.push((
            "webc".into(),
            toml::Value::String(forced.webc.to_string()),
            layer.to_string(),
        ));
    }
    rows
}

fn show(global: &GlobalArgs, settings: &Settings) {
    let rows = rows(settings);
    if global.json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .into_iter()
            .map(|(key, value, layer)| {
                // JSON keys of pins name the package without TOML's quotes.
                let key = key.replace('"', "");
                (key, json!({"value": value, "layer": layer}))
            })
            .collect();
        out!("{}", serde_json::Value::Object(map));
    } else {
        for (key, value, layer) in rows {
            out!("{key} = {value}  # {layer}");
        }
    }
}

/// `config show|get|set|unset`. `set` and `unset` do not need the settings in force to load:
/// they are how a setting that stops them from loading gets fixed (the edited file is checked).
pub(crate) fn config(global: &GlobalArgs, cmd: ConfigCommand) -> Result<ExitStatus, Failure> {
    let settings = || load_settings(&sources(global, Vec::new()));
    match cmd {
        ConfigCommand::Show => show(global, &settings()?),
        ConfigCommand::Get { key } => {
            let settings = settings()?;
            let Some((value, layer)) = settings.get(&key) else {
                return Err(Failure::usage(format!("unknown setting `{key}`"))
                    .hint("`webcpm config show` lists them"));
            };
            let value = shown(&key, value);
            if global.json {
                out!(
                    "{}",
                    json!({"key": key, "value": value, "layer": layer.to_string()})
                );
            } else {
                match value {
                    toml::Value::String(s) => out!("{s}"),
                    other => out!("{other}"),
                }
            }
        }
        ConfigCommand::Set { key, value, system } => {
            // The system file is readable by every user (0644): no secret goes there.
            if system && key == crate::settings::keys::REGISTRY_TOKEN {
                return Err(Failure::usage(
                    "a token in the system file would be readable by every user of this machine",
                )
                .hint("set it in your own file (`webcpm config set registry.token …`) or in WEBCPM_TOKEN"));
            }
            let parsed = parse_value(&key, &value)?;
            let file = apply(
                global,
                Target::from_flag(system),
                &[Edit::Set(key.clone(), parsed)],
            )?;
            if global.json {
                out!("{}", json!({"set": key, "file": file}));
            }
        }
        ConfigCommand::Unset { key, system } => {
            let file = apply(
                global,
                Target::from_flag(system),
                &[Edit::Unset(key.clone())],
            )?;
            if global.json {
                out!("{}", json!({"unset": key, "file": file}));
            }
        }
    }
    Ok(ExitStatus::Success)
}
