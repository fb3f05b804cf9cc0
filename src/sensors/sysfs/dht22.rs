//! DHT22 / AM2302 through the kernel's `dht11` IIO driver (it handles both chips). The driver
//! bit-bangs a timing-critical protocol from a GPIO interrupt, so single reads fail often with
//! EIO or ETIMEDOUT; those are ordinary `Io` errors and the sampler simply tries again next
//! interval rather than retrying here and stretching the sample.

use super::{in_range, only_entry, parse_milli, read_text};
use crate::reading::{Fields, Value};
use crate::sensors::{Sensor, SensorError};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/sys/bus/iio/devices";
/// The IIO device name the kernel driver registers, for DHT11 and DHT22 alike.
const DRIVER_NAME: &str = "dht11";
/// The DHT22 datasheet's measurement ranges.
const TEMPERATURE_RANGE: RangeInclusive<f64> = -40.0..=80.0;
const HUMIDITY_RANGE: RangeInclusive<f64> = 0.0..=100.0;

pub struct Dht22 {
    device: PathBuf,
}

impl Dht22 {
    /// `device` is the IIO directory name (`iio:device0`) or `"auto"` for the one named `dht11`.
    pub fn new(root: &Path, device: &str) -> Result<Self, SensorError> {
        let device = if device == "auto" {
            find_dht(root)?
        } else {
            device.to_string()
        };
        Ok(Dht22 {
            device: root.join(device),
        })
    }

    /// The directory this reader reads from.
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// Temperature in °C and relative humidity in %.
    pub fn read_both(&mut self) -> Result<(f64, f64), SensorError> {
        if !self.device.is_dir() {
            return Err(SensorError::NotFound(format!(
                "DHT22 {}",
                self.device.display()
            )));
        }
        let temperature = self.read_milli("in_temp_input")?;
        let humidity = self.read_milli("in_humidityrelative_input")?;
        Ok((
            in_range("temperature", temperature, TEMPERATURE_RANGE)?,
            in_range("humidity", humidity, HUMIDITY_RANGE)?,
        ))
    }

    fn read_milli(&self, file: &str) -> Result<f64, SensorError> {
        let path = self.device.join(file);
        parse_milli(&path, &read_text(&path)?)
    }
}

impl Sensor for Dht22 {
    fn read(&mut self) -> Result<Fields, SensorError> {
        let (temperature, humidity) = self.read_both()?;
        Ok(vec![
            ("temperature", Value::Float(temperature)),
            ("humidity", Value::Float(humidity)),
        ])
    }
}

/// Build the reader from a `[[sensor]]` table: `iio_root` (default the kernel's) and
/// `iio_device` (default `"auto"`).
pub fn open(
    iio_root: &Option<PathBuf>,
    iio_device: &Option<String>,
) -> Result<Box<dyn Sensor>, SensorError> {
    let root = iio_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let device = iio_device.as_deref().unwrap_or("auto");
    Ok(Box::new(Dht22::new(&root, device)?))
}

/// The one IIO device whose `name` is `dht11`. Other IIO devices (ADCs, the BME280's IIO
/// driver) are common on the same Pi, so the name is checked rather than taking the first.
fn find_dht(root: &Path) -> Result<String, SensorError> {
    only_entry(
        root,
        "no IIO devices (is the dht11 overlay enabled?)",
        "iio_device",
        &format!("device named `{DRIVER_NAME}`"),
        |entry, dir| {
            let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            let name = name.trim();
            let shown = if name.is_empty() {
                dir.to_string()
            } else {
                format!("{dir} ({name})")
            };
            (name == DRIVER_NAME, shown)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    /// (file name, contents) pairs of one device directory.
    type Files<'a> = &'a [(&'a str, &'a str)];

    /// An IIO tree with devices given as (dir, name, files).
    fn iio(devices: &[(&str, &str, Files)]) -> TempDir {
        let root = tempfile::tempdir().unwrap();
        for (dir, name, files) in devices {
            let dir = root.path().join(dir);
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("name"), format!("{name}\n")).unwrap();
            for (file, text) in *files {
                fs::write(dir.join(file), text).unwrap();
            }
        }
        root
    }

    const GOOD: &[(&str, &str)] = &[
        ("in_temp_input", "21300\n"),
        ("in_humidityrelative_input", "45600\n"),
    ];

    #[test]
    fn temperature_and_humidity_are_read_in_thousandths() {
        let root = iio(&[("iio:device0", "dht11", GOOD)]);
        let mut sensor = Dht22::new(root.path(), "iio:device0").unwrap();
        assert_eq!(
            sensor.read().unwrap(),
            vec![
                ("temperature", Value::Float(21.3)),
                ("humidity", Value::Float(45.6)),
            ]
        );
    }

    #[test]
    fn auto_finds_the_device_named_dht11_among_others() {
        let root = iio(&[
            ("iio:device0", "mcp3008", &[]),
            ("iio:device1", "dht11", GOOD),
        ]);
        let sensor = Dht22::new(root.path(), "auto").unwrap();
        assert_eq!(sensor.device(), root.path().join("iio:device1"));
    }

    #[test]
    fn auto_without_a_dht_lists_what_it_found() {
        let root = iio(&[("iio:device0", "mcp3008", &[])]);
        let err = Dht22::new(root.path(), "auto").err().unwrap();
        assert_eq!(err.reason(), "not_found");
        assert!(err.to_string().contains("iio:device0 (mcp3008)"), "{err}");
    }

    #[test]
    fn auto_with_two_dhts_asks_for_one() {
        let root = iio(&[("iio:device0", "dht11", &[]), ("iio:device1", "dht11", &[])]);
        let err = Dht22::new(root.path(), "auto").err().unwrap();
        assert!(
            err.to_string().contains("iio:device0, iio:device1"),
            "{err}"
        );
    }

    #[test]
    fn a_failing_driver_read_is_an_io_error_naming_the_file() {
        let root = iio(&[(
            "iio:device0",
            "dht11",
            &[("in_humidityrelative_input", "45600\n")],
        )]);
        // A directory in place of the file fails the read the way the driver's EIO does.
        fs::create_dir(root.path().join("iio:device0/in_temp_input")).unwrap();
        let err = Dht22::new(root.path(), "iio:device0")
            .unwrap()
            .read()
            .unwrap_err();
        assert_eq!(err.reason(), "io");
        assert!(err.to_string().contains("in_temp_input"), "{err}");
    }

    #[test]
    fn values_outside_the_datasheet_range_are_refused() {
        // (temperature, humidity) in milli-units, and the field that is out of range.
        let cases = [
            ("21300\n", "130000\n", "humidity"),
            ("-41000\n", "50000\n", "temperature"),
        ];
        for (temp, humidity, out) in cases {
            let root = iio(&[(
                "iio:device0",
                "dht11",
                &[
                    ("in_temp_input", temp),
                    ("in_humidityrelative_input", humidity),
                ],
            )]);
            let err = Dht22::new(root.path(), "iio:device0")
                .unwrap()
                .read()
                .unwrap_err();
            assert!(
                matches!(err, SensorError::OutOfRange { field, .. } if field == out),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_missing_device_is_not_found() {
        let root = iio(&[]);
        let err = Dht22::new(root.path(), "iio:device3")
            .unwrap()
            .read()
            .unwrap_err();
        assert_eq!(err.reason(), "not_found");
    }
}
