//! Sensors: one driver per chip, all behind the same small trait so the sampler never knows
//! which bus a value came from. I2C drivers are generic over embedded-hal 1.0 traits; sysfs
//! readers take a root path; GPIO edge sensors read through an `EdgeSource` trait. Each kind
//! of sensor also has a simulated twin that needs no hardware.

pub mod gpio;
pub mod i2c;
pub mod simulated;
pub mod sysfs;

use crate::reading::Fields;
use std::time::Duration;

/// A sensor that is read on a schedule (climate chips, 1-Wire, IIO, SoC temperature, and the
/// current state of GPIO inputs).
pub trait Sensor: Send {
    /// Take one measurement. An error never becomes a value: the sampler skips the reading,
    /// counts the failure and tries again at the next interval.
    fn read(&mut self) -> Result<Fields, SensorError>;
}

/// A sensor that also reports changes as they happen (PIR, reed switch). The GPIO waiter thread
/// blocks in `next_event`; the sampler still calls `Sensor::read` each interval for the state.
pub trait EventSensor: Sensor {
    /// Wait up to `timeout` for the next edge; `Ok(None)` when none came. Each event becomes
    /// one reading of kind `Event`, stamped when it arrives.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Fields>, SensorError>;
}

/// Why a sensor gave no reading. Every variant is counted per sensor and shown in `status`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    /// The bus transfer failed: NACK (nothing at the address), arbitration loss, a timeout.
    #[error("bus error: {0}")]
    Bus(String),
    /// The chip answered but a checksum did not match, so the bytes cannot be trusted.
    #[error("CRC mismatch: expected {expected:#04x}, got {actual:#04x}")]
    Crc { expected: u8, actual: u8 },
    /// The chip answered with something it should not (wrong chip id, busy, not calibrated).
    #[error("unexpected answer from the device: {0}")]
    Protocol(String),
    /// The value decodes but cannot be physically true (humidity 130 %, -60 °C on a 0..60 chip).
    #[error("impossible value {value} for {field}")]
    OutOfRange { field: &'static str, value: f64 },
    /// The value is a known placeholder, not a measurement (DS18B20's 85 °C power-on reset).
    #[error("placeholder value, not a measurement: {0}")]
    Placeholder(String),
    /// The device or its sysfs node is not there (unplugged, overlay not loaded).
    #[error("device not found: {0}")]
    NotFound(String),
    /// Reading a sysfs file or a character device failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl SensorError {
    /// A short stable name for counters and `status` (`bus`, `crc`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            SensorError::Bus(_) => "bus",
            SensorError::Crc { .. } => "crc",
            SensorError::Protocol(_) => "protocol",
            SensorError::OutOfRange { .. } => "out_of_range",
            SensorError::Placeholder(_) => "placeholder",
            SensorError::NotFound(_) => "not_found",
            SensorError::Io { .. } => "io",
        }
    }
}

/// Refuse a value outside what the sensor can physically report: it is a fault, not weather.
pub fn in_range(
    field: &'static str,
    value: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, SensorError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(SensorError::OutOfRange { field, value })
    }
}

/// Turn any embedded-hal I2C error into a `SensorError::Bus`, naming the error kind
/// (NACK on address, data NACK, arbitration loss...).
pub fn bus_error<E: embedded_hal::i2c::Error>(err: E) -> SensorError {
    SensorError::Bus(format!("{:?}", err.kind()))
}

/// How to open a configured sensor: as a periodic sensor, or as one that also reports events.
pub enum Opener {
    Periodic(crate::sampler::Opener<dyn Sensor>),
    Events(crate::sampler::Opener<dyn EventSensor>),
}

/// The driver factory: which code reads each `kind` of the board file. Opening happens later,
/// in the sampler thread, and again whenever a failing sensor is re-probed.
pub fn opener(cfg: &crate::config::SensorConfig, state_dir: &std::path::Path) -> Opener {
    use crate::config::SensorKind as K;
    let cfg = cfg.clone();
    let seed = cfg
        .seed
        .unwrap_or_else(|| crate::rng::Rng::from_text(&cfg.id).next_u64());
    match cfg.kind {
        K::SimulatedClimate => Opener::Periodic(Box::new(move || {
            Ok(Box::new(simulated::SimulatedClimate::new(seed)) as Box<dyn Sensor>)
        })),
        K::SimulatedMotion => Opener::Events(Box::new(move || {
            Ok(Box::new(simulated::SimulatedMotion::new(seed)) as Box<dyn EventSensor>)
        })),
        K::SimulatedDoor => Opener::Events(Box::new(move || {
            Ok(Box::new(simulated::SimulatedDoor::new(seed)) as Box<dyn EventSensor>)
        })),
        K::Sht3x | K::Shtc3 | K::Bme280 | K::Aht20 | K::Aht10 | K::Htu21d => {
            Opener::Periodic(Box::new(move || i2c::open(&cfg)))
        }
        K::Ds18b20 | K::Dht22 | K::SocTemp => Opener::Periodic(Box::new(move || sysfs::open(&cfg))),
        K::Pir | K::ReedSwitch => {
            let state_dir = state_dir.to_path_buf();
            Opener::Events(Box::new(move || gpio::open(&cfg, &state_dir)))
        }
    }
}
