//! The uploader's decisions against canned replies; the real HTTP path is tested in tests/.

use super::endpoint::Endpoint;
use super::transport::{Reply, Transport, TransportError};
use super::*;
use crate::clock::{build_time_ns, Clock, ManualClock};
use crate::queue::{Class, NewReading};
use std::io::Read;
use std::sync::{Arc, Mutex};

type Handler = Box<dyn FnMut(&[String]) -> Result<Reply, TransportError> + Send>;

/// A server in a closure: it sees the decompressed lines of each request.
struct Scripted {
    handler: Handler,
    stored: Arc<Mutex<Vec<String>>>,
}

impl Transport for Scripted {
    fn post(
        &mut self,
        _url: &str,
        _headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .unwrap();
        // A body of stored segments ends in a newline, as line protocol may.
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let reply = (self.handler)(&lines)?;
        if reply.status / 100 == 2 {
            self.stored.lock().unwrap().extend(lines);
        }
        Ok(reply)
    }
}

fn reply(status: u16, body: &str) -> Result<Reply, TransportError> {
    Ok(Reply {
        status,
        retry_after: None,
        body: body.into(),
    })
}

fn refused(message: &str) -> Result<Reply, TransportError> {
    Err(TransportError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        message,
    )))
}

struct Rig {
    _dir: tempfile::TempDir,
    uploader: Uploader<InfluxHttp<Scripted>>,
    stored: Arc<Mutex<Vec<String>>>,
    clock: Arc<ManualClock>,
}

/// A day after this binary was built: a wall time the time keeper trusts.
const TRUSTED_NOW: i64 = 86_400_000_000_000;

fn rig(lines: usize, poison: &[usize], handler: Handler) -> Rig {
    let fields = |i: usize| {
        if poison.contains(&i) {
            format!("v=\"bad{i}\"")
        } else {
            format!("v={i}")
        }
    };
    rig_with("m", lines, fields, handler)
}

/// A queue of `lines` readings of one series, closed and opened again as after a restart, and
/// an uploader to a scripted server.
fn rig_with(series: &str, lines: usize, fields: impl Fn(usize) -> String, handler: Handler) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut queue = Queue::open(&path).unwrap();
    let s = queue.series_id(series).unwrap();
    let rows: Vec<NewReading> = (0..lines)
        .map(|i| NewReading {
            series: s,
            time_ns: i as i64,
            fields: fields(i),
            class: Class::Routine,
        })
        .collect();
    queue.push(&rows, &[], &[]).unwrap();
    drop(queue);
    let queue = Queue::open(&path).unwrap();
    let cfg: UploadConfig = toml::from_str(
        "url = \"http://127.0.0.1:1\"\napi = \"v1\"\ndatabase = \"d\"\nmax_points_per_second = 0",
    )
    .unwrap();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let transport = Scripted {
        handler,
        stored: stored.clone(),
    };
    let clock = Arc::new(ManualClock::new(build_time_ns() + TRUSTED_NOW, true, "b1"));
    let time = Arc::new(TimeKeeper::new(clock.clone() as Arc<dyn Clock>, false, 0));
    let output = InfluxHttp::new(Endpoint::new(&cfg).unwrap(), transport);
    let uploader = Uploader::new(queue, output, &cfg, "test", time);
    Rig {
        _dir: dir,
        uploader,
        stored,
        clock,
    }
}

fn drain(rig: &mut Rig) {
    while let Step::Sent(_) = rig.uploader.step().unwrap() {}
}

fn counters(rig: &Rig) -> std::collections::BTreeMap<String, i64> {
    rig.uploader.queue.counters().unwrap()
}

/// Like InfluxDB 1.x: good lines are written, bad ones dropped and counted.
fn v1_partial() -> Handler {
    Box::new(|lines| {
        let bad = lines.iter().filter(|l| l.contains("bad")).count();
        if bad == 0 {
            reply(204, "")
        } else {
            reply(
                400,
                &format!(
                    r#"{{"error":"partial write: field type conflict: input field \"v\" is type string dropped={bad}"}}"#
                ),
            )
        }
    })
}

#[test]
fn an_accepted_batch_leaves_the_queue() {
    let mut rig = rig(10, &[], Box::new(|_| reply(204, "")));
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(10));
    assert_eq!(rig.uploader.step().unwrap(), Step::Idle);
    assert_eq!(rig.stored.lock().unwrap().len(), 10);
    assert_eq!(counters(&rig)["uploaded"], 10);
}

#[test]
fn a_poison_line_costs_at_most_log2_plus_one_extra_requests_on_a_partial_writer() {
    let mut rig = rig(64, &[37], v1_partial());
    drain(&mut rig);
    let c = counters(&rig);
    assert_eq!(
        (c["uploaded"], c["dropped.rejected"], c["queued"]),
        (63, 1, 0)
    );
    assert!(
        rig.uploader.requests() <= 1 + 6 + 1,
        "{} requests",
        rig.uploader.requests()
    );
    let dead: String = rig
        .uploader
        .queue
        .conn()
        .query_row("SELECT line FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dead, "m v=\"bad37\" 37");
}

#[test]
fn several_poison_lines_are_all_isolated_and_every_good_line_is_acked() {
    let mut rig = rig(50, &[0, 1, 20, 49], v1_partial());
    drain(&mut rig);
    let c = counters(&rig);
    assert_eq!(
        (c["uploaded"], c["dropped.rejected"], c["queued"]),
        (46, 4, 0)
    );
}

#[test]
fn a_server_that_rejects_whole_requests_still_gets_every_good_line() {
    let mut rig = rig(
        40,
        &[3, 30],
        Box::new(|lines| {
            if lines.iter().any(|l| l.contains("bad")) {
                reply(
                    400,
                    r#"{"code":"invalid","message":"write buffer error: line protocol parse failed"}"#,
                )
            } else {
                reply(204, "")
            }
        }),
    );
    drain(&mut rig);
    let stored = rig.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 38);
    assert!(stored.iter().all(|l| !l.contains("bad")));
    assert_eq!(counters(&rig)["dropped.rejected"], 2);
}

#[test]
fn v3_line_numbers_dead_letter_exactly_those_lines_in_one_request() {
    let mut rig = rig(
        10,
        &[4],
        Box::new(|lines| {
            let data: Vec<String> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains("bad"))
                .map(|(i, _)| format!(r#"{{"error_message":"invalid column type","line_number":{},"original_line":"m"}}"#, i + 1))
                .collect();
            if data.is_empty() {
                return reply(204, "");
            }
            reply(
                400,
                &format!(
                    r#"{{"error":"partial write of line protocol occurred","data":[{}]}}"#,
                    data.join(",")
                ),
            )
        }),
    );
    drain(&mut rig);
    assert_eq!(rig.uploader.requests(), 1);
    let c = counters(&rig);
    assert_eq!((c["uploaded"], c["dropped.rejected"]), (9, 1));
    let message: String = rig
        .uploader
        .queue
        .conn()
        .query_row("SELECT message FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(message, "invalid column type");
}

#[test]
fn a_413_splits_the_batch_and_the_smaller_limit_is_kept() {
    let mut rig = rig(
        400,
        &[],
        Box::new(|lines| {
            if lines.len() > 100 {
                reply(413, "max request size (1000 bytes) exceeded")
            } else {
                reply(204, "")
            }
        }),
    );
    drain(&mut rig);
    assert_eq!(rig.stored.lock().unwrap().len(), 400);
    assert!(rig.uploader.policy.batch_bytes() < 1 << 20);
    assert_eq!(counters(&rig)["queued"], 0);
}

#[test]
fn bad_credentials_keep_everything_and_back_off_for_minutes() {
    let mut rig = rig(
        5,
        &[],
        Box::new(|_| reply(401, r#"{"error":"authorization failed"}"#)),
    );
    let Step::Paused(pause) = rig.uploader.step().unwrap() else {
        panic!("expected a pause")
    };
    assert!(pause.delay >= Duration::from_secs(30), "{pause:?}");
    assert!(pause.reason.contains("token"), "{pause:?}");
    assert_eq!(counters(&rig)["queued"], 5);
    let status = rig.uploader.queue.meta("last_upload").unwrap().unwrap();
    assert!(status.contains("authorization failed"), "{status}");
}

#[test]
fn a_missing_database_keeps_everything() {
    let mut rig = rig(
        5,
        &[],
        Box::new(|_| reply(404, r#"{"error":"database not found: \"d\""}"#)),
    );
    assert!(
        matches!(rig.uploader.step().unwrap(), Step::Paused(p) if p.reason.contains("does not exist"))
    );
    assert_eq!(counters(&rig)["queued"], 5);
}

#[test]
fn retry_after_is_honoured_and_capped() {
    let mut rig = rig(
        5,
        &[],
        Box::new(|_| {
            Ok(Reply {
                status: 429,
                retry_after: Some("42".into()),
                body: String::new(),
            })
        }),
    );
    assert!(
        matches!(rig.uploader.step().unwrap(), Step::Paused(p) if p.delay == Duration::from_secs(42))
    );
    let mut rig = rig_with_retry_after("86400");
    assert!(matches!(rig.uploader.step().unwrap(), Step::Paused(p) if p.delay == MAX_RETRY_AFTER));
}

fn rig_with_retry_after(value: &'static str) -> Rig {
    rig(
        1,
        &[],
        Box::new(move |_| {
            Ok(Reply {
                status: 503,
                retry_after: Some(value.into()),
                body: String::new(),
            })
        }),
    )
}

#[test]
fn connection_errors_back_off_exponentially_and_lose_nothing() {
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let mut rig = rig(
        3,
        &[],
        Box::new(move |_| {
            *seen.lock().unwrap() += 1;
            if *seen.lock().unwrap() <= 4 {
                refused("connection refused")
            } else {
                reply(204, "")
            }
        }),
    );
    let mut ceilings = Vec::new();
    for _ in 0..4 {
        match rig.uploader.step().unwrap() {
            Step::Paused(p) => ceilings.push(p.delay),
            other => panic!("expected a pause, got {other:?}"),
        }
    }
    assert!(
        ceilings.iter().all(|d| *d <= Duration::from_secs(8)),
        "{ceilings:?}"
    );
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(3));
    assert_eq!(counters(&rig)["uploaded"], 3);
}

#[test]
fn after_an_outage_fresh_readings_go_out_before_the_backlog() {
    let fail = Arc::new(Mutex::new(true));
    let failing = fail.clone();
    let mut rig = rig(
        20,
        &[],
        Box::new(move |_| {
            if *failing.lock().unwrap() {
                refused("down")
            } else {
                reply(204, "")
            }
        }),
    );
    rig.uploader.batch_lines = 5;
    assert!(matches!(rig.uploader.step().unwrap(), Step::Paused(_)));
    *fail.lock().unwrap() = false;
    assert_eq!(
        rig.uploader.step().unwrap(),
        Step::Sent(5),
        "first batch after the outage: oldest backlog"
    );
    let s = rig.uploader.queue.series_id("m").unwrap();
    rig.uploader
        .queue
        .push(
            &[NewReading {
                series: s,
                time_ns: 999,
                fields: "v=999".into(),
                class: Class::Routine,
            }],
            &[],
            &[],
        )
        .unwrap();
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(1));
    assert_eq!(rig.stored.lock().unwrap().last().unwrap(), "m v=999 999");
}

#[test]
fn a_backlog_drain_sends_every_line_once_and_defers_the_deletes() {
    let mut rig = rig(100, &[], Box::new(|_| reply(204, "")));
    rig.uploader.batch_lines = 10;
    for _ in 0..9 {
        assert_eq!(rig.uploader.step().unwrap(), Step::Sent(10));
    }
    assert!(
        !rig.uploader.unacked.is_empty(),
        "a full batch's delete waits to be committed while the next one is packed"
    );
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(10));
    assert_eq!(rig.uploader.step().unwrap(), Step::Idle);
    let stored = rig.stored.lock().unwrap().clone();
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((stored.len(), unique.len()), (100, 100));
    assert_eq!(rig.uploader.requests(), 10);
    let c = counters(&rig);
    assert_eq!((c["uploaded"], c["queued"]), (100, 0));
}

#[test]
fn v3_line_numbers_are_not_trusted_when_retention_removed_rows_of_the_batch_meanwhile() {
    let path: Arc<Mutex<Option<std::path::PathBuf>>> = Arc::new(Mutex::new(None));
    let seen = path.clone();
    let mut rig = rig(
        10,
        &[6],
        Box::new(move |lines| {
            // While the server works, retention thins row 2 away (another connection).
            if let Some(path) = seen.lock().unwrap().take() {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute("DELETE FROM readings WHERE id = 2", [])
                    .unwrap();
            }
            match lines.iter().position(|l| l.contains("bad")) {
                Some(i) if lines.len() > 1 => reply(
                    400,
                    &format!(
                        r#"{{"error":"partial write of line protocol occurred","data":[{{"error_message":"bad","line_number":{},"original_line":"m"}}]}}"#,
                        i + 1
                    ),
                ),
                Some(_) => reply(400, r#"{"error":"parsing failed"}"#),
                None => reply(204, ""),
            }
        }),
    );
    *path.lock().unwrap() = Some(rig._dir.path().join("q.db"));
    // A batch smaller than the stored segment: it is taken apart into rows 1..=10 and sent
    // as rows, which retention can thin one by one.
    rig.uploader.batch_lines = 9;
    drain(&mut rig);
    let deleted: i64 = rig.uploader.queue.counters().unwrap()["uploaded"];
    assert_eq!(
        deleted, 8,
        "row 2 was removed meanwhile, the poison line dead-lettered"
    );
    let dead: Vec<String> = rig
        .uploader
        .queue
        .dead_letters(10)
        .unwrap()
        .into_iter()
        .map(|d| d.line)
        .collect();
    assert_eq!(
        dead,
        vec!["m v=\"bad6\" 6".to_string()],
        "the poison line, not its neighbour"
    );
}

#[test]
fn a_long_drain_keeps_the_wal_from_growing() {
    let fields =
        |i| format!("temperature=21.{i},humidity=48.{i},battery_level=97i,signal_strength=-61i");
    let mut rig = rig_with(
        "iot_metrics,sensor_id=T1",
        200_000,
        fields,
        Box::new(|_| reply(204, "")),
    );
    drain(&mut rig);
    assert_eq!(counters(&rig)["uploaded"], 200_000);
    // The shared-memory index grows by 32 KiB for every 4,096 WAL pages and never shrinks
    // while the queue is open: one segment means the WAL kept starting over.
    let shm = rig._dir.path().join("q.db-shm");
    let shm_len = std::fs::metadata(&shm).unwrap().len();
    assert_eq!(shm_len, 32 * 1024, "WAL index of {shm_len} bytes");
}

mod timing;
