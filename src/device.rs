//! Who this device is and which tags its readings carry.

use crate::config::series::{SeriesPlan, INTERNAL_MEASUREMENT};
use crate::config::{Board, SensorConfig};
use crate::line_protocol::series_key;
use crate::reading::EdgeName;
use std::collections::BTreeMap;

/// fieldlink's application id for `sd_id128_get_machine_app_specific`: a fixed random 128-bit
/// value, so the derived id is stable for a device and unlinkable to ids other programs derive.
/// `systemd-id128 machine-id --app-specific=3168a1adb0bb4a6d873a52030a397199` prints the same id.
const APP_ID: [u8; 16] = [
    0x31, 0x68, 0xa1, 0xad, 0xb0, 0xbb, 0x4a, 0x6d, 0x87, 0x3a, 0x52, 0x03, 0x0a, 0x39, 0x71, 0x99,
];

/// `"auto"`: the Pi's serial number (device tree), else an id derived from /etc/machine-id
/// (never the machine id itself, which machine-id(5) says to keep confidential), else the host
/// name.
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
        .or_else(|| read("/etc/machine-id").and_then(|id| app_specific_id(&id)))
        .or_else(|| read("/proc/sys/kernel/hostname").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-device".into())
}

/// What `sd_id128_get_machine_app_specific` derives from a machine id (32 hex digits): the
/// first half of HMAC-SHA256 keyed by the machine id over fieldlink's application id, made a
/// version 4 UUID, as 32 lowercase hex digits like the machine id. `None` if `machine_id` is not
/// 32 hex digits.
pub fn app_specific_id(machine_id: &str) -> Option<String> {
    let machine_id = machine_id.trim();
    if machine_id.len() != 32 || !machine_id.is_ascii() {
        return None;
    }
    let mut key = [0u8; 16];
    for (byte, pair) in key.iter_mut().zip(machine_id.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &APP_ID,
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(&tag.as_ref()[..16]);
    id[6] = (id[6] & 0x0f) | 0x40; // version 4
    id[8] = (id[8] & 0x3f) | 0x80; // variant 1 (RFC 4122)
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
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

/// One series key per edge the sensor reports: its tags plus `event=<edge>`.
fn event_keys(board: &Board, device_id: &str, sensor: &SensorConfig) -> Vec<(EdgeName, String)> {
    let mut tags = sensor_tags(board, device_id, sensor);
    let edges = sensor.kind.edges().iter();
    edges
        .map(|&edge| {
            tags.insert(EdgeName::TAG.into(), edge.tag_value().into());
            (edge, series_key(&sensor.measurement, &tags))
        })
        .collect()
}

/// The series key of every sensor, of every edge of its events, and of the agent's own health
/// readings.
pub fn series_plan(board: &Board, device_id: &str) -> SeriesPlan {
    let mut internal_tags = board.tags.clone();
    internal_tags.insert("device_id".into(), device_id.into());
    SeriesPlan {
        sensor_keys: board
            .sensors
            .iter()
            .map(|s| series_key(&s.measurement, &sensor_tags(board, device_id, s)))
            .collect(),
        event_keys: board
            .sensors
            .iter()
            .map(|s| event_keys(board, device_id, s))
            .collect(),
        sensor_ids: board.sensors.iter().map(|s| s.id.clone()).collect(),
        internal_key: series_key(INTERNAL_MEASUREMENT, &internal_tags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python's `hmac` and `hashlib` from the same machine id and
    /// application id, then version and variant bits set as systemd's `id128_make_v4_uuid` does.
    #[test]
    fn the_machine_id_becomes_an_app_specific_id_like_systemd_derives() {
        assert_eq!(
            app_specific_id("0123456789abcdef0123456789abcdef\n").as_deref(),
            Some("a014e9f77d6e4a02a911ca37cf259307")
        );
        assert_eq!(
            app_specific_id("0123456789ABCDEF0123456789ABCDEF").as_deref(),
            Some("a014e9f77d6e4a02a911ca37cf259307")
        );
    }

    #[test]
    fn a_machine_id_that_is_not_32_hex_digits_gives_no_id() {
        assert_eq!(app_specific_id(""), None);
        assert_eq!(app_specific_id("0123456789abcdef0123456789abcdeg"), None);
        assert_eq!(app_specific_id("uninitialized"), None);
    }
}
