//! Sensors the kernel already drives, read through sysfs files: DS18B20 (w1), DHT22 (IIO) and
//! the SoC thermal zone. Every reader takes its sysfs root as a parameter, so tests build a
//! fixture tree in a temp dir and the real reader runs against it unchanged.

pub mod dht22;
pub mod ds18b20;
pub mod soc_temp;

use super::{Sensor, SensorError};
use crate::config::SysfsSettings;
use std::io::ErrorKind;
use std::path::Path;

/// Open the sysfs reader the settings are for.
pub fn open(settings: &SysfsSettings) -> Result<Box<dyn Sensor>, SensorError> {
    match settings {
        SysfsSettings::Ds18b20 { w1_root, serial } => ds18b20::open(w1_root, serial),
        SysfsSettings::Dht22 {
            iio_root,
            iio_device,
        } => dht22::open(iio_root, iio_device),
        SysfsSettings::SocTemp { path } => soc_temp::open(path),
    }
}

/// Read a whole sysfs file. A missing file means the device is gone (unplugged, overlay not
/// loaded), which the sampler counts differently from a read that failed.
pub(crate) fn read_text(path: &Path) -> Result<String, SensorError> {
    std::fs::read_to_string(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => SensorError::NotFound(path.display().to_string()),
        _ => SensorError::Io {
            path: path.display().to_string(),
            source,
        },
    })
}

/// Parse a sysfs integer in thousandths (milli-°C, milli-%RH).
pub(crate) fn parse_int(path: &Path, text: &str) -> Result<i64, SensorError> {
    let text = text.trim();
    text.parse().map_err(|_| {
        SensorError::Protocol(format!(
            "{}: expected an integer in thousandths, got `{text}`",
            path.display()
        ))
    })
}

/// Parse a sysfs integer in thousandths into units.
pub(crate) fn parse_milli(path: &Path, text: &str) -> Result<f64, SensorError> {
    parse_int(path, text).map(|milli| milli as f64 / 1000.0)
}

pub(crate) use super::in_range;

/// For `"auto"` settings: the one entry under `root` that `pick` accepts (`pick` also says how
/// to show an entry). With none or several, the error lists what is there, so the installer
/// can name one. `no_root` says what a missing `root` means (an overlay not loaded).
pub(crate) fn only_entry(
    root: &Path,
    no_root: &str,
    setting: &str,
    wanted: &str,
    pick: impl Fn(&std::fs::DirEntry, &str) -> (bool, String),
) -> Result<String, SensorError> {
    let entries = std::fs::read_dir(root)
        .map_err(|_| SensorError::NotFound(format!("{}: {no_root}", root.display())))?;
    let (mut found, mut seen) = (Vec::new(), Vec::new());
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (matches, shown) = pick(&entry, &name);
        if matches {
            found.push(name);
        }
        seen.push(shown);
    }
    found.sort();
    seen.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(SensorError::NotFound(format!(
            "{setting} = \"auto\": no {wanted} under {}; found: {}",
            root.display(),
            if seen.is_empty() { "nothing".to_string() } else { seen.join(", ") }
        ))),
        several => Err(SensorError::NotFound(format!(
            "{setting} = \"auto\" needs exactly one {wanted} under {}, found {}: {}; set `{setting}` to one of them",
            root.display(),
            several.len(),
            several.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_builds_the_reader_its_kind_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        std::fs::write(&path, "50000\n").unwrap();
        let settings = SysfsSettings::SocTemp { path: Some(path) };
        assert_eq!(open(&settings).unwrap().read().unwrap().len(), 1);
    }

    #[test]
    fn a_missing_file_is_not_found_and_a_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_text(&dir.path().join("nope")).unwrap_err();
        assert_eq!(missing.reason(), "not_found");
        let io = read_text(dir.path()).unwrap_err();
        assert_eq!(io.reason(), "io");
        assert!(io.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn thousandths_parse_with_surrounding_whitespace_and_a_sign() {
        let p = Path::new("x");
        assert_eq!(parse_milli(p, "23125\n").unwrap(), 23.125);
        assert_eq!(parse_milli(p, "-1250").unwrap(), -1.25);
        assert_eq!(parse_milli(p, "hot").unwrap_err().reason(), "protocol");
    }
}
