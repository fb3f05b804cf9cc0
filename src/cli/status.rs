//! `status`: one [`StatusReport`] built from the queue file and the clock, and two renderings
//! of it, text for people and JSON for scripts (whose keys scripts and tests rely on).

use super::existing_queue;
use super::CliError;
use crate::clock::{Clock, SystemClock, TimeKeeper};
use crate::config::Board;
use crate::queue::{counter, Access};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Readings waiting for upload, and how long ago the oldest was sampled.
    pub depth: i64,
    pub oldest_age_ns: Option<i64>,
    /// Readings held until the clock is trusted, and the oldest one's age by its own clock.
    pub held: i64,
    pub oldest_held_age_ns: Option<i64>,
    pub dead_letters: i64,
    pub bytes: u64,
    pub max_bytes: u64,
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
            last_upload: queue.meta("last_upload")?,
            clock: clock_state,
            disk: Disk {
                free_bytes,
                full: free_bytes.is_some_and(|b| b < crate::queue::DISK_NEARLY_FULL),
            },
            counters,
            queue: path,
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

    /// The rendering for people: one aligned line per subject.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mib = |bytes: u64| bytes as f64 / 1048576.0;
        let waiting_oldest = self
            .oldest_age_ns
            .map(|ns| format!(", oldest sampled {} ago", human_age(ns)))
            .unwrap_or_default();
        let held_oldest = self
            .oldest_held_age_ns
            .map(|ns| format!(", oldest {} ago by its own clock", human_age(ns)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "queue        {} ({:.1} of {:.1} MiB)",
            self.queue.display(),
            mib(self.bytes),
            mib(self.max_bytes)
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
        let _ = writeln!(
            out,
            "last upload  {}",
            self.last_upload.as_deref().unwrap_or("never")
        );
        self.counters_text(&mut out);
        out
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
                "FULL ({bytes} bytes free): new readings wait in memory (up to {}) and are written when space returns",
                crate::recorder::SPILL_LIMIT
            ),
            Some(bytes) => format!("{:.1} MiB free", bytes as f64 / 1048576.0),
            None => "free space unknown".into(),
        }
    }
}

/// An age as people read it: seconds, then minutes, hours and minutes, days and hours.
fn human_age(ns: i64) -> String {
    let s = (ns.max(0) / 1_000_000_000) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            depth: 3,
            oldest_age_ns: Some(90 * 60 * 1_000_000_000),
            held: 0,
            oldest_held_age_ns: None,
            dead_letters: 1,
            bytes: 2 * 1048576,
            max_bytes: 64 * 1048576,
            last_upload: Some("ok 204".into()),
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
        assert_eq!(json["last_upload"], "ok 204");
        assert_eq!(json["counters"]["uploaded"], 9);
        let text = report.to_text();
        assert!(
            text.contains("waiting      3 reading(s), oldest sampled 90m ago"),
            "{text}"
        );
        assert!(
            text.contains("queue        /var/lib/fieldlink/queue.db (2.0 of 64.0 MiB)"),
            "{text}"
        );
        assert!(text.contains("dead letters 1\n"), "{text}");
        assert!(text.contains("disk         10.0 MiB free\n"), "{text}");
        assert!(text.contains("last upload  ok 204\n"), "{text}");
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
            text.contains("held         4 reading(s) waiting for a trusted clock, oldest 3s ago by its own clock"),
            "{text}"
        );
        assert!(
            text.contains("disk         FULL (1000 bytes free)"),
            "{text}"
        );
        assert!(text.contains("clock        not synchronised"), "{text}");
        assert_eq!(report.to_json()["oldest_held_age_s"], 3.0);
    }

    #[test]
    fn ages_read_in_the_largest_useful_unit() {
        let s = 1_000_000_000;
        assert_eq!(human_age(59 * s), "59s");
        assert_eq!(human_age(300 * s), "5m");
        assert_eq!(human_age((3 * 3600 + 5 * 60) * s), "3h05m");
        assert_eq!(human_age((2 * 86400 + 7 * 3600) * s), "2d07h");
        assert_eq!(human_age(-5 * s), "0s");
    }
}
