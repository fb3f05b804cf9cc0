//! `aggregate = "1m"` on a `[[sensor]]`: its periodic readings leave the device as one line per
//! window (Telegraf basicstats names) instead of one line per sample, which is what most
//! dashboards want and what a cellular plan can afford. Events are never aggregated.

use super::kinds::{GpioKind, SimulatedKind, SysfsKind};
use super::sensor::{KeyError, SensorKind};
use std::time::Duration;

/// How one sensor's periodic readings are aggregated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    /// The window, aligned to the epoch (`"1m"` windows start at whole minutes).
    pub window: Duration,
    /// `aggregate_fields`: only these; every numeric and boolean field when absent.
    pub fields: Option<Vec<String>>,
    /// `keep_raw = true`: queue the raw readings too.
    pub keep_raw: bool,
}

/// The aggregation keys of a `[[sensor]]` table, as written.
pub(super) struct AggregationKeys {
    pub aggregate: Option<Duration>,
    pub fields: Option<Vec<String>>,
    pub keep_raw: Option<bool>,
}

impl AggregationKeys {
    /// The sensor's aggregation, checked against its kind and interval.
    pub(super) fn check(
        self,
        kind: &SensorKind,
        interval: Duration,
    ) -> Result<Option<Aggregation>, KeyError> {
        let Some(window) = self.aggregate else {
            let stray = match (&self.fields, self.keep_raw) {
                (Some(_), _) => Some("aggregate_fields"),
                (None, Some(_)) => Some("keep_raw"),
                (None, None) => None,
            };
            return match stray {
                Some(key) => Err(KeyError {
                    key,
                    message: "only means something with `aggregate` (e.g. \"1m\")".into(),
                }),
                None => Ok(None),
            };
        };
        if window < interval {
            return Err(KeyError {
                key: "aggregate",
                message: format!(
                    "the window must be at least the sensor's interval ({interval:?})"
                ),
            });
        }
        if let Some(fields) = &self.fields {
            check_fields(kind, fields)?;
        }
        Ok(Some(Aggregation {
            window,
            fields: self.fields,
            keep_raw: self.keep_raw.unwrap_or(false),
        }))
    }
}

fn check_fields(kind: &SensorKind, fields: &[String]) -> Result<(), KeyError> {
    let known = state_fields(kind);
    let unknown = fields.iter().find(|f| !known.contains(&f.as_str()));
    let message = match unknown {
        _ if fields.is_empty() => "names no field".to_string(),
        Some(field) => format!(
            "kind `{}` has no field `{field}`; its fields are {}",
            kind.name(),
            known.join(", ")
        ),
        None => return Ok(()),
    };
    Err(KeyError {
        key: "aggregate_fields",
        message,
    })
}

/// The fields of a kind's periodic readings: what `aggregate_fields` may name, and what the
/// README's schema tables list.
pub fn state_fields(kind: &SensorKind) -> &'static [&'static str] {
    const CLIMATE: &[&str] = &["temperature", "humidity"];
    match kind {
        SensorKind::Simulated(SimulatedKind::Climate, _) => &[
            "temperature",
            "humidity",
            "battery_level",
            "signal_strength",
        ],
        SensorKind::Simulated(SimulatedKind::Motion, _) => {
            &["motion_detected", "sensitivity", "battery_level"]
        }
        SensorKind::Simulated(SimulatedKind::Door, _) => {
            &["door_open", "open_count", "battery_level"]
        }
        SensorKind::I2c(super::I2cChip::Bme280, _) => &["temperature", "humidity", "pressure"],
        SensorKind::I2c(..) => CLIMATE,
        SensorKind::Sysfs(settings) => match settings.kind() {
            SysfsKind::Dht22 => CLIMATE,
            SysfsKind::Ds18b20 | SysfsKind::SocTemp => &["temperature"],
        },
        SensorKind::Gpio(GpioKind::Pir, _) => &["motion_detected"],
        SensorKind::Gpio(GpioKind::ReedSwitch, _) => &["door_open", "open_count"],
    }
}
