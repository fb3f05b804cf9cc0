//! A small stderr logger. Under systemd (JOURNAL_STREAM is set) each line starts with a
//! syslog priority like `<4>`, which journald turns into the entry's priority, so no journal
//! library is needed and nothing breaks when there is no journal socket.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger {
    journald: bool,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) || !record.target().starts_with("fieldlink") {
            return;
        }
        let line = if self.journald {
            let priority = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{priority}>{}\n", record.args())
        } else {
            format!("fieldlink {:<5} {}\n", record.level(), record.args())
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Install the logger; the level comes from `FIELDLINK_LOG` (error, warn, info, debug, trace).
pub fn init() {
    let level = match std::env::var("FIELDLINK_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        "off" => LevelFilter::Off,
        _ => LevelFilter::Info,
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { journald }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
