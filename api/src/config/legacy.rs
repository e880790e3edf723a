//! Reading the layers, and the keys of earlier releases.
//!
//! Durations used to be integers with their unit in the key (`poll_interval_ms = 200`); they
//! are now humantime strings (`poll_interval = "200ms"`). For one release each layer (file,
//! environment) is rewritten before it is merged: `<name>_ms|_secs|_hours|_days = N` becomes
//! `<name> = "N<unit>"` unless the layer sets `<name>` itself, and each rewrite is recorded as a
//! deprecation for the start-up log.
//!
//! A supplier table without `kind` takes its name as its kind when that is a protocol's name.

use figment::value::{Dict, Value};
use figment::{Figment, Provider};

use super::{ConfigError, Settings, SupplierKind};

/// Old key suffixes and the humantime unit each meant.
const UNITS: &[(&str, &str)] = &[("_ms", "ms"), ("_secs", "s"), ("_hours", "h"), ("_days", "days")];

pub(super) struct Layers {
    figment: Figment,
    deprecations: Vec<String>,
}

impl Layers {
    pub(super) fn new(figment: Figment) -> Self {
        Layers { figment, deprecations: Vec::new() }
    }

    /// Merges `provider` over what is there, its legacy keys rewritten.
    pub(super) fn merge(&mut self, provider: impl Provider) -> Result<(), ConfigError> {
        for (profile, mut dict) in provider.data().map_err(ConfigError::from_figment)? {
            rewrite(&mut dict, "", &mut self.deprecations);
            self.figment = std::mem::take(&mut self.figment).merge(figment::providers::Serialized::from(dict, profile));
        }
        Ok(())
    }

    pub(super) fn into_settings(self) -> Result<Settings, ConfigError> {
        let mut figment = self.figment;
        if let Ok(Value::Dict(_, suppliers)) = figment.find_value("suppliers") {
            for (name, table) in suppliers {
                let has_kind = table.as_dict().is_some_and(|t| t.contains_key("kind"));
                if !has_kind && name.parse::<SupplierKind>().is_ok() {
                    figment =
                        figment.join(figment::providers::Serialized::default(&format!("suppliers.{name}.kind"), &name));
                }
            }
        }
        let mut settings: Settings = figment.extract().map_err(ConfigError::from_figment)?;
        settings.deprecations = self.deprecations;
        settings.validate()?;
        Ok(settings)
    }
}

fn rewrite(dict: &mut Dict, path: &str, deprecations: &mut Vec<String>) {
    let keys: Vec<String> = dict.keys().cloned().collect();
    for key in keys {
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        if let Some(Value::Dict(_, inner)) = dict.get_mut(&key) {
            rewrite(inner, &here, deprecations);
            continue;
        }
        let Some((name, unit)) = UNITS.iter().find_map(|(suffix, unit)| Some((key.strip_suffix(suffix)?, *unit)))
        else {
            continue;
        };
        // A file gives a number; the environment may give the digits as a string.
        let amount = match dict.get(&key) {
            Some(Value::String(_, digits)) => digits.trim().parse::<u64>().ok().map(u128::from),
            Some(value) => value.to_u128().or_else(|| value.to_i128().and_then(|n| u128::try_from(n).ok())),
            None => None,
        };
        let Some(amount) = amount else { continue };
        let name = name.to_owned();
        dict.remove(&key);
        let written = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        match dict.entry(name) {
            std::collections::btree_map::Entry::Occupied(_) => {
                deprecations.push(format!("`{here}` is ignored: `{written}` is set too"));
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                let value = format!("{amount}{unit}");
                deprecations.push(format!("`{here}` is deprecated; write `{written} = \"{value}\"`"));
                slot.insert(Value::from(value));
            }
        }
    }
}
