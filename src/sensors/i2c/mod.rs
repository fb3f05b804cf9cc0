//! I2C climate chips: one driver per chip family, each generic over embedded-hal 1.0 `I2c` and
//! `DelayNs` so tests run them against a mock bus. The Pi's I2C controller mishandles clock
//! stretching, so every driver uses its chip's no-stretch commands: a write, a wait, a read.
//! This module also builds a driver from a `[[sensor]]` table and scans a bus like i2cdetect.

/// Every climate chip reads as a `Sensor` the same way: measure, then name the fields.
macro_rules! sensor_via_measure {
    ($driver:ident) => {
        impl<I2C, D> crate::sensors::Sensor for $driver<I2C, D>
        where
            I2C: embedded_hal::i2c::I2c + Send,
            D: embedded_hal::delay::DelayNs + Send,
        {
            fn read(&mut self) -> Result<crate::reading::Fields, crate::sensors::SensorError> {
                self.measure()
                    .map(crate::sensors::i2c::Measurement::into_fields)
            }
        }
    };
}

pub mod aht20;
pub mod bme280;
pub mod crc;
pub mod htu21d;
pub mod sht3x;
pub mod shtc3;

pub use aht20::Aht20;
pub use bme280::Bme280;
pub use htu21d::Htu21d;
pub use sht3x::Sht3x;
pub use shtc3::Shtc3;

use crate::config::{I2cChip, I2cSettings};
use crate::reading::{Fields, Value};
use crate::sensors::{in_range, Sensor, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The bus on the Pi's 40-pin header (pins 3 and 5).
pub const DEFAULT_BUS: &str = "/dev/i2c-1";

/// How far past 0 or 100 %RH a reading may stray and still be clamped. Chips overshoot a
/// little near saturation; anything further is a fault, not weather.
const HUMIDITY_OVERSHOOT: f64 = 3.0;

/// One measurement of a climate chip, already checked to be physically possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// °C.
    pub temperature: f64,
    /// %RH, for chips that measure it.
    pub humidity: Option<f64>,
    /// hPa, for chips that measure it.
    pub pressure: Option<f64>,
}

impl Measurement {
    /// A temperature-and-humidity chip's reading, checked: temperature within the chip's rated
    /// range, humidity within 0..=100 %RH after clamping a small overshoot.
    pub fn climate(
        celsius: f64,
        percent: f64,
        rated: RangeInclusive<f64>,
    ) -> Result<Measurement, SensorError> {
        Ok(Measurement {
            temperature: in_range("temperature", celsius, rated)?,
            humidity: Some(checked_humidity(percent)?),
            pressure: None,
        })
    }

    /// Field names in one place so every chip writes the same series.
    pub fn into_fields(self) -> Fields {
        let mut fields = vec![("temperature", Value::Float(self.temperature))];
        if let Some(humidity) = self.humidity {
            fields.push(("humidity", Value::Float(humidity)));
        }
        if let Some(pressure) = self.pressure {
            fields.push(("pressure", Value::Float(pressure)));
        }
        fields
    }
}

/// Clamp a small overshoot into 0..=100 %RH; refuse anything further out.
pub(crate) fn checked_humidity(percent: f64) -> Result<f64, SensorError> {
    let allowed = -HUMIDITY_OVERSHOOT..=100.0 + HUMIDITY_OVERSHOOT;
    if allowed.contains(&percent) {
        Ok(percent.clamp(0.0, 100.0))
    } else {
        Err(SensorError::OutOfRange {
            field: "humidity",
            value: percent,
        })
    }
}

/// Open the bus a `[[sensor]]` table names (default /dev/i2c-1) and build its chip's driver.
/// Each sensor gets its own handle; Linux serialises transfers from several handles on a bus.
pub fn open(chip: I2cChip, settings: &I2cSettings) -> Result<Box<dyn Sensor>, SensorError> {
    let address = settings.address.unwrap_or(chip.default_address());
    let path = settings
        .bus
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BUS));
    let i2c = linux_embedded_hal::I2cdev::new(&path).map_err(|e| open_error(&path, e.into()))?;
    Ok(build(chip, i2c, linux_embedded_hal::Delay, address))
}

/// Build the driver for `chip` on any bus, so the factory is tested without hardware.
pub fn build<I2C, D>(chip: I2cChip, i2c: I2C, delay: D, address: u8) -> Box<dyn Sensor>
where
    I2C: I2c + Send + 'static,
    D: DelayNs + Send + 'static,
{
    match chip {
        I2cChip::Sht3x => Box::new(Sht3x::new(i2c, delay, address)),
        I2cChip::Shtc3 => Box::new(Shtc3::new(i2c, delay, address)),
        I2cChip::Bme280 => Box::new(Bme280::new(i2c, delay, address)),
        I2cChip::Aht20 => Box::new(Aht20::new(i2c, delay, address)),
        I2cChip::Aht10 => Box::new(Aht20::with_variant(
            i2c,
            delay,
            address,
            aht20::Variant::Aht10,
        )),
        I2cChip::Htu21d => Box::new(Htu21d::new(i2c, delay, address)),
    }
}

/// A missing device node usually means I2C is not enabled, so say where to look.
fn open_error(path: &Path, err: std::io::Error) -> SensorError {
    if err.kind() == std::io::ErrorKind::NotFound {
        SensorError::NotFound(format!(
            "I2C bus {} (enable it with dtparam=i2c_arm=on or raspi-config)",
            path.display()
        ))
    } else {
        SensorError::Io {
            path: path.display().to_string(),
            source: err,
        }
    }
}

/// The lowest and highest addresses i2cdetect probes; the rest are reserved by the I2C spec.
const SCAN_FIRST: u8 = 0x08;
const SCAN_LAST: u8 = 0x77;

/// Probe every address like `i2cdetect -y 1` and name the chips fieldlink knows at each one
/// that answers. An address that answers but is unknown comes back with an empty list.
pub fn scan<I: I2c>(i2c: &mut I) -> Vec<(u8, Vec<&'static str>)> {
    (SCAN_FIRST..=SCAN_LAST)
        .filter(|&address| probe(i2c, address))
        .map(|address| (address, known_chips(address)))
        .collect()
}

/// i2cdetect's default: a zero-length write, except a 1-byte read where EEPROMs live, because
/// the i2cdetect manual warns that a bare write can corrupt some of them (the AT24RF08).
fn probe<I: I2c>(i2c: &mut I, address: u8) -> bool {
    if matches!(address, 0x30..=0x37 | 0x50..=0x5F) {
        i2c.read(address, &mut [0u8]).is_ok()
    } else {
        i2c.write(address, &[]).is_ok()
    }
}

/// Chips with a driver here that can sit at `address`, as the I2C chip table names them.
pub fn known_chips(address: u8) -> Vec<&'static str> {
    I2cChip::ALL
        .iter()
        .map(|chip| chip.row())
        .filter(|row| row.addresses.contains(&address))
        .map(|row| row.scan_name)
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Small helpers the driver tests share.

    use crate::reading::{Fields, Value};
    use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};

    /// What the bus reports when nothing answers at the address.
    pub fn nack() -> ErrorKind {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    }

    /// The float value of one field, rounded to hundredths as datasheets print them.
    pub fn hundredths(fields: &Fields, name: &str) -> f64 {
        match fields.iter().find(|(n, _)| *n == name) {
            Some((_, Value::Float(v))) => (v * 100.0).round() / 100.0,
            other => panic!("no float field {name}: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::bus_error;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
    use testing::nack;

    /// The bus as i2cdetect would see it with chips at `present` and nothing elsewhere.
    fn bus_with(present: &[u8]) -> Vec<Transaction> {
        (SCAN_FIRST..=SCAN_LAST)
            .map(|address| {
                let probe = if matches!(address, 0x30..=0x37 | 0x50..=0x5F) {
                    Transaction::read(address, vec![0])
                } else {
                    Transaction::write(address, vec![])
                };
                if present.contains(&address) {
                    probe
                } else {
                    probe.with_error(nack())
                }
            })
            .collect()
    }

    #[test]
    fn scan_names_the_chips_that_answer() {
        let mut i2c = Mock::new(&bus_with(&[0x44, 0x50, 0x76]));
        let found = scan(&mut i2c);
        i2c.done();
        let expected: Vec<(u8, Vec<&str>)> = vec![
            (0x44, vec!["SHT3x"]),
            (0x50, vec![]),
            (0x76, vec!["BME280/BMP280"]),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn the_chip_table_drives_scan_naming() {
        // 0x38 is shared by the AHT20 and the AHT10; 0x39 is the AHT10's alternative.
        let mut i2c = Mock::new(&bus_with(&[0x38, 0x39]));
        let found = scan(&mut i2c);
        i2c.done();
        let expected: Vec<(u8, Vec<&str>)> =
            vec![(0x38, vec!["AHT20", "AHT10"]), (0x39, vec!["AHT10"])];
        assert_eq!(found, expected);
        for chip in I2cChip::ALL {
            let row = chip.row();
            for address in row.addresses {
                assert!(known_chips(*address).contains(&row.scan_name), "{chip:?}");
            }
        }
    }

    #[test]
    fn scan_of_an_empty_bus_finds_nothing() {
        let mut i2c = Mock::new(&bus_with(&[]));
        assert!(scan(&mut i2c).is_empty());
        i2c.done();
    }

    #[test]
    fn opening_a_missing_bus_names_its_path() {
        let settings = I2cSettings {
            bus: Some(PathBuf::from("/nonexistent/i2c-9")),
            address: None,
        };
        match open(I2cChip::Sht3x, &settings) {
            Err(SensorError::NotFound(message)) => {
                assert!(message.contains("/nonexistent/i2c-9"), "{message}")
            }
            Err(other) => panic!("expected NotFound, got {other:?}"),
            Ok(_) => panic!("expected NotFound, got a sensor"),
        }
    }

    #[test]
    fn the_aht10_kind_builds_the_aht10_protocol() {
        // AHT10: status, its own calibration command (0xE1 0x08 0x00), trigger, six bytes
        // without CRC. An AHT20 driver would send 0xBE and read seven.
        let mut i2c = Mock::new(&[
            Transaction::read(0x39, vec![0x00]),
            Transaction::write(0x39, vec![0xE1, 0x08, 0x00]),
            Transaction::read(0x39, vec![0x08]),
            Transaction::write(0x39, vec![0xAC, 0x33, 0x00]),
            Transaction::read(0x39, vec![0x1C, 0x80, 0x00, 0x08, 0x00, 0x00]),
        ]);
        let mut sensor = build(I2cChip::Aht10, i2c.clone(), NoopDelay::new(), 0x39);
        let fields = sensor.read().expect("good frame");
        assert_eq!(fields[1], ("humidity", Value::Float(50.0)));
        i2c.done();
    }

    #[test]
    fn build_makes_a_driver_that_reads_at_the_given_address() {
        let mut i2c = Mock::new(&[
            Transaction::write(0x45, vec![0x24, 0x00]),
            Transaction::read(0x45, vec![0x66, 0x66, 0x93, 0x80, 0x00, 0xA2]),
        ]);
        let mut sensor = build(I2cChip::Sht3x, i2c.clone(), NoopDelay::new(), 0x45);
        let fields = sensor.read().expect("good frame");
        assert_eq!(fields[0], ("temperature", Value::Float(25.0)));
        i2c.done();
    }

    #[test]
    fn every_chip_defaults_to_the_address_its_driver_names() {
        use I2cChip::*;
        let driver_default = |chip: I2cChip| match chip {
            Sht3x => sht3x::DEFAULT_ADDRESS,
            Shtc3 => shtc3::DEFAULT_ADDRESS,
            Bme280 => bme280::DEFAULT_ADDRESS,
            Aht20 | Aht10 => aht20::DEFAULT_ADDRESS,
            Htu21d => htu21d::DEFAULT_ADDRESS,
        };
        for chip in I2cChip::ALL {
            assert_eq!(chip.default_address(), driver_default(*chip), "{chip:?}");
        }
        let addresses: Vec<_> = I2cChip::ALL
            .iter()
            .map(|chip| chip.default_address())
            .collect();
        assert_eq!(addresses, [0x44, 0x70, 0x76, 0x38, 0x38, 0x40]);
    }

    #[test]
    fn a_bus_error_keeps_its_kind_as_the_cause() {
        let err = bus_error(nack());
        assert_eq!(err.reason(), "bus");
        let cause = std::error::Error::source(&err).expect("a cause");
        assert_eq!(cause.to_string(), "NoAcknowledge(Address)");
        assert_eq!(err.to_string(), "bus error: NoAcknowledge(Address)");
    }

    #[test]
    fn humidity_a_little_past_100_is_clamped_but_far_past_is_refused() {
        assert_eq!(checked_humidity(101.5).ok(), Some(100.0));
        assert_eq!(checked_humidity(-1.0).ok(), Some(0.0));
        assert!(matches!(
            checked_humidity(119.0),
            Err(SensorError::OutOfRange {
                field: "humidity",
                ..
            })
        ));
    }
}
