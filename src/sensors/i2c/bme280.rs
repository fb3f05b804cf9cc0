//! Bosch BME280 (temperature, pressure, humidity) and BMP280 (no humidity). The ADCs give raw
//! counts that only mean something through per-chip calibration words, read once since they
//! are fixed at the factory. Each read runs one forced-mode measurement, so the chip sleeps
//! between readings and does not warm itself up.

use super::{checked_humidity, Measurement};
use crate::sensors::{bus_error, in_range, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use std::num::Wrapping;
use std::ops::RangeInclusive;

/// SDO pin low.
pub const DEFAULT_ADDRESS: u8 = 0x76;
/// SDO pin high.
pub const ALTERNATE_ADDRESS: u8 = 0x77;

pub const CHIP_ID_BME280: u8 = 0x60;
pub const CHIP_ID_BMP280: u8 = 0x58;

/// Register addresses (datasheet section 5.3).
mod reg {
    pub const CHIP_ID: u8 = 0xD0;
    /// calib00..calib25: temperature and pressure words, then dig_H1 at 0xA1.
    pub const CALIB_TP: u8 = 0x88;
    /// calib26..calib32: the rest of the humidity words (BME280 only).
    pub const CALIB_H: u8 = 0xE1;
    pub const CTRL_HUM: u8 = 0xF2;
    pub const STATUS: u8 = 0xF3;
    pub const CTRL_MEAS: u8 = 0xF4;
    /// press_msb, then pressure, temperature and (BME280) humidity in one burst.
    pub const DATA: u8 = 0xF7;
}

/// Humidity oversampling ×1.
const CTRL_HUM_X1: u8 = 0b001;
/// Temperature ×1, pressure ×1, forced mode: the weather-monitoring setting of section 3.5.1.
const CTRL_MEAS_FORCED_X1: u8 = (0b001 << 5) | (0b001 << 2) | 0b01;
/// Set while a conversion is running.
const STATUS_MEASURING: u8 = 0x08;

/// Longest measurement with everything at ×1 (datasheet section 9.1: 9.3 ms).
const MEASUREMENT_US: u32 = 10_000;
/// If the chip is still busy after that, look again a few times before giving up.
const STATUS_POLL_US: u32 = 1_000;
const STATUS_POLLS: usize = 5;

/// What the ADC registers hold when a measurement was skipped (oversampling reset to off).
const SKIPPED_20BIT: i32 = 0x80000;
const SKIPPED_16BIT: i32 = 0x8000;

/// The chips' rated operating ranges (datasheet table 1).
const RATED_CELSIUS: RangeInclusive<f64> = -40.0..=85.0;
const RATED_HPA: RangeInclusive<f64> = 300.0..=1100.0;

/// Which chip answered, from its id register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Bme280,
    Bmp280,
}

impl Model {
    pub fn from_chip_id(id: u8) -> Option<Model> {
        match id {
            CHIP_ID_BME280 => Some(Model::Bme280),
            CHIP_ID_BMP280 => Some(Model::Bmp280),
            _ => None,
        }
    }
}

/// The factory trimming words (`dig_T1` … `dig_H6` in the datasheet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p1: u16,
    pub p2: i16,
    pub p3: i16,
    pub p4: i16,
    pub p5: i16,
    pub p6: i16,
    pub p7: i16,
    pub p8: i16,
    pub p9: i16,
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

impl Calibration {
    /// Decode 0x88..=0xA1 and, for a BME280, 0xE1..=0xE7 (datasheet table 16).
    pub fn from_registers(tp: &[u8; 26], humidity: Option<&[u8; 7]>) -> Calibration {
        let u16_at = |i: usize| u16::from_le_bytes([tp[i], tp[i + 1]]);
        let i16_at = |i: usize| i16::from_le_bytes([tp[i], tp[i + 1]]);
        let mut cal = Calibration {
            t1: u16_at(0),
            t2: i16_at(2),
            t3: i16_at(4),
            p1: u16_at(6),
            p2: i16_at(8),
            p3: i16_at(10),
            p4: i16_at(12),
            p5: i16_at(14),
            p6: i16_at(16),
            p7: i16_at(18),
            p8: i16_at(20),
            p9: i16_at(22),
            ..Calibration::default()
        };
        if let Some(h) = humidity {
            cal.h1 = tp[25];
            cal.h2 = i16::from_le_bytes([h[0], h[1]]);
            cal.h3 = h[2];
            // dig_H4 and dig_H5 are signed 12-bit values that share the nibbles of 0xE5.
            cal.h4 = (i16::from(h[3] as i8) << 4) | i16::from(h[4] & 0x0F);
            cal.h5 = (i16::from(h[5] as i8) << 4) | i16::from(h[4] >> 4);
            cal.h6 = h[6] as i8;
        }
        cal
    }

    /// Bosch's 32-bit integer formula (datasheet section 4.2.3). Returns `t_fine`, which the
    /// pressure and humidity formulas need, and the temperature in 0.01 °C. Wrapping
    /// arithmetic, as in the C original, so a corrupt calibration cannot panic; the range
    /// checks catch the nonsense it gives.
    pub fn compensate_temperature(&self, adc_t: i32) -> (i32, i32) {
        let adc = Wrapping(adc_t);
        let t1 = Wrapping(i32::from(self.t1));
        let t2 = Wrapping(i32::from(self.t2));
        let t3 = Wrapping(i32::from(self.t3));
        let var1 = (((adc >> 3) - (t1 << 1)) * t2) >> 11;
        let var2 = (((((adc >> 4) - t1) * ((adc >> 4) - t1)) >> 12) * t3) >> 14;
        let t_fine = var1 + var2;
        (t_fine.0, ((t_fine * Wrapping(5) + Wrapping(128)) >> 8).0)
    }

    /// Bosch's 64-bit integer formula: pressure in Pa as Q24.8 (divide by 256). `None` when
    /// the calibration would make it divide by zero or go negative.
    pub fn compensate_pressure(&self, adc_p: i32, t_fine: i32) -> Option<u32> {
        let w = |v: i64| Wrapping(v);
        let mut var1 = w(t_fine.into()) - w(128_000);
        let mut var2 = var1 * var1 * w(self.p6.into());
        var2 += (var1 * w(self.p5.into())) << 17;
        var2 += w(self.p4.into()) << 35;
        var1 = ((var1 * var1 * w(self.p3.into())) >> 8) + ((var1 * w(self.p2.into())) << 12);
        var1 = (((w(1) << 47) + var1) * w(self.p1.into())) >> 33;
        if var1.0 == 0 {
            return None;
        }
        let mut p = w(1_048_576) - w(adc_p.into());
        p = (((p << 31) - var2) * w(3125)) / var1;
        var1 = (w(self.p9.into()) * (p >> 13) * (p >> 13)) >> 25;
        var2 = (w(self.p8.into()) * p) >> 19;
        p = ((p + var1 + var2) >> 8) + (w(self.p7.into()) << 4);
        u32::try_from(p.0).ok()
    }

    /// Bosch's 32-bit integer formula: humidity in %RH as Q22.10 (divide by 1024), already
    /// clamped by the formula to 0..=100 %RH.
    pub fn compensate_humidity(&self, adc_h: i32, t_fine: i32) -> u32 {
        let w = Wrapping::<i32>;
        let (h1, h2, h3) = (w(self.h1.into()), w(self.h2.into()), w(self.h3.into()));
        let (h4, h5, h6) = (w(self.h4.into()), w(self.h5.into()), w(self.h6.into()));
        let mut v = w(t_fine) - w(76_800);
        v = ((((w(adc_h) << 14) - (h4 << 20) - (h5 * v)) + w(16_384)) >> 15)
            * (((((((v * h6) >> 10) * (((v * h3) >> 11) + w(32_768))) >> 10) + w(2_097_152)) * h2
                + w(8_192))
                >> 14);
        v -= ((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4;
        let clamped = v.0.clamp(0, 419_430_400);
        // Non-negative after the clamp.
        (clamped >> 12).unsigned_abs()
    }
}

/// A 20-bit ADC value from its msb, lsb and xlsb registers.
fn adc20(msb: u8, lsb: u8, xlsb: u8) -> i32 {
    (i32::from(msb) << 12) | (i32::from(lsb) << 4) | (i32::from(xlsb) >> 4)
}

fn skipped(what: &str) -> SensorError {
    SensorError::Protocol(format!(
        "{what} measurement was skipped (chip reset during the read?)"
    ))
}

/// A BME280 or BMP280 on an I2C bus.
pub struct Bme280<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    chip: Option<(Model, Calibration)>,
}

impl<I2C: I2c, D: DelayNs> Bme280<I2C, D> {
    /// No bus traffic yet: the chip is identified on the first read, so a sensor that is
    /// unplugged at start-up works once it is plugged in.
    pub fn new(i2c: I2C, delay: D, address: u8) -> Self {
        Bme280 {
            i2c,
            delay,
            address,
            chip: None,
        }
    }

    /// Give the bus and delay back, e.g. to share them with another driver.
    pub fn destroy(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    /// Which chip this is, once a read has identified it.
    pub fn model(&self) -> Option<Model> {
        self.chip.map(|(model, _)| model)
    }

    fn read_registers(&mut self, start: u8, buf: &mut [u8]) -> Result<(), SensorError> {
        self.i2c
            .write_read(self.address, &[start], buf)
            .map_err(bus_error)
    }

    fn write_register(&mut self, register: u8, value: u8) -> Result<(), SensorError> {
        self.i2c
            .write(self.address, &[register, value])
            .map_err(bus_error)
    }

    /// Identify the chip and read its calibration, once.
    fn chip(&mut self) -> Result<(Model, Calibration), SensorError> {
        if let Some(chip) = self.chip {
            return Ok(chip);
        }
        let mut id = [0u8];
        self.read_registers(reg::CHIP_ID, &mut id)?;
        let model = Model::from_chip_id(id[0]).ok_or_else(|| {
            SensorError::Protocol(format!(
                "chip id {:#04x} is neither a BME280 (0x60) nor a BMP280 (0x58)",
                id[0]
            ))
        })?;
        let mut tp = [0u8; 26];
        self.read_registers(reg::CALIB_TP, &mut tp)?;
        let mut h = [0u8; 7];
        if model == Model::Bme280 {
            self.read_registers(reg::CALIB_H, &mut h)?;
        }
        let humidity = (model == Model::Bme280).then_some(&h);
        let chip = (model, Calibration::from_registers(&tp, humidity));
        self.chip = Some(chip);
        Ok(chip)
    }

    fn wait_until_done(&mut self) -> Result<(), SensorError> {
        for _ in 0..STATUS_POLLS {
            let mut status = [0u8];
            self.read_registers(reg::STATUS, &mut status)?;
            if status[0] & STATUS_MEASURING == 0 {
                return Ok(());
            }
            self.delay.delay_us(STATUS_POLL_US);
        }
        Err(SensorError::Protocol(
            "still measuring well past the datasheet's maximum time".into(),
        ))
    }

    /// One forced-mode measurement.
    pub fn measure(&mut self) -> Result<Measurement, SensorError> {
        let (model, cal) = self.chip()?;
        let has_humidity = model == Model::Bme280;
        if has_humidity {
            // ctrl_hum only takes effect on the next ctrl_meas write, so it goes first.
            self.write_register(reg::CTRL_HUM, CTRL_HUM_X1)?;
        }
        self.write_register(reg::CTRL_MEAS, CTRL_MEAS_FORCED_X1)?;
        self.delay.delay_us(MEASUREMENT_US);
        self.wait_until_done()?;
        let mut data = [0u8; 8];
        let len = if has_humidity { 8 } else { 6 };
        self.read_registers(reg::DATA, &mut data[..len])?;

        let adc_p = adc20(data[0], data[1], data[2]);
        let adc_t = adc20(data[3], data[4], data[5]);
        if adc_t == SKIPPED_20BIT {
            return Err(skipped("temperature"));
        }
        if adc_p == SKIPPED_20BIT {
            return Err(skipped("pressure"));
        }
        let (t_fine, centi_celsius) = cal.compensate_temperature(adc_t);
        let temperature = in_range(
            "temperature",
            f64::from(centi_celsius) / 100.0,
            RATED_CELSIUS,
        )?;
        let pressure = cal
            .compensate_pressure(adc_p, t_fine)
            .map(|q24_8| f64::from(q24_8) / 256.0 / 100.0)
            .ok_or_else(|| SensorError::Protocol("pressure calibration is invalid".into()))?;
        if !RATED_HPA.contains(&pressure) {
            return Err(SensorError::OutOfRange {
                field: "pressure",
                value: pressure,
            });
        }
        let humidity = if has_humidity {
            let adc_h = i32::from(u16::from_be_bytes([data[6], data[7]]));
            if adc_h == SKIPPED_16BIT {
                return Err(skipped("humidity"));
            }
            let q22_10 = cal.compensate_humidity(adc_h, t_fine);
            Some(checked_humidity(f64::from(q22_10) / 1024.0)?)
        } else {
            None
        };
        Ok(Measurement {
            temperature,
            humidity,
            pressure: Some(pressure),
        })
    }
}

sensor_via_measure!(Bme280);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Value;
    use crate::sensors::i2c::testing::{hundredths, nack};
    use crate::sensors::Sensor;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    /// The worked example of the BMP280 datasheet (section 3.12), which the BME280 shares.
    const BOSCH: Calibration = Calibration {
        t1: 27504,
        t2: 26435,
        t3: -1000,
        p1: 36477,
        p2: -10685,
        p3: 3024,
        p4: 2855,
        p5: 140,
        p6: -7,
        p7: 15500,
        p8: -14600,
        p9: 6000,
        // Humidity words of a typical BME280 (the example has none).
        h1: 75,
        h2: 362,
        h3: 0,
        h4: 313,
        h5: 50,
        h6: 30,
    };

    /// `BOSCH` as the chip sends it from 0x88 (26 bytes) and 0xE1 (7 bytes).
    const CALIB_TP: [u8; 26] = [
        0x70, 0x6B, 0x43, 0x67, 0x18, 0xFC, 0x7D, 0x8E, 0x43, 0xD6, 0xD0, 0x0B, 0x27, 0x0B, 0x8C,
        0x00, 0xF9, 0xFF, 0x8C, 0x3C, 0xF8, 0xC6, 0x70, 0x17, 0x00, 0x4B,
    ];
    const CALIB_H: [u8; 7] = [0x6A, 0x01, 0x00, 0x13, 0x29, 0x03, 0x1E];

    /// adc_P = 415148, adc_T = 519888, adc_H = 0x6A00.
    const DATA: [u8; 8] = [0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x6A, 0x00];

    fn identify(chip_id: u8) -> Vec<Transaction> {
        let mut t = vec![
            Transaction::write_read(0x76, vec![0xD0], vec![chip_id]),
            Transaction::write_read(0x76, vec![0x88], CALIB_TP.to_vec()),
        ];
        if chip_id == CHIP_ID_BME280 {
            t.push(Transaction::write_read(0x76, vec![0xE1], CALIB_H.to_vec()));
        }
        t
    }

    fn forced_bme280() -> Vec<Transaction> {
        vec![
            Transaction::write(0x76, vec![0xF2, 0x01]),
            Transaction::write(0x76, vec![0xF4, 0x25]),
            Transaction::write_read(0x76, vec![0xF3], vec![0x00]),
            Transaction::write_read(0x76, vec![0xF7], DATA.to_vec()),
        ]
    }

    fn driver(transactions: &[Transaction]) -> Bme280<Mock, NoopDelay> {
        Bme280::new(Mock::new(transactions), NoopDelay::new(), 0x76)
    }

    #[test]
    fn the_bosch_example_is_25_08_degrees_with_t_fine_128422() {
        assert_eq!(BOSCH.compensate_temperature(519888), (128422, 2508));
    }

    #[test]
    fn the_bosch_example_is_100653_pascal() {
        let q24_8 = BOSCH.compensate_pressure(415148, 128422);
        assert_eq!(q24_8.map(|p| p / 256), Some(100653));
    }

    #[test]
    fn a_blank_pressure_calibration_gives_no_pressure() {
        let blank = Calibration { p1: 0, ..BOSCH };
        assert_eq!(blank.compensate_pressure(415148, 128422), None);
    }

    #[test]
    fn humidity_is_clamped_to_100_percent_by_the_formula() {
        assert_eq!(BOSCH.compensate_humidity(0xFFFF, 128422), 100 * 1024);
    }

    #[test]
    fn calibration_registers_decode_including_the_shared_nibbles() {
        assert_eq!(
            Calibration::from_registers(&CALIB_TP, Some(&CALIB_H)),
            BOSCH
        );
    }

    #[test]
    fn a_bme280_reads_temperature_humidity_and_pressure() {
        let mut transactions = identify(CHIP_ID_BME280);
        transactions.extend(forced_bme280());
        let mut sensor = driver(&transactions);
        let fields = sensor.read().expect("good read");
        assert_eq!(fields[0], ("temperature", Value::Float(25.08)));
        assert_eq!(hundredths(&fields, "humidity"), 39.03);
        assert_eq!(hundredths(&fields, "pressure"), 1006.53);
        assert_eq!(sensor.model(), Some(Model::Bme280));
        sensor.destroy().0.done();
    }

    #[test]
    fn the_calibration_is_read_only_once() {
        let mut transactions = identify(CHIP_ID_BME280);
        transactions.extend(forced_bme280());
        transactions.extend(forced_bme280());
        let mut sensor = driver(&transactions);
        assert!(sensor.read().is_ok());
        assert!(sensor.read().is_ok());
        sensor.destroy().0.done();
    }

    #[test]
    fn a_bmp280_reads_no_humidity() {
        let mut transactions = identify(CHIP_ID_BMP280);
        transactions.extend([
            Transaction::write(0x76, vec![0xF4, 0x25]),
            Transaction::write_read(0x76, vec![0xF3], vec![0x08]),
            Transaction::write_read(0x76, vec![0xF3], vec![0x00]),
            Transaction::write_read(0x76, vec![0xF7], DATA[..6].to_vec()),
        ]);
        let mut sensor = driver(&transactions);
        let fields = sensor.read().expect("good read");
        let names: Vec<_> = fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["temperature", "pressure"]);
        sensor.destroy().0.done();
    }

    #[test]
    fn an_unknown_chip_id_is_a_protocol_error() {
        let mut sensor = driver(&[Transaction::write_read(0x76, vec![0xD0], vec![0x61])]);
        let result = sensor.read();
        assert!(
            matches!(result, Err(SensorError::Protocol(_))),
            "{result:?}"
        );
        sensor.destroy().0.done();
    }

    #[test]
    fn no_answer_to_the_chip_id_read_is_a_bus_error() {
        let mut sensor =
            driver(&[Transaction::write_read(0x76, vec![0xD0], vec![0]).with_error(nack())]);
        let result = sensor.read();
        assert!(matches!(result, Err(SensorError::Bus(_))), "{result:?}");
        sensor.destroy().0.done();
    }

    #[test]
    fn a_skipped_temperature_after_a_chip_reset_is_a_protocol_error() {
        let mut transactions = identify(CHIP_ID_BME280);
        transactions.extend([
            Transaction::write(0x76, vec![0xF2, 0x01]),
            Transaction::write(0x76, vec![0xF4, 0x25]),
            Transaction::write_read(0x76, vec![0xF3], vec![0x00]),
            Transaction::write_read(
                0x76,
                vec![0xF7],
                vec![0x65, 0x5A, 0xC0, 0x80, 0x00, 0x00, 0x6A, 0x00],
            ),
        ]);
        let mut sensor = driver(&transactions);
        let result = sensor.read();
        assert!(
            matches!(result, Err(SensorError::Protocol(_))),
            "{result:?}"
        );
        sensor.destroy().0.done();
    }
}
