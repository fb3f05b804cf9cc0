//! `status`: one [`StatusReport`] built from the queue file and the clock, and two renderings
//! of it, text for people and JSON for scripts (whose keys scripts and tests rely on).

use super::existing_queue;
use super::when::time_and_age;
use super::CliError;
use crate::clock::{Clock, SystemClock, TimeKeeper};
use crate::config::units::{format_duration, format_size};
use crate::config::Board;
use crate::queue::{counter, Access};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Every named counter, so the JSON rendering shows each one, zero or not.
const NAMED_COUNTERS: [&str; 11] = [
    counter::SAMPLED,
    counter::UPLOADED,
    counter::EXPIRED,
    counter::THINNED,
    counter::DROPPED_FULL,
    counter::REJECTED,
    counter::UNKNOWN_TIME,
    counter::AGGREGATES,
    counter::FIELDS_NONFINITE,
    counter::QUEUED,
    counter::HELD,
];

/// What `status` knows about one board's agent at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub queue: PathBuf,
    /// When the report was made (wall clock, ns since the epoch): times are printed from it.
    pub now_ns: i64,
    /// Readings waiting for upload, and how long ago the oldest was sampled.
    pub depth: i64,
    pub oldest_age_ns: Option<i64>,
    /// Readings held until the clock is trusted, and the oldest one's age by its own clock.
    pub held: i64,
    pub oldest_held_age_ns: Option<i64>,
    pub dead_letters: i64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub max_age: Duration,
    pub last_upload: Option<String>,
    pub clock: ClockState,
    pub disk: Disk,
    /// Every counter in the queue, each named counter present (zero if never counted).
    pub counters: BTreeMap<String, i64>,
}

/// Whether new readings get a timestamp now or are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    Trusted,
    /// Synchronised, yet earlier than a time already seen.
    Implausible,
    NotSynchronised,
}

impl ClockState {
    pub fn describe(self) -> &'static str {
        match self {
            ClockState::Trusted => "trusted",
            ClockState::Implausible => {
                "synchronised but implausible (earlier than a time already seen)"
            }
            ClockState::NotSynchronised => "not synchronised: new readings are held",
        }
    }
}

/// Free space on the queue's file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    /// `None` when the file system would not say.
    pub free_bytes: Option<u64>,
    /// Below the recorder's threshold: new readings wait in memory.
    pub full: bool,
}

impl StatusReport {
    /// Read the board's queue and the system clock. The queue must exist already.
    pub fn gather(board: &Board) -> Result<StatusReport, CliError> {
        let path = board.queue.resolved_path();
        let queue = existing_queue::open(board, Access::ReadOnly)?;
        let stats = queue.stats()?;
        let mut counters = queue.counters()?;
        for name in NAMED_COUNTERS {
            counters.entry(name.to_string()).or_insert(0);
        }
        let last_trusted: i64 = queue
            .meta("last_trusted_ns")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let clock = Arc::new(SystemClock::default());
        let now = clock.wall_ns();
        let keeper = TimeKeeper::new(clock.clone(), board.clock.require_sync, last_trusted);
        let clock_state = match (clock.synchronised(), keeper.trusts(now)) {
            (_, true) => ClockState::Trusted,
            (true, false) => ClockState::Implausible,
            (false, false) => ClockState::NotSynchronised,
        };
        let free_bytes = crate::queue::free_bytes(&path);
        Ok(StatusReport {
            depth: stats.depth,
            oldest_age_ns: stats.oldest_ns.map(|t| now - t),
            held: stats.held,
            oldest_held_age_ns: stats.oldest_held_wall_ns.map(|t| now - t),
            dead_letters: stats.dead_letters,
            bytes: stats.bytes,
            max_bytes: board.queue.max_bytes,
            max_age: board.queue.max_age,
            last_upload: queue.meta("last_upload")?,
            clock: clock_state,
            disk: Disk {
                free_bytes,
                full: free_bytes.is_some_and(|b| b < crate::queue::DISK_NEARLY_FULL),
            },
            counters,
            queue: path,
            now_ns: now,
        })
    }

    /// The rendering for scripts; its keys are a stable interface.
    pub fn to_json(&self) -> serde_json::Value {
        let seconds = |ns: Option<i64>| ns.map(|ns| ns as f64 / 1e9);
        serde_json::json!({
            "queue": self.queue.display().to_string(),
            "depth": self.depth,
            "oldest_age_s": seconds(self.oldest_age_ns),
            "held": self.held,
            "oldest_held_age_s": seconds(self.oldest_held_age_ns),
            "dead_letters": self.dead_letters,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "last_upload": self.last_upload,
            "clock": self.clock.describe(),
            "disk_free_bytes": self.disk.free_bytes,
            "disk_full": self.disk.full,
            "counters": self.counters,
        })
    }

    /// The rendering for people: one aligned line per subject, times in RFC 3339 with their
    /// age, sizes and durations in the units a board file uses.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let at = |age_ns: i64| time_and_age(self.now_ns - age_ns, self.now_ns);
        let waiting_oldest = self
            .oldest_age_ns
            .map(|ns| format!(", oldest sampled {}", at(ns)))
            .unwrap_or_default();
        let held_oldest = self
            .oldest_held_age_ns
            .map(|ns| format!(", oldest {} by its own clock", at(ns)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "queue        {} ({} of {}, kept up to {})",
            self.queue.display(),
            format_size(self.bytes),
            format_size(self.max_bytes),
            format_duration(self.max_age)
        );
        let _ = writeln!(
            out,
            "waiting      {} reading(s){}",
            self.depth, waiting_oldest
        );
        let _ = writeln!(
            out,
            "held         {} reading(s) waiting for a trusted clock{}",
            self.held, held_oldest
        );
        let _ = writeln!(out, "dead letters {}", self.dead_letters);
        let _ = writeln!(out, "disk         {}", self.disk.describe());
        let _ = writeln!(out, "clock        {}", self.clock.describe());
        let last_upload = self
            .last_upload
            .as_deref()
            .map(|note| self.upload_note(note));
        let _ = writeln!(
            out,
            "last upload  {}",
            last_upload.as_deref().unwrap_or("never")
        );
        self.counters_text(&mut out);
        out
    }

    /// The uploader's note (`ok at <ns>`, `paused <s>s: <reason>`) with its time and delay
    /// written for people.
    fn upload_note(&self, note: &str) -> String {
        if let Some(rest) = note.strip_prefix("ok at ") {
            let (ns, after) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Ok(ns) = ns.parse() {
                let space = if after.is_empty() { "" } else { " " };
                return format!("ok at {}{space}{after}", time_and_age(ns, self.now_ns));
            }
        }
        let paused = note
            .strip_prefix("paused ")
            .and_then(|rest| rest.split_once("s: "));
        if let Some((secs, reason)) = paused {
            if let Ok(secs) = secs.parse() {
                let delay = format_duration(Duration::from_secs(secs));
                return format!("paused {delay}: {reason}");
            }
        }
        note.to_string()
    }

    fn counters_text(&self, out: &mut String) {
        let get = |name: &str| self.counters.get(name).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "sampled      {}    uploaded {}",
            get(counter::SAMPLED),
            get(counter::UPLOADED)
        );
        let _ = writeln!(
            out,
            "dropped      expired {}  thinned {}  dropped_full {}  rejected {}  unknown_time {}",
            get(counter::EXPIRED),
            get(counter::THINNED),
            get(counter::DROPPED_FULL),
            get(counter::REJECTED),
            get(counter::UNKNOWN_TIME)
        );
        for (name, value) in &self.counters {
            if let Some(sensor) = name.strip_prefix(counter::SENSOR_ERROR_PREFIX) {
                let _ = writeln!(out, "sensor error {sensor} = {value}");
            }
        }
    }
}

impl Disk {
    fn describe(&self) -> String {
        match self.free_bytes {
            Some(bytes) if self.full => format!(
                "FULL ({} free): new readings wait in memory (up to {}) and are written when space returns",
                format_size(bytes),
                crate::recorder::SPILL_LIMIT
            ),
            Some(bytes) => format!("{} free", format_size(bytes)),
            None => "free space unknown".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T15:04:05Z.
    const NOW_NS: i64 = 1_796_137_445 * 1_000_000_000;

    fn report() -> StatusReport {
        let counters = [
            (counter::SAMPLED.to_string(), 12),
            (counter::UPLOADED.to_string(), 9),
            (format!("{}t1", counter::SENSOR_ERROR_PREFIX), 2),
        ]
        .into_iter()
        .collect();
        StatusReport {
            queue: "/var/lib/fieldlink/queue.db".into(),
            now_ns: NOW_NS,
            depth: 3,
            oldest_age_ns: Some(90 * 60 * 1_000_000_000),
            held: 0,
            oldest_held_age_ns: None,
            dead_letters: 1,
            bytes: 2 * 1048576,
            max_bytes: 64 * 1048576,
            max_age: Duration::from_secs(30 * 86400),
            last_upload: Some(format!("ok at {}", NOW_NS - 192 * 1_000_000_000)),
            clock: ClockState::Trusted,
            disk: Disk {
                free_bytes: Some(10 * 1048576),
                full: false,
            },
            counters,
        }
    }

    #[test]
    fn json_and_text_render_the_same_report() {
        let report = report();
        let json = report.to_json();
        assert_eq!(json["depth"], 3);
        assert_eq!(json["oldest_age_s"], 5400.0);
        assert_eq!(json["oldest_held_age_s"], serde_json::Value::Null);
        assert_eq!(json["dead_letters"], 1);
        assert_eq!(json["clock"], "trusted");
        assert_eq!(json["disk_full"], false);
        assert_eq!(
            json["last_upload"],
            format!("ok at {}", NOW_NS - 192 * 1_000_000_000)
        );
        assert_eq!(json["counters"]["uploaded"], 9);
        let text = report.to_text();
        assert!(
            text.contains(
                "waiting      3 reading(s), oldest sampled 2026-12-01T13:34:05Z (1h 30m ago)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "queue        /var/lib/fieldlink/queue.db (2MiB of 64MiB, kept up to 30d)"
            ),
            "{text}"
        );
        assert!(text.contains("dead letters 1\n"), "{text}");
        assert!(text.contains("disk         10MiB free\n"), "{text}");
        assert!(
            text.contains("last upload  ok at 2026-12-01T15:00:53Z (3m 12s ago)\n"),
            "{text}"
        );
        assert!(text.contains("sampled      12    uploaded 9\n"), "{text}");
        assert!(text.contains("sensor error t1 = 2\n"), "{text}");
    }

    #[test]
    fn held_readings_and_a_full_disk_are_said_plainly() {
        let mut report = report();
        report.held = 4;
        report.oldest_held_age_ns = Some(3 * 1_000_000_000);
        report.disk = Disk {
            free_bytes: Some(1000),
            full: true,
        };
        report.clock = ClockState::NotSynchronised;
        let text = report.to_text();
        assert!(
            text.contains("held         4 reading(s) waiting for a trusted clock, oldest 2026-12-01T15:04:02Z (3s ago) by its own clock"),
            "{text}"
        );
        assert!(text.contains("disk         FULL (1000B free)"), "{text}");
        assert!(text.contains("clock        not synchronised"), "{text}");
        assert_eq!(report.to_json()["oldest_held_age_s"], 3.0);
    }

    #[test]
    fn upload_notes_say_their_time_and_delay_for_people() {
        let mut report = report();
        report.last_upload = Some(format!(
            "ok at {} or later (clock not trusted)",
            NOW_NS - 60 * 1_000_000_000
        ));
        assert!(
            report.to_text().contains(
                "last upload  ok at 2026-12-01T15:03:05Z (1m 0s ago) or later (clock not trusted)\n"
            ),
            "{}",
            report.to_text()
        );
        report.last_upload = Some("paused 300s: server answered 503".into());
        let text = report.to_text();
        assert!(
            text.contains("last upload  paused 5m: server answered 503\n"),
            "{text}"
        );
    }
}
