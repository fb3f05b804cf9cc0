//! Sensirion SHT30/SHT31/SHT35: temperature and humidity in one single-shot measurement. The
//! clock-stretching variant of the command would hold SCL low while the chip measures, which
//! the Pi's controller mishandles, so we send the no-stretch command, wait, then read.

use super::{crc, Measurement};
use crate::sensors::{bus_error, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// ADDR pin low.
pub const DEFAULT_ADDRESS: u8 = 0x44;
/// ADDR pin high.
pub const ALTERNATE_ADDRESS: u8 = 0x45;

/// The chip's rated operating range (datasheet table 2).
const RATED_CELSIUS: std::ops::RangeInclusive<f64> = -40.0..=125.0;

/// Longest high-repeatability measurement (datasheet table 4 says 15 ms; later revisions
/// 15.5 ms). Reading earlier gets a NACK.
const MEASUREMENT_US: u32 = 16_000;

/// SHT3x opcodes (datasheet section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Single shot, high repeatability, clock stretching disabled.
    SingleShotHighRepeatability,
}

impl Command {
    pub fn as_bytes(self) -> [u8; 2] {
        match self {
            Command::SingleShotHighRepeatability => [0x24, 0x00],
        }
    }
}

/// °C from a raw temperature word (datasheet equation 2).
pub fn temperature_celsius(raw: u16) -> f64 {
    -45.0 + 175.0 * f64::from(raw) / 65535.0
}

/// %RH from a raw humidity word (datasheet equation 1).
pub fn humidity_percent(raw: u16) -> f64 {
    100.0 * f64::from(raw) / 65535.0
}

/// An SHT3x on an I2C bus.
pub struct Sht3x<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
}

impl<I2C: I2c, D: DelayNs> Sht3x<I2C, D> {
    pub fn new(i2c: I2C, delay: D, address: u8) -> Self {
        Sht3x {
            i2c,
            delay,
            address,
        }
    }

    /// Give the bus and delay back, e.g. to share them with another driver.
    pub fn destroy(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    /// One single-shot measurement of temperature and humidity.
    pub fn measure(&mut self) -> Result<Measurement, SensorError> {
        let command = Command::SingleShotHighRepeatability.as_bytes();
        self.i2c.write(self.address, &command).map_err(bus_error)?;
        self.delay.delay_us(MEASUREMENT_US);
        let mut frame = [0u8; 6];
        self.i2c.read(self.address, &mut frame).map_err(bus_error)?;
        let (t, rh) = crc::sensirion_pair(frame)?;
        Measurement::climate(temperature_celsius(t), humidity_percent(rh), RATED_CELSIUS)
    }
}

sensor_via_measure!(Sht3x);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Fields;
    use crate::sensors::i2c::testing::{hundredths, nack};
    use crate::sensors::Sensor;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    const MEASURE: [u8; 2] = [0x24, 0x00];

    fn read_with(transactions: &[Transaction]) -> Result<Fields, SensorError> {
        let mut sensor = Sht3x::new(Mock::new(transactions), NoopDelay::new(), 0x44);
        let result = sensor.read();
        sensor.destroy().0.done();
        result
    }

    #[test]
    fn raw_0x6666_is_25_degrees_as_in_the_datasheet() {
        assert_eq!(temperature_celsius(0x6666), 25.0);
    }

    #[test]
    fn the_raw_extremes_map_to_the_formula_ends() {
        assert_eq!(temperature_celsius(0), -45.0);
        assert_eq!(humidity_percent(0xFFFF), 100.0);
    }

    #[test]
    fn a_good_frame_reads_25_degrees_and_50_percent() {
        let fields = read_with(&[
            Transaction::write(0x44, MEASURE.to_vec()),
            Transaction::read(0x44, vec![0x66, 0x66, 0x93, 0x80, 0x00, 0xA2]),
        ])
        .expect("good frame");
        assert_eq!(hundredths(&fields, "temperature"), 25.0);
        assert_eq!(hundredths(&fields, "humidity"), 50.0);
    }

    #[test]
    fn no_answer_to_the_command_is_a_bus_error() {
        let result = read_with(&[Transaction::write(0x44, MEASURE.to_vec()).with_error(nack())]);
        assert!(matches!(result, Err(SensorError::Bus(_))), "{result:?}");
    }

    #[test]
    fn a_corrupt_humidity_word_is_a_crc_error() {
        let result = read_with(&[
            Transaction::write(0x44, MEASURE.to_vec()),
            Transaction::read(0x44, vec![0x66, 0x66, 0x93, 0x80, 0x01, 0xA2]),
        ]);
        assert!(matches!(result, Err(SensorError::Crc { .. })), "{result:?}");
    }

    #[test]
    fn minus_45_degrees_is_out_of_the_rated_range() {
        // 0x0000 with its valid CRC 0x81: a checksum-clean frame that cannot be true.
        let result = read_with(&[
            Transaction::write(0x44, MEASURE.to_vec()),
            Transaction::read(0x44, vec![0x00, 0x00, 0x81, 0x80, 0x00, 0xA2]),
        ]);
        assert!(
            matches!(
                result,
                Err(SensorError::OutOfRange {
                    field: "temperature",
                    ..
                })
            ),
            "{result:?}"
        );
    }
}
