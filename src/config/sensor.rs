//! One `[[sensor]]` table, typed by kind. The keys every sensor has (`id`, `kind`,
//! `measurement`, `interval`, `tags`) sit in `SensorConfig`; the rest belong to the kind's bus
//! and sit in that bus's settings, so a key that does not belong to the kind is refused with
//! what the kind accepts instead of being silently ignored.

use super::aggregation::{Aggregation, AggregationKeys};
use super::kinds::{all_names, GpioKind, I2cChip, SimulatedKind, SysfsKind};
use super::units;
use crate::reading::EdgeName;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One sensor of the board, with the settings its kind takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "SensorTable")]
pub struct SensorConfig {
    /// Becomes the `sensor_id` tag.
    pub id: String,
    pub kind: SensorKind,
    pub measurement: String,
    pub interval: Duration,
    pub tags: BTreeMap<String, String>,
    /// `aggregate = "1m"`: one line per window instead of the raw periodic readings.
    pub aggregate: Option<Aggregation>,
}

/// The kind of a sensor, by bus, with that bus's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum SensorKind {
    Simulated(SimulatedKind, SimulatedSettings),
    I2c(I2cChip, I2cSettings),
    Sysfs(SysfsSettings),
    Gpio(GpioKind, GpioSettings),
}

impl SensorKind {
    /// The name the board file uses (`kind = "..."`).
    pub fn name(&self) -> &'static str {
        match self {
            SensorKind::Simulated(kind, _) => kind.name(),
            SensorKind::I2c(chip, _) => chip.name(),
            SensorKind::Sysfs(settings) => settings.kind().name(),
            SensorKind::Gpio(kind, _) => kind.name(),
        }
    }

    /// Sensors that report edges as events as well as a periodic state.
    pub fn has_events(&self) -> bool {
        !self.edges().is_empty()
    }

    /// The edges this kind reports as events, each its own series (`event` tag).
    pub fn edges(&self) -> &'static [EdgeName] {
        const DOOR: &[EdgeName] = &[EdgeName::Open, EdgeName::Close];
        const MOTION: &[EdgeName] = &[EdgeName::Motion, EdgeName::Clear];
        match self {
            SensorKind::Simulated(SimulatedKind::Climate, _) => &[],
            SensorKind::Simulated(SimulatedKind::Motion, _) => MOTION,
            SensorKind::Simulated(SimulatedKind::Door, _) => DOOR,
            SensorKind::I2c(..) | SensorKind::Sysfs(_) => &[],
            SensorKind::Gpio(GpioKind::Pir, _) => MOTION,
            SensorKind::Gpio(GpioKind::ReedSwitch, _) => DOOR,
        }
    }

    /// The keys this kind takes besides the ones every sensor has.
    pub fn keys(&self) -> &'static [&'static str] {
        match self {
            SensorKind::Simulated(..) => &["seed"],
            SensorKind::I2c(..) => &["bus", "address"],
            SensorKind::Sysfs(SysfsSettings::Ds18b20 { .. }) => &["serial", "w1_root"],
            SensorKind::Sysfs(SysfsSettings::Dht22 { .. }) => &["iio_device", "iio_root"],
            SensorKind::Sysfs(SysfsSettings::SocTemp { .. }) => &["path"],
            SensorKind::Gpio(..) => &[
                "line_name",
                "chip",
                "line",
                "active_low",
                "bias",
                "debounce",
            ],
        }
    }

    /// Build the kind `name` with the settings it takes from `table`.
    fn from_table(name: &str, table: &SensorTable) -> Result<SensorKind, KeyError> {
        if let Some(kind) = SimulatedKind::from_name(name) {
            return Ok(SensorKind::Simulated(
                kind,
                SimulatedSettings { seed: table.seed },
            ));
        }
        if let Some(chip) = I2cChip::from_name(name) {
            let settings = I2cSettings {
                bus: table.bus.clone(),
                address: table.address,
            };
            return Ok(SensorKind::I2c(chip, settings));
        }
        if let Some(kind) = SysfsKind::from_name(name) {
            return Ok(SensorKind::Sysfs(SysfsSettings::from_table(kind, table)));
        }
        if let Some(kind) = GpioKind::from_name(name) {
            return Ok(SensorKind::Gpio(kind, GpioSettings::from_table(table)?));
        }
        Err(KeyError {
            key: "kind",
            message: format!(
                "unknown kind `{name}`, expected one of {}",
                all_names().join(", ")
            ),
        })
    }
}

/// Keys of simulated sensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedSettings {
    /// By default derived from the sensor id.
    pub seed: Option<u64>,
}

/// Keys of I2C chips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I2cSettings {
    /// The bus device; by default the one on the 40-pin header.
    pub bus: Option<PathBuf>,
    /// By default the chip's first address in the I2C table.
    pub address: Option<u8>,
}

/// Keys of sysfs readers: each takes its sysfs root, so tests and unusual boards can point it
/// elsewhere, and which device under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysfsSettings {
    /// `serial` is a `"28-…"` name or `"auto"` (the only one present).
    Ds18b20 {
        w1_root: Option<PathBuf>,
        serial: Option<String>,
    },
    /// `iio_device` is an `"iio:deviceN"` name or `"auto"` (the only DHT present).
    Dht22 {
        iio_root: Option<PathBuf>,
        iio_device: Option<String>,
    },
    SocTemp {
        path: Option<PathBuf>,
    },
}

impl SysfsSettings {
    pub fn kind(&self) -> SysfsKind {
        match self {
            SysfsSettings::Ds18b20 { .. } => SysfsKind::Ds18b20,
            SysfsSettings::Dht22 { .. } => SysfsKind::Dht22,
            SysfsSettings::SocTemp { .. } => SysfsKind::SocTemp,
        }
    }

    fn from_table(kind: SysfsKind, table: &SensorTable) -> SysfsSettings {
        match kind {
            SysfsKind::Ds18b20 => SysfsSettings::Ds18b20 {
                w1_root: table.w1_root.clone(),
                serial: table.serial.clone(),
            },
            SysfsKind::Dht22 => SysfsSettings::Dht22 {
                iio_root: table.iio_root.clone(),
                iio_device: table.iio_device.clone(),
            },
            SysfsKind::SocTemp => SysfsSettings::SocTemp {
                path: table.path.clone(),
            },
        }
    }
}

/// Which GPIO line, and how the kernel should treat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpioLine {
    /// A line offset on a chip (a name under `/dev` or a path; by default `gpiochip0`).
    Offset { chip: Option<String>, line: u32 },
    /// A line name like `"GPIO17"`, looked up on every chip.
    Named(String),
}

/// Keys of GPIO edge sensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioSettings {
    pub line: GpioLine,
    pub active_low: bool,
    pub bias: Option<Bias>,
    pub debounce: Option<Duration>,
}

impl GpioSettings {
    fn from_table(table: &SensorTable) -> Result<GpioSettings, KeyError> {
        let line =
            match (table.line, &table.line_name) {
                (Some(line), _) => GpioLine::Offset {
                    chip: table.chip.clone(),
                    line,
                },
                (None, Some(name)) => GpioLine::Named(name.clone()),
                (None, None) => return Err(KeyError {
                    key: "line",
                    message:
                        "a GPIO sensor needs `line` (with `chip`) or `line_name` (e.g. \"GPIO17\")"
                            .into(),
                }),
            };
        Ok(GpioSettings {
            line,
            active_low: table.active_low.unwrap_or(false),
            bias: table.bias,
            debounce: table.debounce,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bias {
    PullUp,
    PullDown,
    Disabled,
}

/// A `[[sensor]]` table as written: every key any kind takes, so serde reports unknown keys and
/// wrong types with their line; `SensorConfig` then keeps only what the kind takes. (A serde
/// enum tagged by `kind` would buffer the table, and its errors would point at the
/// `[[sensor]]` header instead of the key.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SensorTable {
    id: String,
    kind: String,
    #[serde(default = "default_measurement")]
    measurement: String,
    #[serde(default = "default_interval", with = "units::duration")]
    interval: Duration,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default, with = "units::duration::option")]
    aggregate: Option<Duration>,
    aggregate_fields: Option<Vec<String>>,
    keep_raw: Option<bool>,
    seed: Option<u64>,
    bus: Option<PathBuf>,
    address: Option<u8>,
    chip: Option<String>,
    line: Option<u32>,
    line_name: Option<String>,
    active_low: Option<bool>,
    bias: Option<Bias>,
    #[serde(default, with = "units::duration::option")]
    debounce: Option<Duration>,
    w1_root: Option<PathBuf>,
    iio_root: Option<PathBuf>,
    iio_device: Option<String>,
    path: Option<PathBuf>,
    serial: Option<String>,
}

impl SensorTable {
    /// The kind-specific keys this table sets.
    fn given_keys(&self) -> Vec<&'static str> {
        let given = [
            ("seed", self.seed.is_some()),
            ("bus", self.bus.is_some()),
            ("address", self.address.is_some()),
            ("chip", self.chip.is_some()),
            ("line", self.line.is_some()),
            ("line_name", self.line_name.is_some()),
            ("active_low", self.active_low.is_some()),
            ("bias", self.bias.is_some()),
            ("debounce", self.debounce.is_some()),
            ("w1_root", self.w1_root.is_some()),
            ("iio_root", self.iio_root.is_some()),
            ("iio_device", self.iio_device.is_some()),
            ("path", self.path.is_some()),
            ("serial", self.serial.is_some()),
        ];
        given
            .into_iter()
            .filter_map(|(key, set)| set.then_some(key))
            .collect()
    }
}

/// A key of a `[[sensor]]` table that its kind does not take, or a value it cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct KeyError {
    pub key: &'static str,
    pub message: String,
}

impl TryFrom<SensorTable> for SensorConfig {
    type Error = KeyError;

    fn try_from(table: SensorTable) -> Result<SensorConfig, KeyError> {
        let kind = SensorKind::from_table(&table.kind, &table)?;
        let accepted = kind.keys();
        if let Some(key) = table
            .given_keys()
            .into_iter()
            .find(|key| !accepted.contains(key))
        {
            return Err(KeyError {
                key,
                message: format!(
                    "kind `{}` does not take `{key}`; it takes {} (and id, kind, measurement, interval, tags, aggregate)",
                    kind.name(),
                    accepted.join(", ")
                ),
            });
        }
        let aggregate = AggregationKeys {
            aggregate: table.aggregate,
            fields: table.aggregate_fields,
            keep_raw: table.keep_raw,
        }
        .check(&kind, table.interval)?;
        Ok(SensorConfig {
            id: table.id,
            kind,
            measurement: table.measurement,
            interval: table.interval,
            tags: table.tags,
            aggregate,
        })
    }
}

fn default_measurement() -> String {
    "iot_metrics".into()
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

#[cfg(test)]
mod tests;
