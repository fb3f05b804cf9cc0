//! TE HTU21D and Silicon Labs Si7021: the same command set and conversion. The "hold master"
//! commands stretch the clock for the whole measurement, which the Pi mishandles, so we use
//! the no-hold commands: write, wait, read (the chip NACKs the read until it is done).

use super::{crc, Measurement};
use crate::sensors::{bus_error, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Both chips have one fixed address.
pub const DEFAULT_ADDRESS: u8 = 0x40;

/// The chips' rated operating range (both datasheets).
const RATED_CELSIUS: std::ops::RangeInclusive<f64> = -40.0..=125.0;

/// Longest 14-bit temperature measurement (HTU21D: 50 ms; Si7021: 10.8 ms).
const TEMPERATURE_US: u32 = 50_000;

/// Longest 12-bit humidity measurement (HTU21D: 16 ms; Si7021: 12 ms).
const HUMIDITY_US: u32 = 16_000;

/// The two low bits of each word are status, not data (datasheet "Conversion of signal
/// outputs").
const STATUS_BITS: u16 = 0b11;

/// HTU21D opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Temperature, no hold master.
    MeasureTemperature,
    /// Relative humidity, no hold master.
    MeasureHumidity,
}

impl Command {
    pub fn as_bytes(self) -> [u8; 1] {
        match self {
            Command::MeasureTemperature => [0xF3],
            Command::MeasureHumidity => [0xF5],
        }
    }
}

/// °C from a raw temperature word, status bits included.
pub fn temperature_celsius(raw: u16) -> f64 {
    -46.85 + 175.72 * f64::from(raw & !STATUS_BITS) / 65536.0
}

/// %RH from a raw humidity word, status bits included. Can leave 0..100 slightly by design.
pub fn humidity_percent(raw: u16) -> f64 {
    -6.0 + 125.0 * f64::from(raw & !STATUS_BITS) / 65536.0
}

/// An HTU21D or Si7021 on an I2C bus.
pub struct Htu21d<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
}

impl<I2C: I2c, D: DelayNs> Htu21d<I2C, D> {
    pub fn new(i2c: I2C, delay: D, address: u8) -> Self {
        Htu21d {
            i2c,
            delay,
            address,
        }
    }

    /// Give the bus and delay back, e.g. to share them with another driver.
    pub fn destroy(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    /// Start one measurement, wait for it and read its CRC-checked word.
    fn word(&mut self, command: Command, wait_us: u32) -> Result<u16, SensorError> {
        self.i2c
            .write(self.address, &command.as_bytes())
            .map_err(bus_error)?;
        self.delay.delay_us(wait_us);
        let mut frame = [0u8; 3];
        self.i2c.read(self.address, &mut frame).map_err(bus_error)?;
        crc::checked_word(frame, crc::HTU21D_INIT)
    }

    /// Temperature, then humidity: two measurements, each its own command.
    pub fn measure(&mut self) -> Result<Measurement, SensorError> {
        let t = self.word(Command::MeasureTemperature, TEMPERATURE_US)?;
        let rh = self.word(Command::MeasureHumidity, HUMIDITY_US)?;
        Measurement::climate(temperature_celsius(t), humidity_percent(rh), RATED_CELSIUS)
    }
}

sensor_via_measure!(Htu21d);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Fields;
    use crate::sensors::i2c::testing::{hundredths, nack};
    use crate::sensors::Sensor;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    fn read_with(transactions: &[Transaction]) -> Result<Fields, SensorError> {
        let mut sensor = Htu21d::new(Mock::new(transactions), NoopDelay::new(), 0x40);
        let result = sensor.read();
        sensor.destroy().0.done();
        result
    }

    // HTU21D datasheet examples: 0x683A → 24.7 °C, 0x7C80 → 54.8 %RH.
    #[test]
    fn the_datasheet_examples_give_24_7_degrees_and_54_8_percent() {
        assert_eq!((temperature_celsius(0x683A) * 10.0).round() / 10.0, 24.7);
        assert_eq!((humidity_percent(0x7C80) * 10.0).round() / 10.0, 54.8);
    }

    #[test]
    fn the_status_bits_are_cleared_before_converting() {
        assert_eq!(temperature_celsius(0x683A), temperature_celsius(0x6838));
        assert_eq!(humidity_percent(0x7C82), humidity_percent(0x7C80));
    }

    #[test]
    fn a_good_read_measures_temperature_then_humidity() {
        let fields = read_with(&[
            Transaction::write(0x40, vec![0xF3]),
            Transaction::read(0x40, vec![0x68, 0x3A, 0x7C]),
            Transaction::write(0x40, vec![0xF5]),
            Transaction::read(0x40, vec![0x7C, 0x80, 0xF5]),
        ])
        .expect("good frames");
        assert_eq!(hundredths(&fields, "temperature"), 24.69);
        assert_eq!(hundredths(&fields, "humidity"), 54.79);
    }

    #[test]
    fn a_nack_while_still_measuring_is_a_bus_error() {
        let result = read_with(&[
            Transaction::write(0x40, vec![0xF3]),
            Transaction::read(0x40, vec![0, 0, 0]).with_error(nack()),
        ]);
        assert!(matches!(result, Err(SensorError::Bus(_))), "{result:?}");
    }

    #[test]
    fn a_corrupt_temperature_word_is_a_crc_error() {
        let result = read_with(&[
            Transaction::write(0x40, vec![0xF3]),
            Transaction::read(0x40, vec![0x68, 0x3B, 0x7C]),
        ]);
        assert!(matches!(result, Err(SensorError::Crc { .. })), "{result:?}");
    }
}
