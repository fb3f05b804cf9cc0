//! The SoC's own temperature from a thermal zone. Worth recording on a Pi in a sealed box: it
//! explains throttling and warns before the enclosure cooks the sensors next to it.

use super::{in_range, parse_milli, read_text};
use crate::reading::{Fields, Value};
use crate::sensors::{Sensor, SensorError};
use std::ops::RangeInclusive;
use std::path::PathBuf;

pub const DEFAULT_PATH: &str = "/sys/class/thermal/thermal_zone0/temp";
/// Wide enough for any SoC that still runs; outside it the zone is misreporting.
const RANGE: RangeInclusive<f64> = -40.0..=150.0;

pub struct SocTemp {
    path: PathBuf,
}

impl SocTemp {
    pub fn new(path: PathBuf) -> Self {
        SocTemp { path }
    }

    pub fn read_celsius(&mut self) -> Result<f64, SensorError> {
        let celsius = parse_milli(&self.path, &read_text(&self.path)?)?;
        in_range("temperature", celsius, RANGE)
    }
}

impl Sensor for SocTemp {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(vec![("temperature", Value::Float(self.read_celsius()?))])
    }
}

/// Build the reader from a `[[sensor]]` table: `path` (default thermal zone 0).
pub fn open(path: &Option<PathBuf>) -> Result<Box<dyn Sensor>, SensorError> {
    let path = path.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    Ok(Box::new(SocTemp::new(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_temperature_is_read_in_millidegrees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        std::fs::write(&path, "48312\n").unwrap();
        assert_eq!(
            SocTemp::new(path).read().unwrap(),
            vec![("temperature", Value::Float(48.312))]
        );
    }

    #[test]
    fn a_missing_zone_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = SocTemp::new(dir.path().join("temp")).read().unwrap_err();
        assert_eq!(err.reason(), "not_found");
    }

    #[test]
    fn an_unreadable_zone_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = SocTemp::new(dir.path().to_path_buf()).read().unwrap_err();
        assert_eq!(err.reason(), "io");
    }

    #[test]
    fn garbage_in_the_zone_file_is_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        std::fs::write(&path, "n/a\n").unwrap();
        assert_eq!(SocTemp::new(path).read().unwrap_err().reason(), "protocol");
    }
}
