//! Sensors: one driver per chip, all behind the same small trait so the sampler never knows
//! which bus a value came from. I2C drivers are generic over embedded-hal 1.0 traits; sysfs
//! readers take a root path; GPIO edge sensors read through an `EdgeSource` trait. Each kind
//! of sensor also has a simulated twin that needs no hardware.
//!
//! Adding an I2C chip:
//! 1. the driver, `sensors/i2c/<chip>.rs`: generic over `I2c` and `DelayNs`, with
//!    `sensor_via_measure!` and tests against a mock bus;
//! 2. one row in the I2C table in `config/kinds.rs` (variant, `kind` name, addresses with the
//!    default first, what `scan` calls it); the compiler then asks for its arm in
//!    `i2c::build`, the one place that names the driver;
//! 3. its row in the README's `[[sensor]]` table.
//!
//! The board keys (`bus`, `address`) and the default address come with the bus. A kind on
//! another bus is the same: a row in that bus's table, and every `match` the compiler points at.

pub mod gpio;
pub mod i2c;
pub mod simulated;
pub mod sysfs;

use crate::config::{SensorConfig, SensorKind, SimulatedKind};
use crate::reading::{Event, Fields};
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
    /// one reading of kind `Event`, tagged with its edge and stamped when it arrives.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, SensorError>;
}

/// Why a sensor gave no reading. Every variant is counted per sensor and shown in `status`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    /// The bus transfer failed: NACK (nothing at the address), arbitration loss, a timeout.
    #[error("bus error: {0}")]
    Bus(#[source] BusFault),
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

/// What went wrong on the bus, as embedded-hal names it (NACK on address, data NACK,
/// arbitration loss...). Each HAL has its own error type; its kind is what every HAL shares,
/// so the cause is kept as that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}")]
pub struct BusFault(pub embedded_hal::i2c::ErrorKind);

/// Turn any embedded-hal I2C error into a `SensorError::Bus` that keeps its kind as the cause.
pub fn bus_error<E: embedded_hal::i2c::Error>(err: E) -> SensorError {
    SensorError::Bus(BusFault(err.kind()))
}

/// Opens (or re-opens) a sensor's driver. The sampler calls it at start and again whenever a
/// failing sensor is re-probed.
pub type OpenDriver<S> = Box<dyn FnMut() -> Result<Box<S>, SensorError> + Send>;

/// A configured sensor's driver factory: periodic only, or also reporting events.
pub enum DriverFactory {
    Periodic(OpenDriver<dyn Sensor>),
    Events(OpenDriver<dyn EventSensor>),
}

/// Which code reads each kind of the board file. Opening happens later, in the sampler thread.
pub fn driver_factory(cfg: &SensorConfig, state_dir: &std::path::Path) -> DriverFactory {
    let id = cfg.id.clone();
    match cfg.kind.clone() {
        SensorKind::Simulated(kind, settings) => {
            let seed = settings
                .seed
                .unwrap_or_else(|| crate::rng::Rng::from_text(&id).next_u64());
            simulated_factory(kind, seed)
        }
        SensorKind::I2c(chip, settings) => {
            DriverFactory::Periodic(Box::new(move || i2c::open(chip, &settings)))
        }
        SensorKind::Sysfs(settings) => {
            DriverFactory::Periodic(Box::new(move || sysfs::open(&settings)))
        }
        SensorKind::Gpio(kind, settings) => {
            let state_dir = state_dir.to_path_buf();
            DriverFactory::Events(Box::new(move || {
                gpio::open(&id, kind, &settings, &state_dir)
            }))
        }
    }
}

/// Simulated twins need no hardware, so opening one cannot fail.
fn simulated_factory(kind: SimulatedKind, seed: u64) -> DriverFactory {
    match kind {
        SimulatedKind::Climate => DriverFactory::Periodic(Box::new(move || {
            Ok(Box::new(simulated::SimulatedClimate::new(seed)) as Box<dyn Sensor>)
        })),
        SimulatedKind::Motion => DriverFactory::Events(Box::new(move || {
            Ok(Box::new(simulated::SimulatedMotion::new(seed)) as Box<dyn EventSensor>)
        })),
        SimulatedKind::Door => DriverFactory::Events(Box::new(move || {
            Ok(Box::new(simulated::SimulatedDoor::new(seed)) as Box<dyn EventSensor>)
        })),
    }
}
