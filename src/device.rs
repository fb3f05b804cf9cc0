//! Who this device is and which tags its readings carry.

use crate::config::series::{SeriesPlan, INTERNAL_MEASUREMENT};
use crate::config::{Board, SensorConfig};
use crate::line_protocol::series_key;
use std::collections::BTreeMap;

/// `"auto"`: the Pi's serial number (device tree), else /etc/machine-id, else the host name.
pub fn resolve_id(configured: &str) -> String {
    if configured != "auto" {
        return configured.to_string();
    }
    let read = |path: &str| {
        std::fs::read_to_string(path).ok().map(|s| {
            s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                .to_string()
        })
    };
    read("/proc/device-tree/serial-number")
        .filter(|s| !s.is_empty())
        .or_else(|| read("/etc/machine-id").filter(|s| !s.is_empty()))
        .or_else(|| read("/proc/sys/kernel/hostname").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-device".into())
}

/// Tags of one sensor's readings: device id, sensor id, the device's tags, the sensor's tags
/// (a sensor tag overrides a device tag of the same name).
pub fn sensor_tags(
    board: &Board,
    device_id: &str,
    sensor: &SensorConfig,
) -> BTreeMap<String, String> {
    let mut tags = board.tags.clone();
    tags.extend(sensor.tags.clone());
    tags.insert("device_id".into(), device_id.into());
    tags.insert("sensor_id".into(), sensor.id.clone());
    tags
}

/// The series key of every sensor and of the agent's own health readings.
pub fn series_plan(board: &Board, device_id: &str) -> SeriesPlan {
    let mut internal_tags = board.tags.clone();
    internal_tags.insert("device_id".into(), device_id.into());
    SeriesPlan {
        sensor_keys: board
            .sensors
            .iter()
            .map(|s| series_key(&s.measurement, &sensor_tags(board, device_id, s)))
            .collect(),
        sensor_ids: board.sensors.iter().map(|s| s.id.clone()).collect(),
        internal_key: series_key(INTERNAL_MEASUREMENT, &internal_tags),
    }
}
