//! The board file: one TOML file that says which sensors a device has, how they are wired,
//! which tags every reading carries, where the queue lives and where data goes. It is parsed
//! into typed structs and validated once, at start; every error names the file, the line, the
//! key and what was expected, because the person reading it is an installer in a barn.

mod aggregation;
mod error;
pub mod kinds;
mod paths;
mod sensor;
pub mod series;
pub mod units;
mod upload_checks;
mod upload_mqtt;
mod validate;

pub use upload_mqtt::{MqttProtocol, DEFAULT_KEEPALIVE, DEFAULT_TOPIC};

pub use aggregation::{state_fields, Aggregation};
pub use error::ConfigError;
use error::{find_line, read, toml_error};
pub use kinds::{GpioKind, I2cChip, SimulatedKind, SysfsKind};
pub use sensor::{
    Bias, GpioLine, GpioSettings, I2cSettings, KeyError, SensorConfig, SensorKind,
    SimulatedSettings, SysfsSettings,
};
pub use upload_checks::redact_url;
use validate::Problem;
pub use validate::{check_board_tag, check_measurement, check_tag};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A board file, parsed and checked.
#[derive(Debug, Clone)]
pub struct Board {
    pub device: DeviceConfig,
    /// Tags added to every reading of this device.
    pub tags: BTreeMap<String, String>,
    pub sensors: Vec<SensorConfig>,
    pub queue: QueueConfig,
    pub upload: Option<UploadConfig>,
    pub clock: ClockConfig,
}

/// The board file as written. Sensor tables stay as written until each is typed by its kind,
/// so a key the kind does not take is reported at its own line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardFile {
    #[serde(default)]
    device: DeviceConfig,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    sensor: Vec<sensor::SensorTable>,
    #[serde(default)]
    queue: QueueConfig,
    #[serde(default)]
    upload: Option<UploadConfig>,
    #[serde(default)]
    clock: ClockConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// `"auto"`: the Pi's serial number, else /etc/machine-id; or a literal id.
    #[serde(default = "auto")]
    pub id: String,
    /// A small per-device file (`id` and `[tags]`) laid over this board file, so one board file
    /// serves a whole fleet.
    #[serde(default)]
    pub overlay: Option<PathBuf>,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            id: auto(),
            overlay: None,
        }
    }
}

fn auto() -> String {
    "auto".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Default: `$STATE_DIRECTORY/queue.db` under systemd, else `fieldlink-data/queue.db`.
    pub path: Option<PathBuf>,
    #[serde(default = "default_max_bytes", with = "units::size")]
    pub max_bytes: u64,
    #[serde(default = "default_max_age", with = "units::duration")]
    pub max_age: Duration,
    /// How long readings wait in memory before one grouped commit: the loss window on power cut.
    #[serde(default = "default_commit_interval", with = "units::duration")]
    pub commit_interval: Duration,
    /// Width of the windows that old routine readings are averaged into when the queue is full.
    #[serde(default = "default_downsample_window", with = "units::duration")]
    pub downsample_window: Duration,
}

fn default_max_bytes() -> u64 {
    64 << 20
}
fn default_max_age() -> Duration {
    Duration::from_secs(30 * 86400)
}
/// Ten seconds: on an SD card each commit costs a few 4 KiB blocks whatever it holds, so a
/// longer window writes less per reading (about 1.4 bytes per line-protocol byte at 10 s, 1.8
/// at 5 s, for 8 sensors at 1 Hz); the price is the loss window on a power cut.
fn default_commit_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_downsample_window() -> Duration {
    Duration::from_secs(300)
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            path: None,
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
            commit_interval: default_commit_interval(),
            downsample_window: default_downsample_window(),
        }
    }
}

impl QueueConfig {
    /// Where the queue file lives once defaults are applied.
    pub fn resolved_path(&self) -> PathBuf {
        if let Some(path) = &self.path {
            return path.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several directories separated by ':'; the first is ours.
            Some(dirs) => {
                let first = dirs
                    .to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                PathBuf::from(first).join("queue.db")
            }
            None => PathBuf::from("fieldlink-data/queue.db"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    V1,
    V2,
    V3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    /// `http(s)://` for InfluxDB, `mqtt(s)://` for a broker.
    pub url: String,
    /// InfluxDB's write API; required for http(s) URLs (see `validate`), unused by MQTT.
    pub api: Option<Api>,
    /// v1 and v3.
    pub database: Option<String>,
    /// v1 retention policy.
    pub retention_policy: Option<String>,
    /// v2.
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    #[serde(default = "default_batch_bytes", with = "units::size")]
    pub batch_bytes: u64,
    /// See [`UploadConfig::gzip`]: on by default over HTTP, off over MQTT.
    pub gzip: Option<bool>,
    #[serde(default = "default_timeout", with = "units::duration")]
    pub timeout: Duration,
    /// Drain pace after an outage, so a fleet coming back does not stampede the server.
    #[serde(default = "default_max_points_per_second")]
    pub max_points_per_second: u32,
    /// Upper bound of a random delay (seeded by the device id) before the first upload, so a
    /// fleet that boots or reconnects together does not arrive together.
    #[serde(default = "default_start_delay_max", with = "units::duration")]
    pub start_delay_max: Duration,
    /// A private CA bundle (PEM) instead of the system roots.
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Allow a token over plain http to a host that is not loopback.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// MQTT: the topic, with `{device_id}` and `{measurement}` filled in (default
    /// [`DEFAULT_TOPIC`]).
    pub topic: Option<String>,
    /// MQTT: 1 (default) or 2.
    pub qos: Option<u8>,
    /// MQTT: default the device id.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    /// Mode 0600 checked, re-read when it changes, like `token_file`.
    pub password_file: Option<PathBuf>,
    /// MQTT over TLS: a client certificate and key (PEM) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(default, with = "units::duration::option")]
    pub keepalive: Option<Duration>,
    pub protocol: Option<MqttProtocol>,
}

fn default_batch_lines() -> usize {
    5000
}
fn default_batch_bytes() -> u64 {
    1 << 20
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_start_delay_max() -> Duration {
    Duration::from_secs(30)
}
fn default_max_points_per_second() -> u32 {
    5000
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// Hold readings back until the system clock is known to be synchronised.
    #[serde(default)]
    pub require_sync: bool,
}

/// The per-device overlay file: identity and extra tags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overlay {
    #[serde(default)]
    device: Option<OverlayDevice>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayDevice {
    id: Option<String>,
}

impl Board {
    /// Read, parse and validate a board file (and its overlay, if it names one).
    pub fn load(path: &Path) -> Result<Board, ConfigError> {
        let text = read(path)?;
        let file: BoardFile = toml::from_str(&text).map_err(|e| toml_error(path, &text, e))?;
        if file.sensor.is_empty() && looks_like_overlay(&text) {
            return Err(ConfigError::Overlay {
                path: path.to_path_buf(),
            });
        }
        let invalid = |text: &str, problem: Problem| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: find_line(text, problem.section, problem.index, &problem.key),
            key: problem.full_key(),
            message: problem.message,
        };
        let mut board = Board::from_file(file)
            .map_err(|(index, err)| invalid(&text, Problem::sensor(index, err.key, err.message)))?;
        let board_dir = paths::board_dir(path);
        if let Some(overlay_path) = board.device.overlay.clone() {
            board.lay_overlay(&board_dir.join(overlay_path))?;
        }
        board.resolve_paths(&board_dir);
        board
            .validate()
            .map_err(|problem| invalid(&text, problem))?;
        Ok(board)
    }

    /// Lay a per-device overlay over this board: its id replaces the board's, its tags are
    /// added. Its own mistakes are reported against the overlay file.
    fn lay_overlay(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = read(path)?;
        let overlay: Overlay = toml::from_str(&text).map_err(|e| toml_error(path, &text, e))?;
        let invalid = |problem: Problem| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: find_line(&text, problem.section, None, &problem.key),
            key: problem.full_key(),
            message: problem.message,
        };
        if let Some(id) = overlay.device.and_then(|d| d.id) {
            validate::check_device_id(&id).map_err(|m| invalid(Problem::new("device", "id", m)))?;
            self.device.id = id;
        }
        for (key, value) in &overlay.tags {
            validate::check_board_tag(key, value)
                .map_err(|m| invalid(Problem::new("tags", key.as_str(), m)))?;
        }
        self.tags.extend(overlay.tags);
        Ok(())
    }

    /// Type each sensor table by its kind; on error, which table and why.
    fn from_file(file: BoardFile) -> Result<Board, (usize, KeyError)> {
        let sensors = file
            .sensor
            .into_iter()
            .enumerate()
            .map(|(index, table)| SensorConfig::try_from(table).map_err(|err| (index, err)))
            .collect::<Result<_, _>>()?;
        Ok(Board {
            device: file.device,
            tags: file.tags,
            sensors,
            queue: file.queue,
            upload: file.upload,
            clock: file.clock,
        })
    }
}

/// A file with only `[device]` (no overlay of its own) and `[tags]` and no sensors is a
/// per-device overlay given where a board was expected.
fn looks_like_overlay(text: &str) -> bool {
    let Ok(table) = text.parse::<toml::Table>() else {
        return false;
    };
    let device_only_id = match table.get("device") {
        None => true,
        Some(device) => device
            .as_table()
            .is_some_and(|d| d.keys().all(|k| k == "id")),
    };
    !table.is_empty() && device_only_id && table.keys().all(|k| k == "device" || k == "tags")
}

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod validation_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str) -> Result<Board, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        Board::load(file.path())
    }

    const SENSOR: &str = "[[sensor]]\nid = \"T1\"\nkind = \"simulated_climate\"\n";

    #[test]
    fn a_minimal_board_gets_sensible_defaults() {
        let board = load(SENSOR).unwrap();
        assert_eq!(board.device.id, "auto");
        assert_eq!(board.sensors[0].measurement, "iot_metrics");
        assert_eq!(board.sensors[0].interval, Duration::from_secs(10));
        assert_eq!(board.queue.commit_interval, Duration::from_secs(10));
        assert!(board.upload.is_none());
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let err = load(&format!("{SENSOR}colour = \"red\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(":4: key `sensor.colour`"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn a_bad_duration_says_what_is_expected() {
        let err = load(&format!("{SENSOR}interval = \"5 parsecs\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(":4: key `sensor.interval`"), "{err}");
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = load("[queue]\nmax_bytes = 12\n").unwrap_err().to_string();
        assert!(err.contains(":2: key `queue.max_bytes`"), "{err}");
    }

    #[test]
    fn a_v2_upload_without_bucket_is_refused_at_its_section() {
        let err = load(&format!(
            "{SENSOR}[upload]\nurl = \"http://x\"\napi = \"v2\"\norg = \"o\"\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("key `upload.bucket`") && text.contains("needs `bucket`"),
            "{text}"
        );
        assert!(text.contains(":4:"), "{text}");
    }

    #[test]
    fn a_tag_value_ending_in_backslash_is_refused() {
        let err = load(&format!("[tags]\nzone = 'a\\'\n{SENSOR}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("backslash"), "{err}");
    }

    #[test]
    fn an_overlay_relative_to_the_board_file_sets_id_and_adds_tags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("device.toml"),
            "[device]\nid = \"pi-42\"\n[tags]\nzone = \"cold\"\n",
        )
        .unwrap();
        let board_path = dir.path().join("board.toml");
        std::fs::write(
            &board_path,
            format!("[device]\noverlay = \"device.toml\"\n[tags]\nfloor = \"1\"\n{SENSOR}"),
        )
        .unwrap();
        let board = Board::load(&board_path).unwrap();
        assert_eq!(board.device.id, "pi-42");
        assert_eq!(board.tags.get("zone").map(String::as_str), Some("cold"));
        assert_eq!(board.tags.get("floor").map(String::as_str), Some("1"));
    }

    #[test]
    fn duplicate_sensor_ids_point_at_the_second_one() {
        let err = load(&format!("{SENSOR}{SENSOR}")).unwrap_err().to_string();
        assert!(err.contains(":5: key `sensor[1].id`"), "{err}");
    }
}
