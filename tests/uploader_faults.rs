//! The uploader against every kind of server answer, over real HTTP: a fault-injecting
//! loopback server for the answers InfluxDB gives only under duress, and the real InfluxDB 1.x
//! for a field type conflict. Each test checks what reached the server, what was
//! dead-lettered, and that nothing was lost.

mod common;

use common::fault_server::{FaultServer, Script};
use fieldlink::clock::{Clock, SystemClock, TimeKeeper};
use fieldlink::config::UploadConfig;
use fieldlink::queue::{Class, NewReading, Queue};
use fieldlink::upload::endpoint::Endpoint;
use fieldlink::upload::transport::{HttpTransport, TlsOptions};
use fieldlink::upload::{InfluxHttp, Step, Uploader};
use std::sync::Arc;
use std::time::Duration;

struct Rig {
    _dir: tempfile::TempDir,
    uploader: Uploader<InfluxHttp<HttpTransport>>,
    /// Every line queued, in order.
    lines: Vec<String>,
}

/// `count` readings, those at `poison` positions of measurement `conflict` (the rest `ok`).
fn rig(url: &str, api: &str, count: usize, poison: &[usize], database: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut queue = Queue::open(&dir.path().join("queue.db")).unwrap();
    let ok = queue.series_id("ok,sensor_id=T1").unwrap();
    let bad = queue.series_id("conflict,sensor_id=T2").unwrap();
    let base = 1_700_000_000_000_000_000i64;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for i in 0..count {
        let (series, key) = if poison.contains(&i) {
            (bad, "conflict,sensor_id=T2")
        } else {
            (ok, "ok,sensor_id=T1")
        };
        let fields = format!("v={}.5", i);
        let time_ns = base + i as i64 * 1_000_000;
        lines.push(format!("{key} {fields} {time_ns}"));
        rows.push(NewReading {
            series,
            time_ns,
            fields,
            class: Class::Routine,
        });
    }
    queue.push(&rows, &[], &[]).unwrap();
    let text = format!(
        "url = \"{url}\"\napi = \"{api}\"\ndatabase = \"{database}\"\norg = \"o\"\nbucket = \"b\"\nbatch_lines = 64\nmax_points_per_second = 0\ntimeout = \"2s\"\n"
    );
    let cfg: UploadConfig = toml::from_str(&text).unwrap();
    let transport = HttpTransport::new(cfg.timeout, &TlsOptions::default()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let uploader = Uploader::new(
        queue,
        InfluxHttp::new(Endpoint::new(&cfg).unwrap(), transport),
        &cfg,
        "test-device",
        Arc::new(TimeKeeper::new(clock, false, 0)),
    );
    Rig {
        _dir: dir,
        uploader,
        lines,
    }
}

impl Rig {
    /// Step until the queue is empty, skipping the backoff waits (time is not what is tested).
    fn drain(&mut self, max_steps: usize) -> Vec<Step> {
        let mut steps = Vec::new();
        for _ in 0..max_steps {
            let step = self.uploader.step().unwrap();
            let idle = step == Step::Idle;
            steps.push(step);
            if idle {
                break;
            }
        }
        steps
    }

    fn counter(&mut self, name: &str) -> i64 {
        self.uploader
            .queue()
            .counters()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn dead_lines(&mut self) -> Vec<String> {
        self.uploader
            .queue()
            .dead_letters(10_000)
            .unwrap()
            .into_iter()
            .map(|d| d.line)
            .collect()
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[test]
fn a_2xx_acks_the_batch_and_every_line_arrives_gzipped_with_explicit_precision() {
    let server = FaultServer::start(Script::ok());
    let mut rig = rig(&server.url(), "v2", 100, &[], "d");
    rig.drain(10);
    assert_eq!(sorted(server.accepted()), sorted(rig.lines.clone()));
    let request = &server.requests()[0];
    assert_eq!(request.header("content-encoding"), Some("gzip"));
    assert!(
        request
            .target
            .starts_with("/api/v2/write?org=o&bucket=b&precision=ns"),
        "{}",
        request.target
    );
    assert_eq!(rig.counter("queued"), 0);
}

#[test]
fn a_413_splits_the_batch_until_it_fits_and_nothing_is_lost() {
    let server = FaultServer::start(Script::too_large_over(1500));
    let mut rig = rig(&server.url(), "v1", 64, &[], "d");
    rig.drain(200);
    assert_eq!(sorted(server.accepted()), sorted(rig.lines.clone()));
    assert!(server.requests().iter().any(|r| r.answered == Some(413)));
    assert_eq!(
        (rig.counter("uploaded"), rig.counter("dropped.rejected")),
        (64, 0)
    );
}

#[test]
fn a_v1_partial_write_dead_letters_exactly_the_rejected_lines_in_log2_plus_one_extra_requests() {
    let server = FaultServer::start(Script::partial_v1(|line| line.starts_with("conflict")));
    let mut rig = rig(&server.url(), "v1", 64, &[41], "d");
    rig.drain(10);
    assert_eq!(rig.dead_lines(), vec![rig.lines[41].clone()]);
    let expected: Vec<String> = rig
        .lines
        .iter()
        .filter(|l| l.starts_with("ok"))
        .cloned()
        .collect();
    assert_eq!(sorted(server.accepted()), sorted(expected));
    let extra = server.requests().len() - 1;
    assert!(
        extra <= 6 + 1,
        "{extra} extra requests for one poison line in 64"
    );
    assert_eq!(rig.counter("queued"), 0);
}

#[test]
fn a_v3_partial_write_names_the_lines_and_costs_no_extra_request() {
    let server = FaultServer::start(Script::partial_v3(|line| line.starts_with("conflict")));
    let mut rig = rig(&server.url(), "v3", 64, &[3, 60], "d");
    rig.drain(10);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        sorted(rig.dead_lines()),
        sorted(vec![rig.lines[3].clone(), rig.lines[60].clone()])
    );
    assert!(server.requests()[0]
        .target
        .contains("/api/v3/write_lp?db=d&precision=nanosecond&accept_partial=true"));
    assert_eq!(
        (rig.counter("uploaded"), rig.counter("dropped.rejected")),
        (62, 2)
    );
}

#[test]
fn a_server_that_rejects_whole_requests_is_bisected_and_every_good_line_lands() {
    // InfluxDB 3's /api/v2/write: one bad line rejects the whole request; nothing is written.
    let server = FaultServer::start(Script::ok());
    let mut rig = rig(&server.url(), "v2", 32, &[9], "d");
    let bad = rig.lines[9].clone();
    let reject = || {
        Script::status(400).body(
            r#"{"code":"invalid","message":"write buffer error: line protocol parse failed"}"#,
        )
    };
    // Answers in order: all 32 (reject); 0..16 (reject); 0..8 (ok) so 8..16 holds it;
    // 8..12 (reject); 8..10 (reject); 8..9 (ok) so line 9 is the one; then 10..12, 12..16, 16..32 (ok).
    server.push([
        reject(),
        reject(),
        Script::ok(),
        reject(),
        reject(),
        Script::ok(),
        Script::ok(),
        Script::ok(),
        Script::ok(),
    ]);
    rig.drain(10);
    assert_eq!(rig.dead_lines(), vec![bad.clone()]);
    let expected: Vec<String> = rig.lines.iter().filter(|l| **l != bad).cloned().collect();
    assert_eq!(sorted(server.accepted()), sorted(expected));
    assert_eq!(server.pending(), 0, "every scripted answer was used");
}

#[test]
fn bad_credentials_keep_everything_back_off_for_minutes_and_say_what_to_fix() {
    let server =
        FaultServer::start(Script::status(401).body(r#"{"error":"authorization failed"}"#));
    let mut rig = rig(&server.url(), "v1", 10, &[], "d");
    let Step::Paused(pause) = rig.uploader.step().unwrap() else {
        panic!("expected a pause")
    };
    assert!(
        pause.delay >= Duration::from_secs(30) && pause.reason.contains("token"),
        "{pause:?}"
    );
    assert_eq!(rig.counter("queued"), 10);
    let status = rig.uploader.queue().meta("last_upload").unwrap().unwrap();
    assert!(status.contains("authorization failed"), "{status}");
}

#[test]
fn a_missing_database_keeps_everything_and_backs_off_long() {
    let server =
        FaultServer::start(Script::status(404).body(r#"{"error":"database not found: \"d\""}"#));
    let mut rig = rig(&server.url(), "v1", 10, &[], "d");
    let Step::Paused(pause) = rig.uploader.step().unwrap() else {
        panic!("expected a pause")
    };
    assert!(
        pause.delay >= Duration::from_secs(30) && pause.reason.contains("database"),
        "{pause:?}"
    );
    assert_eq!(rig.counter("queued"), 10);
}

#[test]
fn retry_after_in_seconds_and_as_an_http_date_is_honoured() {
    let server = FaultServer::start(Script::ok());
    server.push([
        Script::status(429).header("Retry-After", "17"),
        Script::status(503).header("Retry-After", "Fri, 31 Dec 2100 23:59:59 GMT"),
    ]);
    let mut rig = rig(&server.url(), "v1", 10, &[], "d");
    assert!(
        matches!(rig.uploader.step().unwrap(), Step::Paused(p) if p.delay == Duration::from_secs(17))
    );
    assert!(
        matches!(rig.uploader.step().unwrap(), Step::Paused(p) if p.delay == Duration::from_secs(600)),
        "capped at 10 minutes"
    );
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(10));
}

#[test]
fn server_errors_resets_and_timeouts_back_off_and_lose_nothing() {
    let server = FaultServer::start(Script::ok());
    server.push([
        Script::status(500),
        Script::reset_mid_body(),
        Script::ok().delay(Duration::from_secs(3)),
    ]);
    let mut rig = rig(&server.url(), "v1", 10, &[], "d");
    for expected in ["HTTP 500", "", ""] {
        match rig.uploader.step().unwrap() {
            Step::Paused(p) => assert!(p.reason.contains(expected), "{p:?}"),
            other => panic!("expected a pause, got {other:?}"),
        }
    }
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(10));
    assert_eq!(rig.counter("uploaded"), 10);
    assert!(sorted(server.accepted()).len() >= 10);
}

#[test]
fn a_real_influxdb_type_conflict_dead_letters_exactly_the_conflicting_lines() {
    let influx = common::influx();
    let db = influx.create_database("type_conflict");
    // The field already exists as a string in the same shard (1.x checks types per shard, so
    // the pre-written point sits in the same week): every float write to it conflicts.
    let mut pre = ureq::Agent::new_with_defaults()
        .post(format!("{}/write?db={db}&precision=ns", influx.url))
        .send("conflict,sensor_id=T2 v=\"text\" 1699999999000000000")
        .unwrap();
    assert_eq!(
        pre.status().as_u16(),
        204,
        "{}",
        pre.body_mut().read_to_string().unwrap_or_default()
    );
    let poison = [5, 70, 71, 150];
    let mut rig = rig(&influx.url, "v1", 200, &poison, &db);
    rig.drain(50);
    let expected_dead: Vec<String> = poison.iter().map(|&i| rig.lines[i].clone()).collect();
    assert_eq!(sorted(rig.dead_lines()), sorted(expected_dead));
    let landed = influx.query(&db, "SELECT count(v) FROM ok");
    let count = landed[0].values[0][1].as_i64().unwrap();
    assert_eq!(count, 196, "every other reading of the same batches lands");
    assert_eq!(
        (
            rig.counter("uploaded"),
            rig.counter("dropped.rejected"),
            rig.counter("queued")
        ),
        (196, 4, 0)
    );
}
