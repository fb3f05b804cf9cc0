//! A queue file written by the release before compressed segments: it opens without losing a
//! reading. Its rows drain first, then what is sampled after the upgrade (stored as segments),
//! every line exactly once, in one gzip member per request; held readings and dead letters
//! stay where they were.

use fieldlink::clock::{build_time_ns, Clock, ManualClock, TimeKeeper};
use fieldlink::config::UploadConfig;
use fieldlink::queue::{Access, Class, NewReading, Queue};
use fieldlink::upload::endpoint::Endpoint;
use fieldlink::upload::transport::{Reply, Transport, TransportError};
use fieldlink::upload::{InfluxHttp, Step, Uploader};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// The tables as the previous release created them (its `schema.rs`, verbatim).
const PREVIOUS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE            -- escaped measurement and sorted tags
);
CREATE TABLE IF NOT EXISTS readings (
    id      INTEGER PRIMARY KEY,
    series  INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    fields  TEXT NOT NULL,              -- line-protocol field set
    event   INTEGER NOT NULL DEFAULT 0  -- 1: door/motion edge, kept longest when full
);
CREATE TABLE IF NOT EXISTS held (
    id      INTEGER PRIMARY KEY,
    series  INTEGER NOT NULL,
    boot    TEXT NOT NULL,              -- /proc/sys/kernel/random/boot_id
    mono_ns INTEGER NOT NULL,           -- CLOCK_BOOTTIME at sampling
    wall_ns INTEGER NOT NULL,           -- what the untrusted wall clock said
    fields  TEXT NOT NULL,
    event   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS held_by_boot ON held(boot, mono_ns);
CREATE TABLE IF NOT EXISTS dead_letters (
    id      INTEGER PRIMARY KEY,
    line    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    message TEXT NOT NULL,
    at_ns   INTEGER NOT NULL,
    at_trusted INTEGER NOT NULL DEFAULT 1  -- 0: at_ns is only a lower bound (clock not trusted)
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

const OLD_READINGS: i64 = 3_000;

/// Write a queue file as the previous release left it: readings (routine and events), a held
/// reading, a dead letter, and the counters that go with them.
fn write_previous_release_queue(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA page_size = 1024; PRAGMA journal_mode = WAL;")
        .unwrap();
    conn.execute_batch(PREVIOUS_SCHEMA).unwrap();
    conn.execute_batch(
        "INSERT INTO series(id, key) VALUES (1, 'climate,sensor_id=T1'), (2, 'door,sensor_id=D1');",
    )
    .unwrap();
    let mut lines = Vec::new();
    for i in 0..OLD_READINGS {
        let (series, key, fields, event) = if i % 100 == 7 {
            (2, "door,sensor_id=D1", format!("open={}", i % 2 == 0), 1)
        } else {
            (
                1,
                "climate,sensor_id=T1",
                format!("temperature={}.5", i % 30),
                0,
            )
        };
        let time_ns = 1_700_000_000_000_000_000 + i * 1_000_000_000;
        conn.execute(
            "INSERT INTO readings(series, time_ns, fields, event) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![series, time_ns, fields, event],
        )
        .unwrap();
        lines.push(format!("{key} {fields} {time_ns}"));
    }
    conn.execute_batch(&format!(
        "INSERT INTO held(series, boot, mono_ns, wall_ns, fields, event)
             VALUES (1, 'boot-0', 5, 60000000000, 'temperature=1.5', 0);
         INSERT INTO dead_letters(line, reason, message, at_ns)
             VALUES ('climate,sensor_id=T1 temperature=\"x\" 1', 'rejected', 'type conflict', 7);
         INSERT INTO counters(name, value) VALUES ('sampled', {}), ('queued', {OLD_READINGS}),
             ('held', 1), ('dropped.rejected', 1);",
        OLD_READINGS + 2
    ))
    .unwrap();
    lines
}

/// Records what arrives; every body must be exactly one gzip member.
struct Recording(Arc<Mutex<Vec<String>>>);

impl Transport for Recording {
    fn post(
        &mut self,
        _url: &str,
        _headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError> {
        let mut decoder = flate2::bufread::GzDecoder::new(body);
        let mut text = String::new();
        decoder
            .read_to_string(&mut text)
            .map_err(TransportError::Io)?;
        assert!(decoder.into_inner().is_empty(), "one gzip member per body");
        let mut lines = self.0.lock().unwrap();
        lines.extend(text.lines().map(str::to_string));
        Ok(Reply {
            status: 204,
            retry_after: None,
            body: String::new(),
        })
    }
}

#[test]
fn a_queue_of_the_previous_release_is_migrated_without_losing_a_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let old_lines = write_previous_release_queue(&path);

    let mut queue = Queue::open(&path).unwrap();
    assert_eq!(
        queue.waiting_lines().unwrap(),
        old_lines,
        "every old reading is still there"
    );
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.depth, stats.held, stats.dead_letters, stats.oldest_ns),
        (OLD_READINGS, 1, 1, Some(1_700_000_000_000_000_000))
    );

    // Sampling goes on after the upgrade: these readings are stored as segments.
    let series = queue.series_id("climate,sensor_id=T1").unwrap();
    let mut new_lines = Vec::new();
    for commit in 0..10i64 {
        let readings: Vec<NewReading> = (0..500)
            .map(|i| NewReading {
                series,
                time_ns: 1_800_000_000_000_000_000 + (commit * 500 + i) * 1_000_000_000,
                fields: format!("temperature={}.25", i % 17),
                class: Class::Routine,
            })
            .collect();
        new_lines.extend(
            readings
                .iter()
                .map(|r| format!("climate,sensor_id=T1 {} {}", r.fields, r.time_ns)),
        );
        queue.push(&readings, &[], &[]).unwrap();
    }
    assert_eq!(queue.stats().unwrap().depth, OLD_READINGS + 5_000);

    let clock = Arc::new(ManualClock::new(
        build_time_ns() + 86_400_000_000_000,
        true,
        "b",
    ));
    let time = Arc::new(TimeKeeper::new(clock as Arc<dyn Clock>, false, 0));
    let cfg: UploadConfig = toml::from_str(
        "url = \"http://127.0.0.1:9\"\napi = \"v1\"\ndatabase = \"d\"\nmax_points_per_second = 0",
    )
    .unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let output = InfluxHttp::new(Endpoint::new(&cfg).unwrap(), Recording(received.clone()));
    let mut uploader = Uploader::new(queue, output, &cfg, "migration", time);
    while let Step::Sent(_) = uploader.step().unwrap() {}
    let stats = uploader.queue().stats().unwrap();
    assert_eq!((stats.depth, stats.held, stats.dead_letters), (0, 1, 1));
    let counters = uploader.queue().counters().unwrap();
    assert_eq!(counters["uploaded"], OLD_READINGS + 5_000);
    drop(uploader);

    let received = received.lock().unwrap().clone();
    let expected: Vec<String> = old_lines.into_iter().chain(new_lines).collect();
    assert_eq!(
        received, expected,
        "old rows first, then the new segments, each once"
    );
}

/// `sync` or `dead-letter` may open a previous release's file read-write before the upgraded
/// agent does (after a package upgrade, say): that open migrates it as the agent would, and
/// the agent then opens it as usual.
#[test]
fn a_command_that_opens_the_previous_release_queue_first_migrates_it_as_the_agent_would() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let old_lines = write_previous_release_queue(&path);

    let mut by_command = Queue::open_existing(&path, Access::ReadWrite).unwrap();
    by_command.add_counters(&[("dropped.rejected", 1)]).unwrap();
    let counted = by_command.counters().unwrap();
    assert_eq!(
        (counted["queued"], counted["dropped.rejected"]),
        (OLD_READINGS, 2),
        "the command reads and writes the old totals: {counted:?}"
    );
    drop(by_command);

    let queue = Queue::open(&path).unwrap();
    assert_eq!(queue.waiting_lines().unwrap(), old_lines);
    let c = queue.counters().unwrap();
    assert_eq!(
        (c["queued"], c["dropped.rejected"]),
        (OLD_READINGS, 2),
        "{c:?}"
    );
}
