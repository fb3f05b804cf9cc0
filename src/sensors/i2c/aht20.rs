//! Aosong AHT20 and its predecessor AHT10: temperature and humidity packed into 20-bit values.
//! The chip must hold its factory calibration (status bit 3) before it measures correctly, so
//! every read checks the status and loads the calibration when a power cycle lost it. The
//! AHT20 appends a CRC to its data; the AHT10 sends none.

use super::{crc, Measurement};
use crate::sensors::{bus_error, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Both chips have one fixed address.
pub const DEFAULT_ADDRESS: u8 = 0x38;

/// The chips' rated operating range.
const RATED_CELSIUS: std::ops::RangeInclusive<f64> = -40.0..=85.0;

/// Set while a measurement is running.
const STATUS_BUSY: u8 = 0x80;
/// Set once the calibration coefficients are loaded.
const STATUS_CALIBRATED: u8 = 0x08;

/// Time for the initialisation command to load the calibration (datasheet: 10 ms).
const INIT_US: u32 = 10_000;
/// Time for one measurement (datasheet: wait 80 ms after triggering).
const MEASUREMENT_US: u32 = 80_000;

/// Which chip of the family, since they differ in the init opcode and the CRC byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Aht20,
    Aht10,
}

/// AHT10/AHT20 opcodes with their parameter bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Load the calibration (AHT20 opcode).
    InitializeAht20,
    /// Load the calibration (AHT10 opcode).
    InitializeAht10,
    /// Start one temperature and humidity measurement.
    TriggerMeasurement,
}

impl Command {
    pub fn as_bytes(self) -> [u8; 3] {
        match self {
            Command::InitializeAht20 => [0xBE, 0x08, 0x00],
            Command::InitializeAht10 => [0xE1, 0x08, 0x00],
            Command::TriggerMeasurement => [0xAC, 0x33, 0x00],
        }
    }
}

/// The 20-bit humidity and temperature values from bytes 1..=5 of a data frame.
pub fn unpack(frame: &[u8; 6]) -> (u32, u32) {
    let [_, b1, b2, b3, b4, b5] = frame.map(u32::from);
    let humidity = (b1 << 12) | (b2 << 4) | (b3 >> 4);
    let temperature = ((b3 & 0x0F) << 16) | (b4 << 8) | b5;
    (humidity, temperature)
}

/// %RH from a 20-bit raw value (datasheet section 6.1).
pub fn humidity_percent(raw: u32) -> f64 {
    f64::from(raw) / f64::from(1u32 << 20) * 100.0
}

/// °C from a 20-bit raw value (datasheet section 6.2).
pub fn temperature_celsius(raw: u32) -> f64 {
    f64::from(raw) / f64::from(1u32 << 20) * 200.0 - 50.0
}

/// An AHT20 or AHT10 on an I2C bus.
pub struct Aht20<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    variant: Variant,
}

impl<I2C: I2c, D: DelayNs> Aht20<I2C, D> {
    /// An AHT20, which checks the CRC byte of every frame.
    pub fn new(i2c: I2C, delay: D, address: u8) -> Self {
        Self::with_variant(i2c, delay, address, Variant::Aht20)
    }

    pub fn with_variant(i2c: I2C, delay: D, address: u8, variant: Variant) -> Self {
        Aht20 {
            i2c,
            delay,
            address,
            variant,
        }
    }

    /// Give the bus and delay back, e.g. to share them with another driver.
    pub fn destroy(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    fn status(&mut self) -> Result<u8, SensorError> {
        let mut status = [0u8];
        self.i2c
            .read(self.address, &mut status)
            .map_err(bus_error)?;
        Ok(status[0])
    }

    fn command(&mut self, command: Command) -> Result<(), SensorError> {
        self.i2c
            .write(self.address, &command.as_bytes())
            .map_err(bus_error)
    }

    /// Load the calibration if the chip lost it; refuse to measure if it will not load.
    fn ensure_calibrated(&mut self) -> Result<(), SensorError> {
        if self.status()? & STATUS_CALIBRATED != 0 {
            return Ok(());
        }
        self.command(match self.variant {
            Variant::Aht20 => Command::InitializeAht20,
            Variant::Aht10 => Command::InitializeAht10,
        })?;
        self.delay.delay_us(INIT_US);
        let status = self.status()?;
        if status & STATUS_CALIBRATED == 0 {
            return Err(SensorError::Protocol(format!(
                "calibration did not load (status {status:#04x})"
            )));
        }
        Ok(())
    }

    /// Trigger, wait, read; a chip still busy after the datasheet's wait is an error, not a
    /// reason to wait longer here (the sampler retries next interval).
    pub fn measure(&mut self) -> Result<Measurement, SensorError> {
        self.ensure_calibrated()?;
        self.command(Command::TriggerMeasurement)?;
        self.delay.delay_us(MEASUREMENT_US);
        let mut frame = [0u8; 7];
        let len = match self.variant {
            Variant::Aht20 => 7,
            Variant::Aht10 => 6,
        };
        self.i2c
            .read(self.address, &mut frame[..len])
            .map_err(bus_error)?;
        let [s, b1, b2, b3, b4, b5, received] = frame;
        let data = [s, b1, b2, b3, b4, b5];
        if self.variant == Variant::Aht20 {
            crc::check(&data, received, crc::SENSIRION_INIT)?;
        }
        if s & STATUS_BUSY != 0 {
            return Err(SensorError::Protocol(
                "still busy after the measurement time".into(),
            ));
        }
        let (rh, t) = unpack(&data);
        Measurement::climate(temperature_celsius(t), humidity_percent(rh), RATED_CELSIUS)
    }
}

sensor_via_measure!(Aht20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Fields;
    use crate::sensors::i2c::testing::{hundredths, nack};
    use crate::sensors::Sensor;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    /// Status 0x1C, humidity 0x80000 (50 %), temperature 0x5A000 (20.3125 °C), CRC 0x7B.
    const FRAME: [u8; 7] = [0x1C, 0x80, 0x00, 0x05, 0xA0, 0x00, 0x7B];

    fn read_with(variant: Variant, transactions: &[Transaction]) -> Result<Fields, SensorError> {
        let mut sensor =
            Aht20::with_variant(Mock::new(transactions), NoopDelay::new(), 0x38, variant);
        let result = sensor.read();
        sensor.destroy().0.done();
        result
    }

    fn write(command: Command) -> Transaction {
        Transaction::write(0x38, command.as_bytes().to_vec())
    }

    fn status(byte: u8) -> Transaction {
        Transaction::read(0x38, vec![byte])
    }

    #[test]
    fn half_scale_is_50_percent_and_the_temperature_formula_spans_minus_50_to_150() {
        assert_eq!(humidity_percent(0x80000), 50.0);
        assert_eq!(temperature_celsius(0), -50.0);
        assert_eq!(temperature_celsius(0x80000), 50.0);
    }

    #[test]
    fn a_good_aht20_read_checks_its_crc() {
        let fields = read_with(
            Variant::Aht20,
            &[
                status(0x18),
                write(Command::TriggerMeasurement),
                Transaction::read(0x38, FRAME.to_vec()),
            ],
        )
        .expect("good frame");
        assert_eq!(hundredths(&fields, "temperature"), 20.31);
        assert_eq!(hundredths(&fields, "humidity"), 50.0);
    }

    #[test]
    fn an_uncalibrated_chip_is_initialised_first() {
        let fields = read_with(
            Variant::Aht20,
            &[
                status(0x10),
                write(Command::InitializeAht20),
                status(0x18),
                write(Command::TriggerMeasurement),
                Transaction::read(0x38, FRAME.to_vec()),
            ],
        );
        assert!(fields.is_ok(), "{fields:?}");
    }

    #[test]
    fn an_aht10_uses_its_own_init_and_sends_no_crc() {
        let fields = read_with(
            Variant::Aht10,
            &[
                status(0x00),
                write(Command::InitializeAht10),
                status(0x08),
                write(Command::TriggerMeasurement),
                Transaction::read(0x38, FRAME[..6].to_vec()),
            ],
        )
        .expect("good frame");
        assert_eq!(hundredths(&fields, "humidity"), 50.0);
    }

    #[test]
    fn a_calibration_that_will_not_load_is_a_protocol_error() {
        let result = read_with(
            Variant::Aht20,
            &[status(0x10), write(Command::InitializeAht20), status(0x10)],
        );
        assert!(
            matches!(result, Err(SensorError::Protocol(_))),
            "{result:?}"
        );
    }

    #[test]
    fn no_answer_to_the_status_read_is_a_bus_error() {
        let result = read_with(Variant::Aht20, &[status(0).with_error(nack())]);
        assert!(matches!(result, Err(SensorError::Bus(_))), "{result:?}");
    }

    #[test]
    fn a_corrupt_frame_is_a_crc_error() {
        let mut frame = FRAME;
        frame[6] ^= 0x01;
        let result = read_with(
            Variant::Aht20,
            &[
                status(0x18),
                write(Command::TriggerMeasurement),
                Transaction::read(0x38, frame.to_vec()),
            ],
        );
        assert!(matches!(result, Err(SensorError::Crc { .. })), "{result:?}");
    }

    #[test]
    fn a_chip_still_busy_after_80_ms_is_a_protocol_error() {
        // Status 0x9C (busy) with its valid CRC.
        let mut frame = FRAME;
        frame[0] = 0x9C;
        frame[6] = crc::crc8(&frame[..6], crc::SENSIRION_INIT);
        let result = read_with(
            Variant::Aht20,
            &[
                status(0x18),
                write(Command::TriggerMeasurement),
                Transaction::read(0x38, frame.to_vec()),
            ],
        );
        assert!(
            matches!(result, Err(SensorError::Protocol(_))),
            "{result:?}"
        );
    }
}
