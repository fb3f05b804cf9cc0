//! Sensirion SHTC3: a low-power temperature and humidity chip that sleeps between readings.
//! Each read wakes it, measures with the no-stretch command (the Pi mishandles clock
//! stretching), reads, and puts it back to sleep.

use super::{crc, Measurement};
use crate::sensors::{bus_error, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// The SHTC3 has one fixed address.
pub const DEFAULT_ADDRESS: u8 = 0x70;

/// The chip's rated operating range (datasheet table 2).
const RATED_CELSIUS: std::ops::RangeInclusive<f64> = -40.0..=125.0;

/// Longest time from the wakeup command until the chip takes commands (datasheet table 5).
const WAKEUP_US: u32 = 240;

/// Longest normal-mode measurement (datasheet table 5: 12.1 ms).
const MEASUREMENT_US: u32 = 12_100;

/// SHTC3 opcodes (datasheet section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Wakeup,
    /// Normal mode, temperature first, clock stretching disabled.
    MeasureTemperatureFirst,
    Sleep,
}

impl Command {
    pub fn as_bytes(self) -> [u8; 2] {
        match self {
            Command::Wakeup => [0x35, 0x17],
            Command::MeasureTemperatureFirst => [0x78, 0x66],
            Command::Sleep => [0xB0, 0x98],
        }
    }
}

/// °C from a raw temperature word (datasheet section 5.11).
pub fn temperature_celsius(raw: u16) -> f64 {
    -45.0 + 175.0 * f64::from(raw) / 65536.0
}

/// %RH from a raw humidity word (datasheet section 5.11).
pub fn humidity_percent(raw: u16) -> f64 {
    100.0 * f64::from(raw) / 65536.0
}

/// An SHTC3 on an I2C bus.
pub struct Shtc3<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
}

impl<I2C: I2c, D: DelayNs> Shtc3<I2C, D> {
    pub fn new(i2c: I2C, delay: D, address: u8) -> Self {
        Shtc3 {
            i2c,
            delay,
            address,
        }
    }

    /// Give the bus and delay back, e.g. to share them with another driver.
    pub fn destroy(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    fn command(&mut self, command: Command) -> Result<(), SensorError> {
        self.i2c
            .write(self.address, &command.as_bytes())
            .map_err(bus_error)
    }

    /// Wake, measure, read, sleep. The chip goes back to sleep before the data is checked, so
    /// a bad checksum does not leave it drawing power.
    pub fn measure(&mut self) -> Result<Measurement, SensorError> {
        self.command(Command::Wakeup)?;
        self.delay.delay_us(WAKEUP_US);
        self.command(Command::MeasureTemperatureFirst)?;
        self.delay.delay_us(MEASUREMENT_US);
        let mut frame = [0u8; 6];
        self.i2c.read(self.address, &mut frame).map_err(bus_error)?;
        self.command(Command::Sleep)?;
        let (t, rh) = crc::sensirion_pair(frame)?;
        Measurement::climate(temperature_celsius(t), humidity_percent(rh), RATED_CELSIUS)
    }
}

sensor_via_measure!(Shtc3);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Fields;
    use crate::sensors::i2c::testing::{hundredths, nack};
    use crate::sensors::Sensor;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    fn read_with(transactions: &[Transaction]) -> Result<Fields, SensorError> {
        let mut sensor = Shtc3::new(Mock::new(transactions), NoopDelay::new(), 0x70);
        let result = sensor.read();
        sensor.destroy().0.done();
        result
    }

    fn write(command: Command) -> Transaction {
        Transaction::write(0x70, command.as_bytes().to_vec())
    }

    #[test]
    fn raw_0x648b_is_23_73_degrees_as_in_the_datasheet() {
        assert_eq!((temperature_celsius(0x648B) * 100.0).round() / 100.0, 23.73);
    }

    #[test]
    fn a_good_read_wakes_measures_and_sleeps() {
        let fields = read_with(&[
            write(Command::Wakeup),
            write(Command::MeasureTemperatureFirst),
            Transaction::read(0x70, vec![0x64, 0x8B, 0xC7, 0x5A, 0x00, 0x88]),
            write(Command::Sleep),
        ])
        .expect("good frame");
        assert_eq!(hundredths(&fields, "temperature"), 23.73);
        assert_eq!(hundredths(&fields, "humidity"), 35.16);
    }

    #[test]
    fn no_answer_to_wakeup_is_a_bus_error() {
        let result = read_with(&[write(Command::Wakeup).with_error(nack())]);
        assert!(matches!(result, Err(SensorError::Bus(_))), "{result:?}");
    }

    #[test]
    fn a_corrupt_temperature_word_is_a_crc_error_after_sleeping() {
        let result = read_with(&[
            write(Command::Wakeup),
            write(Command::MeasureTemperatureFirst),
            Transaction::read(0x70, vec![0x64, 0x8B, 0xC6, 0x5A, 0x00, 0x88]),
            write(Command::Sleep),
        ]);
        assert!(
            matches!(
                result,
                Err(SensorError::Crc {
                    expected: 0xC7,
                    actual: 0xC6
                })
            ),
            "{result:?}"
        );
    }
}
