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
mod tests;
