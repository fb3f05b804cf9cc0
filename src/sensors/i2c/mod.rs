//! I2C climate chips: one driver per chip family, each generic over embedded-hal 1.0 `I2c` and
//! `DelayNs` so tests run them against a mock bus. The Pi's I2C controller mishandles clock
//! stretching, so every driver uses its chip's no-stretch commands: a write, a wait, a read.

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

use crate::reading::{Fields, Value};
use crate::sensors::SensorError;
use std::ops::RangeInclusive;

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

/// Refuse a temperature outside the chip's rated range: it is a decoding fault, not a value.
pub(crate) fn checked_temperature(
    celsius: f64,
    rated: RangeInclusive<f64>,
) -> Result<f64, SensorError> {
    if rated.contains(&celsius) {
        Ok(celsius)
    } else {
        Err(SensorError::OutOfRange {
            field: "temperature",
            value: celsius,
        })
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
