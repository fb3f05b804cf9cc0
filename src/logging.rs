//! A small stderr logger. When stderr is the journal (systemd says so in `JOURNAL_STREAM`,
//! whose `DEV:INODE` must be stderr's own: a child whose stderr was redirected inherits the
//! variable but not the journal) each line starts with a syslog priority like `<4>`, which
//! journald turns into the entry's priority, so no journal library is needed and nothing
//! breaks when there is no journal socket. Other crates' messages (ureq, rustls) are
//! details of our own: they show at debug level only.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::OnceLock;

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        effective_level(metadata) <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = effective_level(record.metadata());
        let text = record.args().to_string();
        write_stderr(&format_line(level, &text, stderr_is_journal()));
    }

    fn flush(&self) {}
}

/// Our own messages keep their level; any other crate's are at most debug, so a TLS or HTTP
/// library's warnings never reach an operator's log unless asked for.
fn effective_level(metadata: &Metadata) -> Level {
    let level = metadata.level();
    if metadata.target().starts_with("fieldlink") {
        level
    } else {
        level.max(Level::Debug)
    }
}

/// The syslog priority journald reads from a line's `<N>` prefix.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One logged message as stderr gets it: every line with the priority for the journal, or
/// the program name and level for a terminal or file.
fn format_line(level: Level, text: &str, journal: bool) -> String {
    if journal {
        prefixed(text, &format!("<{}>", priority(level)))
    } else {
        prefixed(text, &format!("fieldlink {level:<5} "))
    }
}

/// Why the command ends, said once whatever the log level: with the error priority for the
/// journal, else after the program name.
pub fn print_fatal(text: &str) {
    let prefix = if stderr_is_journal() {
        format!("<{}>", priority(Level::Error))
    } else {
        "fieldlink: ".to_string()
    };
    write_stderr(&prefixed(text, &prefix));
}

fn prefixed(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Whether stderr is the journal stream systemd connected, decided once.
pub fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let stream = stream.to_string_lossy();
        stderr_identity().is_some_and(|(dev, ino)| names_this_file(&stream, dev, ino))
    })
}

/// `JOURNAL_STREAM` is `DEV:INODE` in decimal, as systemd.exec(5) documents.
fn names_this_file(stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = stream.trim().split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// Device and inode of whatever stderr is (a file, a pipe, a socket).
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
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
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(level: Level, target: &str) -> Metadata<'_> {
        Metadata::builder().level(level).target(target).build()
    }

    #[test]
    fn each_level_carries_its_journald_priority() {
        assert_eq!(format_line(Level::Error, "broken", true), "<3>broken\n");
        assert_eq!(format_line(Level::Warn, "odd", true), "<4>odd\n");
        assert_eq!(format_line(Level::Info, "fine", true), "<6>fine\n");
        assert_eq!(format_line(Level::Debug, "detail", true), "<7>detail\n");
        assert_eq!(format_line(Level::Error, "a\nb", true), "<3>a\n<3>b\n");
        assert_eq!(
            format_line(Level::Warn, "odd", false),
            "fieldlink WARN  odd\n"
        );
    }

    #[test]
    fn other_crates_speak_at_debug_at_most() {
        let ours = metadata(Level::Warn, "fieldlink::upload");
        assert_eq!(effective_level(&ours), Level::Warn);
        for target in ["ureq::unversioned::transport", "rustls::conn"] {
            assert_eq!(
                effective_level(&metadata(Level::Error, target)),
                Level::Debug
            );
            assert_eq!(
                effective_level(&metadata(Level::Trace, target)),
                Level::Trace
            );
        }
    }

    #[test]
    fn journal_stream_must_name_stderrs_own_device_and_inode() {
        assert!(names_this_file("2049:131077", 2049, 131077));
        assert!(!names_this_file("2049:131078", 2049, 131077));
        assert!(!names_this_file("1", 1, 1));
        assert!(!names_this_file("", 0, 0));
    }
}
