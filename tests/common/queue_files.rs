//! Reading a queue file the agent wrote, straight from SQLite (segments decoded by the
//! library): the waiting readings as exact
//! lines, the counters, the dead letters. Tests compare these with what the server stored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Every waiting reading as its exact line, `series.key fields time_ns`, in queue order
/// (rows, then the compressed segments).
pub fn read_queue_lines(path: &Path) -> Vec<String> {
    fieldlink::queue::stored_lines(&open_queue(path)).expect("read the queued lines")
}

/// Like [`read_queue_lines`], but `None` while the agent has not created the file or its
/// tables yet.
pub fn try_read_queue_lines(path: &Path) -> Option<Vec<String>> {
    if !path.exists() {
        return None;
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('readings', 'series')",
            [],
            |r| r.get(0),
        )
        .ok()?;
    drop(conn);
    (exists == 2).then(|| read_queue_lines(path))
}

/// The queue's counters and gauges.
pub fn read_queue_counters(path: &Path) -> BTreeMap<String, i64> {
    let conn = open_queue(path);
    let mut stmt = conn
        .prepare("SELECT name, value FROM counters")
        .expect("prepare the counters query");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query counters");
    rows.collect::<Result<_, _>>().expect("read counters")
}

/// Dead-letter lines with their reason.
pub fn read_dead_letters(path: &Path) -> Vec<(String, String)> {
    let conn = open_queue(path);
    let mut stmt = conn
        .prepare("SELECT line, reason FROM dead_letters ORDER BY id")
        .expect("prepare the dead-letter query");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query dead letters");
    rows.collect::<Result<_, _>>().expect("read dead letters")
}

fn open_queue(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open queue {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(5))
        .expect("set busy timeout");
    conn
}
