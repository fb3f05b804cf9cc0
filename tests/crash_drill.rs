//! Crash drill: the real `fieldlink` binary samples three simulated sensors and uploads to a
//! recording loopback server, and is killed with SIGKILL at random moments, over and over. The
//! queue promises at-least-once delivery across kill -9, so at the end:
//!
//! - every reading that was ever seen committed in the queue reached the server;
//! - a reading that arrived twice is an identical re-send (same series, timestamp and fields):
//!   no two received lines share series and timestamp with different fields;
//! - the queue file passes `PRAGMA integrity_check`, and its `queued` gauge equals the rows in
//!   `readings` after every kill;
//! - with no drop policy in play (a 64 MiB budget is never reached), the distinct lines the
//!   server received are exactly the `sampled` counter, and `uploaded + queued == sampled`:
//!   the counters move in the same transactions as the rows, so a kill cannot skew them.
//!
//! `FIELDLINK_CRASH_DRILL_KILLS` sets the number of kills (default 50);
//! `FIELDLINK_CRASH_DRILL_SEED` replays a run (the seed is printed).

mod emulator;
#[path = "common/fault_server.rs"]
#[allow(dead_code)]
mod fault_server;

use fault_server::{FaultServer, Script};
use fieldlink::rng::Rng;
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long the recording server sits on each request before answering 204.
const SERVER_DELAY: Duration = Duration::from_millis(100);

fn board(dir: &Path, url: &str) -> PathBuf {
    let queue = dir.join("queue.db");
    let text = format!(
        r#"[device]
id = "crash-drill"

[[sensor]]
id = "CLI01"
kind = "simulated_climate"
interval = "20ms"

[[sensor]]
id = "MOT01"
kind = "simulated_motion"
interval = "20ms"

[[sensor]]
id = "DOR01"
kind = "simulated_door"
interval = "20ms"

[queue]
path = "{queue}"
commit_interval = "100ms"

[upload]
url = "{url}"
api = "v1"
database = "d"
batch_lines = 50
start_delay_max = "0s"
max_points_per_second = 0
timeout = "2s"
"#,
        queue = queue.display()
    );
    let path = dir.join("board.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Open the queue the way a forensic reader would: read-only, so the test neither checkpoints
/// nor removes the WAL that the next run of the binary has to recover.
fn open_read_only(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {} read-only: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// Every reading waiting in the queue, as the line the uploader would send for it.
fn queued_lines(conn: &Connection) -> Vec<String> {
    fieldlink::queue::stored_lines(conn).expect("every stored segment decodes")
}

fn counters(conn: &Connection) -> BTreeMap<String, i64> {
    let mut stmt = conn.prepare("SELECT name, value FROM counters").unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// Readings stored: rows plus the lines of compressed pieces.
fn row_count(conn: &Connection) -> i64 {
    fieldlink::queue::stored_count(conn).unwrap()
}

/// (series key, timestamp, field set) of a line: the key ends at the first unescaped space,
/// the timestamp is after the last space.
fn split_line(line: &str) -> (&str, &str, &str) {
    let bytes = line.as_bytes();
    let mut key_end = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b' ' => {
                key_end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.unwrap_or_else(|| panic!("no field set in line {line:?}"));
    let (rest, time) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no timestamp in line {line:?}"));
    (&line[..key_end], time, &rest[key_end + 1..])
}

fn tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text[text.len().saturating_sub(bytes)..].to_string()
}

#[test]
fn sigkill_at_random_moments_loses_no_committed_reading() {
    let kills: usize = std::env::var("FIELDLINK_CRASH_DRILL_KILLS")
        .ok()
        .map(|v| v.parse().expect("FIELDLINK_CRASH_DRILL_KILLS: a number"))
        .unwrap_or(50);
    let seed: u64 = std::env::var("FIELDLINK_CRASH_DRILL_SEED")
        .ok()
        .map(|v| v.parse().expect("FIELDLINK_CRASH_DRILL_SEED: a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!(
        "crash drill: {kills} kills, seed {seed} (replay with FIELDLINK_CRASH_DRILL_SEED={seed})"
    );
    let mut rng = Rng::new(seed);

    // The server takes its time over each request, so a good share of the kills land while a
    // batch is on the wire or just acknowledged: the window where a re-send is born.
    let server = FaultServer::start(Script::ok().delay(SERVER_DELAY));
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), &server.url());
    let queue = dir.path().join("queue.db");
    let log = dir.path().join("fieldlink.log");
    let started = Instant::now();

    // Every line seen committed in the queue at some point.
    let mut committed: BTreeSet<String> = BTreeSet::new();
    let mut killed_while_uploading = 0usize;
    for round in 0..kills {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = emulator::fieldlink_command()
            .args(["run", "--board"])
            .arg(&board)
            .env("FIELDLINK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn fieldlink run");
        let pause = Duration::from_millis(100 + (rng.unit() * 500.0) as u64);
        std::thread::sleep(pause);
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "round {round}: fieldlink run exited by itself ({status}) before the kill; log:\n{}",
                tail(&log, 4000)
            );
        }
        let in_flight = server.requests().iter().any(|r| !r.done);
        child.kill().expect("SIGKILL fieldlink"); // Child::kill is SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: {status}");
        if in_flight {
            killed_while_uploading += 1;
        }

        if !queue.exists() {
            continue;
        }
        let conn = open_read_only(&queue);
        let lines = queued_lines(&conn);
        let rows = row_count(&conn);
        let c = counters(&conn);
        let gauge = c.get("queued").copied().unwrap_or(0);
        assert_eq!(
            gauge, rows,
            "round {round} (after {pause:?}): the `queued` gauge must equal the readings stored"
        );
        committed.extend(lines);
    }
    let drill_time = started.elapsed();

    // Reconnect for good: drain what the last run left.
    let out = emulator::fieldlink_command()
        .args(["sync", "--timeout", "30s", "--board"])
        .arg(&board)
        .env("FIELDLINK_LOG", "warn")
        .output()
        .expect("run fieldlink sync");
    assert!(
        out.status.success(),
        "fieldlink sync failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let conn = open_read_only(&queue);
    let check: Vec<String> = {
        let mut stmt = conn.prepare("PRAGMA integrity_check").unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(check, ["ok"], "PRAGMA integrity_check of the queue");
    let c = counters(&conn);
    let rows = row_count(&conn);
    let get = |name: &str| c.get(name).copied().unwrap_or(0);
    assert_eq!(rows, 0, "sync leaves the queue empty");
    assert_eq!(get("queued"), rows, "`queued` gauge vs readings stored");

    let received = server.accepted();
    let distinct: BTreeSet<&str> = received.iter().map(String::as_str).collect();
    eprintln!(
        "crash drill: {kills} kills in {drill_time:.1?} ({killed_while_uploading} during an upload request); \
         {} line(s) seen committed, {} received ({} distinct, {} re-sent); counters {c:?}",
        committed.len(),
        received.len(),
        distinct.len(),
        received.len() - distinct.len(),
    );
    assert!(
        committed.len() > 100,
        "the drill must have committed a real amount of readings (only {}); log:\n{}",
        committed.len(),
        tail(&log, 4000)
    );

    let missing: Vec<&String> = committed
        .iter()
        .filter(|l| !distinct.contains(l.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} committed reading(s) never reached the server, e.g. {:?}",
        missing.len(),
        committed.len(),
        &missing[..missing.len().min(5)]
    );

    // A duplicate must be a re-send of the same reading, never a different reading with the
    // same series and time (which InfluxDB would silently merge into one).
    let mut by_point: HashMap<(&str, &str), &str> = HashMap::new();
    let mut conflicts = Vec::new();
    for line in &distinct {
        let (key, time, fields) = split_line(line);
        if let Some(other) = by_point.insert((key, time), fields) {
            conflicts.push(format!("{key} @ {time}: {other:?} vs {fields:?}"));
        }
    }
    assert!(
        conflicts.is_empty(),
        "{} received point(s) share series and timestamp with different fields, e.g. {:?}",
        conflicts.len(),
        &conflicts[..conflicts.len().min(5)]
    );

    // Counters move in the same transactions as the rows: a kill cannot make them disagree
    // with what the server saw. Nothing is thinned, expired or rejected here.
    for reason in [
        "dropped.expired",
        "dropped.thinned",
        "dropped.dropped_full",
        "dropped.rejected",
        "dropped.unknown_time",
    ] {
        assert_eq!(
            get(reason),
            0,
            "{reason}: nothing should be dropped in this drill"
        );
    }
    assert_eq!(
        get("uploaded") + get("queued"),
        get("sampled"),
        "uploaded + queued == sampled"
    );
    assert_eq!(
        distinct.len() as i64,
        get("sampled"),
        "every sampled reading reached the server exactly once as a distinct line"
    );
    assert!(
        received.len() as i64 >= get("uploaded"),
        "the server accepted at least what the queue counted as uploaded"
    );
}
