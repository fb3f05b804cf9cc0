//! Checks serde cannot express, run once when a board is loaded, so `check` and `run` (and a
//! reload) refuse the same boards for the same reasons: values the agent cannot run with, and
//! names and tags that InfluxDB would store wrongly or not at all.

use super::{Board, QueueConfig};
use std::time::Duration;

/// What is wrong and where: the section (`sensor` with the table's index), the key below it
/// (`tags.zone`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub section: &'static str,
    pub index: Option<usize>,
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(section: &'static str, key: impl Into<String>, message: String) -> Problem {
        Problem {
            section,
            index: None,
            key: key.into(),
            message,
        }
    }

    pub fn sensor(index: usize, key: impl Into<String>, message: String) -> Problem {
        Problem {
            section: "sensor",
            index: Some(index),
            key: key.into(),
            message,
        }
    }

    /// The key as the error shows it: `sensor[1].tags.zone`, `upload.url`, `tags.zone`.
    pub fn full_key(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}].{}", self.section, self.key),
            None if self.section.is_empty() => self.key.clone(),
            None => format!("{}.{}", self.section, self.key),
        }
    }
}

/// Tag keys the agent sets itself: a board tag of that name would be silently replaced.
const RESERVED_TAGS: [&str; 2] = ["device_id", "sensor_id"];

/// Shortest commit window: a zero window commits in a busy loop and spins a core.
const MIN_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Smallest queue: below this, the SQLite file and its WAL leave no room for readings and the
/// queue thins or drops what it was just given.
const MIN_QUEUE_BYTES: u64 = 1 << 20;
/// Longest sampling interval: a sensor read less than daily is not what this agent is for, and
/// far longer intervals overflow the schedule so the sensor never samples again.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Shortest sampling interval.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

impl Board {
    /// Checks on the whole board, after the overlay is laid over it and relative paths are
    /// resolved.
    pub(super) fn validate(&self) -> Result<(), Problem> {
        check_device_id(&self.device.id).map_err(|m| Problem::new("device", "id", m))?;
        for (key, value) in &self.tags {
            check_board_tag(key, value).map_err(|m| Problem::new("tags", key.as_str(), m))?;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, sensor) in self.sensors.iter().enumerate() {
            if sensor.id.is_empty() || !seen.insert(sensor.id.as_str()) {
                return Err(Problem::sensor(
                    i,
                    "id",
                    format!(
                        "sensor id `{}` is empty or used twice; each sensor needs its own id",
                        sensor.id
                    ),
                ));
            }
            check_tag("sensor_id", &sensor.id).map_err(|m| Problem::sensor(i, "id", m))?;
            for (key, value) in &sensor.tags {
                check_board_tag(key, value)
                    .map_err(|m| Problem::sensor(i, format!("tags.{key}"), m))?;
            }
            check_measurement(&sensor.measurement)
                .map_err(|m| Problem::sensor(i, "measurement", m))?;
            check_interval(sensor.interval).map_err(|m| Problem::sensor(i, "interval", m))?;
        }
        check_queue(&self.queue)?;
        if let Some(upload) = &self.upload {
            upload
                .validate()
                .map_err(|(key, message)| Problem::new("upload", key, message))?;
        }
        Ok(())
    }
}

fn check_interval(interval: Duration) -> Result<(), String> {
    if interval < MIN_INTERVAL {
        return Err("expected at least \"10ms\"".into());
    }
    if interval > MAX_INTERVAL {
        return Err(format!(
            "{interval:?} is longer than a day; expected at most \"24h\""
        ));
    }
    Ok(())
}

fn check_queue(queue: &QueueConfig) -> Result<(), Problem> {
    if queue
        .path
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(Problem::new(
            "queue",
            "path",
            "an empty path would put the queue in a temporary database that is lost at exit; \
             give a file path or leave `path` out for the default"
                .into(),
        ));
    }
    if queue.commit_interval < MIN_COMMIT_INTERVAL {
        return Err(Problem::new(
            "queue",
            "commit_interval",
            format!(
                "expected at least \"100ms\", got {:?}",
                queue.commit_interval
            ),
        ));
    }
    if queue.max_bytes < MIN_QUEUE_BYTES {
        return Err(Problem::new(
            "queue",
            "max_bytes",
            format!(
                "expected at least \"1MiB\", got {} bytes: a smaller queue has no room for readings",
                queue.max_bytes
            ),
        ));
    }
    Ok(())
}

/// A tag written in a board or overlay: a tag InfluxDB can carry, and not one the agent sets
/// itself or the server refuses.
pub fn check_board_tag(key: &str, value: &str) -> Result<(), String> {
    if RESERVED_TAGS.contains(&key) {
        return Err(format!(
            "tag `{key}` is set by fieldlink itself (from `device.id` and each sensor's `id`); \
             rename this tag"
        ));
    }
    if key == "time" {
        return Err("a tag named `time` is rejected by InfluxDB; rename it".into());
    }
    if key == crate::reading::EdgeName::TAG {
        return Err(
            "tag `event` is reserved: fieldlink sets it on event readings (open/close, motion/clear)"
                .into(),
        );
    }
    check_tag(key, value)
}

/// A device id that becomes the `device_id` tag: `"auto"`, or a literal id InfluxDB can carry.
pub(super) fn check_device_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("expected a device id, or \"auto\" for the Pi's serial number".into());
    }
    check_tag("device_id", id)
}

/// InfluxDB cannot carry a tag value that is empty, ends with a backslash, has a backslash
/// right before a space, comma or equals sign, or two in a row (1.x keeps both, 3.x reads one):
/// it comes back different. Nor can it carry control characters: line breaks end the line, and
/// 3.x reads a tab as the end of the series key. Refuse them here.
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    for text in [key, value] {
        if text.is_empty() {
            return Err(format!(
                "tag `{key}` has an empty key or value; InfluxDB drops such tags"
            ));
        }
        if has_unsafe_backslash(text, &[' ', ',', '=']) {
            return Err(format!(
                "tag `{key}` = `{value}`: {BACKSLASH_RULE}, or before a space, comma or `=`, cannot round-trip through InfluxDB"
            ));
        }
        if text.contains(char::is_control) {
            return Err(format!(
                "tag `{key}` contains a control character (line break, tab); line protocol cannot carry it"
            ));
        }
    }
    Ok(())
}

/// How backslashes break a name, for messages.
const BACKSLASH_RULE: &str = "a backslash at the end, two in a row";

/// A backslash at the end, doubled, or right before one of `special`.
fn has_unsafe_backslash(text: &str, special: &[char]) -> bool {
    text.ends_with('\\')
        || text.contains("\\\\")
        || text
            .match_indices('\\')
            .any(|(at, _)| text[at + 1..].starts_with(special))
}

/// A measurement name InfluxDB stores as written: not empty, not starting with `#` (the line
/// would be a comment, answered 2xx and stored nowhere), no control character, and no backslash
/// at the end, doubled or before a space or comma (it would come back different).
pub fn check_measurement(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("expected a non-empty measurement name".into());
    }
    if name.starts_with('#') {
        return Err(format!(
            "measurement `{name}` starts with `#`: InfluxDB reads the line as a comment and stores nothing"
        ));
    }
    if name.contains(char::is_control) {
        return Err(
            "a measurement name cannot contain a control character (line break, tab)".into(),
        );
    }
    if has_unsafe_backslash(name, &[' ', ',']) {
        return Err(format!(
            "measurement `{name}`: {BACKSLASH_RULE}, or before a space or comma, cannot round-trip through InfluxDB"
        ));
    }
    Ok(())
}
