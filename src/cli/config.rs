//! `webcpm config show|get|set|unset`: the effective settings with their layers, and edits of
//! the user (or system) file that keep its comments.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::{ConfigCommand, GlobalArgs};
use super::{Failure, config_files, sources};
use crate::settings::{Edit, EditError, Settings, Sources, edit_file, parse_value};

fn value_json(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The file an edit goes to.
pub fn target_file(global: &GlobalArgs, system: bool) -> Result<PathBuf, Failure> {
    let (system_file, user_file) = config_files(global);
    if system {
        return Ok(system_file);
    }
    user_file.ok_or_else(|| {
        Failure::new("usage", "cannot tell where the user config file lives")
            .hint("pass --config FILE or set WEBCPM_CONFIG")
    })
}

/// Applies edits to `file`, checking that the settings still load with the result.
pub fn apply(
    global: &GlobalArgs,
    file: &Path,
    edits: &[Edit],
    system: bool,
) -> Result<(), Failure> {
    let base = sources(global, Vec::new());
    let check = |candidate: &Path| {
        let sources = if system {
            Sources {
                system_file: Some(candidate.to_path_buf()),
                ..base.clone()
            }
        } else {
            Sources {
                user_file: Some(candidate.to_path_buf()),
                ..base.clone()
            }
        };
        Settings::load(&sources).map(drop)
    };
    edit_file(file, edits, &check).map_err(|e| match e {
        EditError::Invalid(e) => Failure::from(e),
        other => Failure::new("usage", other.to_string()),
    })
}

pub fn run(global: &GlobalArgs, cmd: ConfigCommand) -> Result<i32, Failure> {
    let settings = Settings::load(&sources(global, Vec::new()))?;
    match cmd {
        ConfigCommand::Show => {
            if global.json {
                let mut map = serde_json::Map::new();
                for (key, value, layer) in settings.entries() {
                    let shown = if key == "registry.token" {
                        json!("***")
                    } else {
                        value_json(value)
                    };
                    map.insert(
                        key.to_string(),
                        json!({"value": shown, "layer": layer.to_string()}),
                    );
                }
                for (name, webc, layer) in settings.pins() {
                    map.insert(
                        format!("packages.{name}.webc"),
                        json!({"value": webc, "layer": layer.to_string()}),
                    );
                }
                if let Some(forced) = &settings.forced {
                    map.insert(
                        "webc".into(),
                        json!({"value": forced.webc, "layer": format!("env {}", forced.source)}),
                    );
                }
                println!("{}", serde_json::Value::Object(map));
            } else {
                for (key, value, layer) in settings.entries() {
                    let shown = if key == "registry.token" {
                        "\"***\"".to_string()
                    } else {
                        value.to_string()
                    };
                    println!("{key} = {shown}  # {layer}");
                }
                for (name, webc, layer) in settings.pins() {
                    println!("packages.\"{name}\".webc = \"{webc}\"  # {layer}");
                }
                if let Some(forced) = &settings.forced {
                    println!("webc = \"{}\"  # env {}", forced.webc, forced.source);
                }
            }
            Ok(0)
        }
        ConfigCommand::Get { key } => {
            let Some((value, layer)) = settings.get(&key) else {
                return Err(Failure::new("usage", format!("unknown setting `{key}`"))
                    .hint("`webcpm config show` lists them"));
            };
            // The token is a credential: say where it comes from, never what it is.
            let hidden = toml::Value::String("***".into());
            let value = if key == "registry.token" {
                &hidden
            } else {
                value
            };
            if global.json {
                println!(
                    "{}",
                    json!({"key": key, "value": value_json(value), "layer": layer.to_string()})
                );
            } else {
                match value {
                    toml::Value::String(s) => println!("{s}"),
                    other => println!("{other}"),
                }
            }
            Ok(0)
        }
        ConfigCommand::Set { key, value, system } => {
            let parsed = parse_value(&key, &value)?;
            let file = target_file(global, system)?;
            apply(global, &file, &[Edit::Set(key.clone(), parsed)], system)?;
            if global.json {
                println!("{}", json!({"set": key, "file": file}));
            }
            Ok(0)
        }
        ConfigCommand::Unset { key, system } => {
            let file = target_file(global, system)?;
            apply(global, &file, &[Edit::Unset(key.clone())], system)?;
            if global.json {
                println!("{}", json!({"unset": key, "file": file}));
            }
            Ok(0)
        }
    }
}
