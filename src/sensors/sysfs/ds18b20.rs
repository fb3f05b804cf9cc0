//! DS18B20 1-Wire thermometer, read through the kernel's w1 driver. Newer kernels offer a plain
//! `temperature` file (milli-°C); older ones only `w1_slave`, whose first line carries the
//! kernel's CRC verdict. The chip powers up holding 85 °C, so an 85.000 read before any real
//! reading is a reset value, not a measurement.

use super::{in_range, only_entry, parse_int, read_text};
use crate::reading::{Fields, Value};
use crate::sensors::{Sensor, SensorError};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/sys/bus/w1/devices";
/// 1-Wire family code of the DS18B20: every one of its sysfs directories starts with it.
const FAMILY_PREFIX: &str = "28-";
/// The scratchpad's power-on reset value (datasheet, "Operation — Measuring Temperature").
const POWER_ON_RESET_MILLI: i64 = 85_000;
/// The datasheet's measurement range.
const RANGE: RangeInclusive<f64> = -55.0..=125.0;
/// An 85.000 °C read is believed only this close to the previous real reading.
const RESET_VALUE_TRUST: f64 = 10.0;

pub struct Ds18b20 {
    device: PathBuf,
    /// The last accepted reading; `None` after start and after the device vanished, when an
    /// 85.000 °C read is most likely the power-on value.
    last: Option<f64>,
}

impl Ds18b20 {
    /// `serial` is the w1 directory name (`28-…`) or `"auto"` for the only DS18B20 on the bus.
    /// A named device need not be present yet; reads report `NotFound` until it is.
    pub fn new(root: &Path, serial: &str) -> Result<Self, SensorError> {
        let serial = if serial == "auto" {
            find_single(root)?
        } else {
            serial.to_string()
        };
        Ok(Ds18b20 {
            device: root.join(serial),
            last: None,
        })
    }

    /// The directory this reader reads from.
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// One temperature in °C.
    pub fn read_celsius(&mut self) -> Result<f64, SensorError> {
        let milli = match self.read_milli() {
            Ok(milli) => milli,
            Err(err) => {
                if matches!(err, SensorError::NotFound(_)) {
                    self.last = None;
                }
                return Err(err);
            }
        };
        let celsius = milli as f64 / 1000.0;
        if milli == POWER_ON_RESET_MILLI {
            match self.last {
                Some(prev) if (prev - celsius).abs() <= RESET_VALUE_TRUST => {}
                _ => {
                    return Err(SensorError::Placeholder(format!(
                        "{}: 85 °C is the DS18B20 power-on value",
                        self.device.display()
                    )))
                }
            }
        }
        let celsius = in_range("temperature", celsius, RANGE)?;
        self.last = Some(celsius);
        Ok(celsius)
    }

    fn read_milli(&self) -> Result<i64, SensorError> {
        if !self.device.is_dir() {
            return Err(SensorError::NotFound(format!(
                "DS18B20 {}",
                self.device.display()
            )));
        }
        let plain = self.device.join("temperature");
        match read_text(&plain) {
            Ok(text) => parse_int(&plain, &text),
            Err(SensorError::NotFound(_)) => {
                let slave = self.device.join("w1_slave");
                parse_w1_slave(&slave, &read_text(&slave)?)
            }
            Err(err) => Err(err),
        }
    }
}

impl Sensor for Ds18b20 {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(vec![("temperature", Value::Float(self.read_celsius()?))])
    }
}

/// Build the reader from a `[[sensor]]` table: `w1_root` (default the kernel's) and `serial`
/// (default `"auto"`).
pub fn open(
    w1_root: &Option<PathBuf>,
    serial: &Option<String>,
) -> Result<Box<dyn Sensor>, SensorError> {
    let root = w1_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let serial = serial.as_deref().unwrap_or("auto");
    Ok(Box::new(Ds18b20::new(&root, serial)?))
}

/// The one `28-*` directory under `root`; with none or several, say what is there so the
/// installer can pick a serial.
fn find_single(root: &Path) -> Result<String, SensorError> {
    only_entry(
        root,
        "no 1-Wire bus (is the w1-gpio overlay enabled?)",
        "serial",
        "DS18B20 (28-*)",
        |_, name| (name.starts_with(FAMILY_PREFIX), name.to_string()),
    )
}

/// Parse the legacy `w1_slave` file:
///
/// ```text
/// 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
/// 72 01 4b 46 7f ff 0e 10 57 t=23125
/// ```
///
/// The kernel prints the CRC it computed over the first eight scratchpad bytes after `crc=`;
/// the ninth byte is the CRC the chip sent.
fn parse_w1_slave(path: &Path, text: &str) -> Result<i64, SensorError> {
    let garbled = || {
        SensorError::Protocol(format!(
            "{}: unexpected w1_slave contents `{}`",
            path.display(),
            text.trim()
        ))
    };
    let mut lines = text.lines();
    let (first, second) = match (lines.next(), lines.next()) {
        (Some(first), Some(second)) => (first, second),
        _ => return Err(garbled()),
    };
    let (bytes, verdict) = first.split_once(':').ok_or_else(garbled)?;
    let mut verdict = verdict.split_whitespace();
    let computed = verdict
        .next()
        .and_then(|c| c.strip_prefix("crc="))
        .and_then(|c| u8::from_str_radix(c, 16).ok())
        .ok_or_else(garbled)?;
    match verdict.next() {
        Some("YES") => {}
        Some("NO") => {
            let sent = bytes
                .split_whitespace()
                .nth(8)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(garbled)?;
            return Err(SensorError::Crc {
                expected: computed,
                actual: sent,
            });
        }
        _ => return Err(garbled()),
    }
    let (_, milli) = second.rsplit_once("t=").ok_or_else(garbled)?;
    milli.trim().parse().map_err(|_| garbled())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    const SERIAL: &str = "28-0316a2791eff";
    const GOOD_SLAVE: &str =
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

    /// A w1 bus with a master and the given devices, each with (file, contents) pairs.
    fn bus(devices: &[(&str, &[(&str, &str)])]) -> TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("w1_bus_master1")).unwrap();
        for (serial, files) in devices {
            let dir = root.path().join(serial);
            fs::create_dir(&dir).unwrap();
            for (name, text) in *files {
                fs::write(dir.join(name), text).unwrap();
            }
        }
        root
    }

    fn write(root: &TempDir, file: &str, text: &str) {
        fs::write(root.path().join(SERIAL).join(file), text).unwrap();
    }

    #[test]
    fn the_temperature_file_is_read_in_millidegrees() {
        let root = bus(&[(SERIAL, &[("temperature", "21437\n")])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        assert_eq!(
            sensor.read().unwrap(),
            vec![("temperature", Value::Float(21.437))]
        );
    }

    #[test]
    fn without_a_temperature_file_w1_slave_is_used() {
        let root = bus(&[(SERIAL, &[("w1_slave", GOOD_SLAVE)])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        assert_eq!(sensor.read_celsius().unwrap(), 23.125);
    }

    #[test]
    fn a_negative_w1_slave_value_reads_below_zero() {
        let slave =
            "5e ff 4b 46 7f ff 0c 10 1c : crc=1c YES\n5e ff 4b 46 7f ff 0c 10 1c t=-10125\n";
        let root = bus(&[(SERIAL, &[("w1_slave", slave)])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        assert_eq!(sensor.read_celsius().unwrap(), -10.125);
    }

    #[test]
    fn a_crc_no_verdict_is_a_crc_error_with_both_values() {
        let slave = "72 01 4b 46 7f ff 0e 10 ff : crc=57 NO\n72 01 4b 46 7f ff 0e 10 ff t=23125\n";
        let root = bus(&[(SERIAL, &[("w1_slave", slave)])]);
        let err = Ds18b20::new(root.path(), SERIAL)
            .unwrap()
            .read()
            .unwrap_err();
        assert!(
            matches!(
                err,
                SensorError::Crc {
                    expected: 0x57,
                    actual: 0xff
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_garbled_w1_slave_is_a_protocol_error() {
        let root = bus(&[(SERIAL, &[("w1_slave", "hello\n")])]);
        let err = Ds18b20::new(root.path(), SERIAL)
            .unwrap()
            .read()
            .unwrap_err();
        assert_eq!(err.reason(), "protocol");
    }

    #[test]
    fn eighty_five_degrees_on_the_first_read_is_a_placeholder() {
        let root = bus(&[(SERIAL, &[("temperature", "85000\n")])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        assert_eq!(sensor.read().unwrap_err().reason(), "placeholder");
        // Still a placeholder: nothing real has been seen yet.
        assert_eq!(sensor.read().unwrap_err().reason(), "placeholder");
    }

    #[test]
    fn eighty_five_degrees_after_a_cold_reading_is_a_placeholder() {
        let root = bus(&[(SERIAL, &[("temperature", "4000\n")])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        assert_eq!(sensor.read_celsius().unwrap(), 4.0);
        write(&root, "temperature", "85000\n");
        assert_eq!(sensor.read().unwrap_err().reason(), "placeholder");
    }

    #[test]
    fn eighty_five_degrees_after_a_hot_reading_is_believed() {
        let root = bus(&[(SERIAL, &[("temperature", "81500\n")])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        assert_eq!(sensor.read_celsius().unwrap(), 81.5);
        write(&root, "temperature", "85000\n");
        assert_eq!(sensor.read_celsius().unwrap(), 85.0);
    }

    #[test]
    fn eighty_five_degrees_after_the_device_vanished_is_a_placeholder_again() {
        let root = bus(&[(SERIAL, &[("temperature", "84000\n")])]);
        let mut sensor = Ds18b20::new(root.path(), SERIAL).unwrap();
        sensor.read_celsius().unwrap();
        fs::remove_dir_all(root.path().join(SERIAL)).unwrap();
        assert_eq!(sensor.read().unwrap_err().reason(), "not_found");
        fs::create_dir(root.path().join(SERIAL)).unwrap();
        write(&root, "temperature", "85000\n");
        assert_eq!(sensor.read().unwrap_err().reason(), "placeholder");
    }

    #[test]
    fn a_value_outside_the_datasheet_range_is_refused() {
        let root = bus(&[(SERIAL, &[("temperature", "127000\n")])]);
        let err = Ds18b20::new(root.path(), SERIAL)
            .unwrap()
            .read()
            .unwrap_err();
        assert!(
            matches!(err, SensorError::OutOfRange { field: "temperature", value } if value == 127.0),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_device_is_not_found() {
        let root = bus(&[]);
        let err = Ds18b20::new(root.path(), SERIAL)
            .unwrap()
            .read()
            .unwrap_err();
        assert_eq!(err.reason(), "not_found");
        assert!(err.to_string().contains(SERIAL), "{err}");
    }

    #[test]
    fn a_device_with_neither_file_is_not_found() {
        let root = bus(&[(SERIAL, &[])]);
        let err = Ds18b20::new(root.path(), SERIAL)
            .unwrap()
            .read()
            .unwrap_err();
        assert_eq!(err.reason(), "not_found");
    }

    #[test]
    fn an_unreadable_temperature_file_is_an_io_error_naming_the_path() {
        let root = bus(&[(SERIAL, &[])]);
        // Reading a directory fails with EISDIR, standing in for the driver's EIO.
        fs::create_dir(root.path().join(SERIAL).join("temperature")).unwrap();
        let err = Ds18b20::new(root.path(), SERIAL)
            .unwrap()
            .read()
            .unwrap_err();
        assert_eq!(err.reason(), "io");
        assert!(err.to_string().contains("temperature"), "{err}");
    }

    #[test]
    fn auto_picks_the_only_ds18b20_on_the_bus() {
        let root = bus(&[(SERIAL, &[("temperature", "19000")])]);
        let mut sensor = Ds18b20::new(root.path(), "auto").unwrap();
        assert_eq!(sensor.device(), root.path().join(SERIAL));
        assert_eq!(sensor.read_celsius().unwrap(), 19.0);
    }

    #[test]
    fn auto_with_no_ds18b20_says_what_it_found() {
        let root = bus(&[]);
        let err = Ds18b20::new(root.path(), "auto").err().unwrap();
        assert_eq!(err.reason(), "not_found");
        assert!(err.to_string().contains("found: w1_bus_master1"), "{err}");
    }

    #[test]
    fn auto_with_two_ds18b20s_lists_both() {
        let root = bus(&[("28-aaaa", &[]), ("28-bbbb", &[])]);
        let err = Ds18b20::new(root.path(), "auto").err().unwrap();
        let text = err.to_string();
        assert!(text.contains("found 2: 28-aaaa, 28-bbbb"), "{text}");
    }

    #[test]
    fn auto_without_a_w1_bus_says_so() {
        let root = tempfile::tempdir().unwrap();
        let err = Ds18b20::new(&root.path().join("w1"), "auto").err().unwrap();
        assert!(err.to_string().contains("no 1-Wire bus"), "{err}");
    }
}
