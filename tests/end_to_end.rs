//! End to end: simulated board → SQLite queue → gzip batches → real InfluxDB.
//!
//! Each test runs the real `fieldlink` binary on a board of simulated sensors (50 ms intervals,
//! 200 ms commit window) and compares, point by point, what the queue committed with what a real
//! InfluxDB 1.x stored: measurement, every tag, every field and the nanosecond timestamp.
//! Where a test needs the server to misbehave, the fault server stands in front of it.

mod common;

use common::fault_server::{FaultServer, Script};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Point the board's uploader somewhere.
fn upload_to(board: &mut Board, url: &str, database: &str) {
    board.upload = Some(Upload {
        url: url.to_string(),
        api: "v1".into(),
        database: database.to_string(),
        batch_lines: 200,
        timeout: "2s".into(),
        extra: Vec::new(),
    });
}

/// A board whose server is down: its port refuses connections.
fn offline(site: &Site, database: &str) -> Board {
    let mut board = site.board();
    upload_to(
        &mut board,
        &format!("http://127.0.0.1:{}", free_port()),
        database,
    );
    board
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as i64
}

/// Run the agent for `secs`, stop it with SIGTERM (which must take < 5 s and exit 0), and
/// return what it left in the queue.
fn run_for(site: &Site, duration: Duration) -> Vec<String> {
    let agent = site.run();
    std::thread::sleep(duration);
    agent.terminate();
    read_queue_lines(&site.queue)
}

fn counter(status: &serde_json::Value, name: &str) -> i64 {
    status["counters"][name].as_i64().unwrap_or(0)
}

fn sensor_of(point: &Point) -> &str {
    point
        .tags
        .get("sensor_id")
        .map(String::as_str)
        .unwrap_or("")
}

#[test]
fn every_sampled_reading_arrives_with_its_tags_and_exact_timestamp() {
    let server = influx();
    let db = server.create_database("exact");
    let site = Site::new("exact");
    site.write(&offline(&site, &db));

    let started = now_ns();
    let queued = run_for(&site, Duration::from_millis(1200));
    let stopped = now_ns();
    let expected = parse_lines(&queued);
    let ours: Vec<Point> = expected
        .iter()
        .filter(|p| p.measurement == "iot_metrics")
        .cloned()
        .collect();

    // What was sampled: every sensor, every reading with its tags, stamped while it ran.
    let per_sensor = |id: &str| ours.iter().filter(|p| sensor_of(p) == id).count();
    for id in ["climate-1", "motion-1", "door-1"] {
        assert!(
            per_sensor(id) >= 8,
            "{id}: only {} readings in 1.2 s at 50 ms",
            per_sensor(id)
        );
    }
    for p in &ours {
        assert_eq!(
            p.tags.get("device_id").map(String::as_str),
            Some("e2e-device"),
            "{p:?}"
        );
        assert_eq!(p.tags.get("site").map(String::as_str), Some("lab"), "{p:?}");
        if sensor_of(p) == "climate-1" {
            assert_eq!(
                p.tags.get("room").map(String::as_str),
                Some("cold store"),
                "{p:?}"
            );
        }
        assert!(
            (started..=stopped).contains(&p.time_ns),
            "{p:?} stamped outside the run ({started}..{stopped})"
        );
    }

    // Server back: drain, then compare point by point, timestamps in ns.
    let mut board = site.board();
    upload_to(&mut board, &server.url, &db);
    site.write(&board);
    site.sync();
    assert!(
        read_queue_lines(&site.queue).is_empty(),
        "sync left readings queued"
    );

    let stored = server.points(&db);
    assert_all_present(&expected, &stored, "after sync");
    let stored_ours: Vec<Point> = stored
        .into_iter()
        .filter(|p| p.measurement == "iot_metrics")
        .collect();
    assert_eq!(
        stored_ours.len(),
        ours.len(),
        "InfluxDB holds iot_metrics points the queue never had"
    );
    assert_eq!(stored_ours, ours);

    let status = site.status();
    assert_eq!(status["depth"], 0, "{status}");
    assert!(
        counter(&status, "uploaded") >= queued.len() as i64,
        "{status}"
    );
}

#[test]
fn readings_queued_while_the_server_is_down_arrive_once_it_is_back() {
    let server = influx();
    let db = server.create_database("outage");
    let site = Site::new("outage");
    // The server is down for the first requests (a reset mid-body, then a 503), then back.
    let proxy = FaultServer::start(Script::forward(&server.url));
    proxy.push([
        Script::reset_mid_body(),
        Script::status(503).body("{\"error\":\"starting\"}"),
    ]);
    let mut board = site.board();
    upload_to(&mut board, &proxy.url(), &db);
    site.write(&board);

    let agent = site.run();
    proxy.wait_for(Duration::from_secs(20), |requests| {
        requests.iter().filter(|r| r.answered == Some(204)).count() >= 2
    });
    std::thread::sleep(Duration::from_millis(300));
    agent.terminate();
    site.sync();
    assert!(
        read_queue_lines(&site.queue).is_empty(),
        "sync left readings queued"
    );

    let requests = proxy.requests();
    assert_eq!(requests[0].answered, None, "the first request was reset");
    assert_eq!(requests[1].answered, Some(503));
    let refused: Vec<String> = requests[1].lines.clone();
    assert!(!refused.is_empty(), "the 503'd request carried readings");

    let stored = server.points(&db);
    let sent = parse_lines(&proxy.accepted());
    assert_all_present(
        &parse_lines(&refused),
        &stored,
        "readings refused during the outage",
    );
    assert_all_present(&sent, &stored, "readings the agent sent");
    let distinct: BTreeSet<&Point> = sent.iter().collect();
    assert_eq!(
        distinct.len(),
        stored.len(),
        "InfluxDB holds points the agent never sent"
    );

    let status = site.status();
    assert_eq!(status["depth"], 0, "{status}");
    assert_eq!(
        counter(&status, "sampled"),
        counter(&status, "uploaded"),
        "every sampled reading was uploaded: {status}"
    );
    assert_eq!(counter(&status, "sampled"), stored.len() as i64, "{status}");
}

#[test]
fn a_kill_9_mid_run_loses_nothing_that_was_committed() {
    let server = influx();
    let db = server.create_database("kill9");
    let site = Site::new("kill9");
    site.write(&offline(&site, &db));

    let agent = site.run();
    wait_until(Duration::from_secs(10), "40 committed readings", || {
        try_read_queue_lines(&site.queue).filter(|lines| lines.len() >= 40)
    });
    std::thread::sleep(Duration::from_millis(130)); // land somewhere inside a commit window
    agent.kill9();
    let committed = read_queue_lines(&site.queue);
    assert!(committed.len() >= 40);

    // It starts again on the same file and keeps what was there.
    let after_restart = run_for(&site, Duration::from_millis(500));
    let kept: BTreeSet<&String> = after_restart.iter().collect();
    let lost: Vec<&String> = committed.iter().filter(|l| !kept.contains(l)).collect();
    assert!(lost.is_empty(), "restart dropped committed rows: {lost:?}");
    assert!(
        after_restart.len() > committed.len(),
        "the restarted agent sampled nothing"
    );

    let mut board = site.board();
    upload_to(&mut board, &server.url, &db);
    site.write(&board);
    site.sync();
    let stored = server.points(&db);
    assert_all_present(
        &parse_lines(&committed),
        &stored,
        "rows committed before kill -9",
    );
    assert_all_present(
        &parse_lines(&after_restart),
        &stored,
        "rows after the restart",
    );
}

#[test]
fn hostile_tag_values_round_trip_through_influxdb_unchanged() {
    let server = influx();
    // A database name that needs percent-encoding in the write URL.
    let db = "e2e hostile, db=ü".to_string();
    server.execute("CREATE DATABASE \"e2e hostile, db=ü\"");
    let site = Site::new("hostile");

    // A backslash before a space cannot round-trip (the board check refuses it); one before a
    // letter is written raw.
    let device = "pi \"north\", shelf=3 \\o'clock ☃";
    let board_tags: Vec<(String, String)> = vec![
        ("zone".into(), "Kühlraum 2, Regal=A".into()),
        ("floor level".into(), "1st \"upper\" deck".into()),
        ("dept=ops,x".into(), "a\\b c".into()),
        ("emoji".into(), "❄️ 北京 — ok".into()),
    ];
    let sensor_tags: Vec<(String, String)> = vec![
        ("loc,x".into(), "O'Brien's \"shed\"".into()),
        ("path".into(), "C:\\temp\\x".into()),
        ("eq".into(), "=a=b=".into()),
    ];
    let mut board = offline(&site, &db);
    board.device_id = device.into();
    board.tags = board_tags.clone();
    let mut climate = Sensor::new("climate #1, back=yes", "simulated_climate");
    climate.tags = sensor_tags.clone();
    climate.measurement = Some("cold store,room 1".into());
    board.sensors = vec![climate, Sensor::new("door \"2\"", "simulated_door")];
    site.write(&board);

    let check = site.cli(&["check"]);
    assert!(
        check.status.success(),
        "check refused hostile but valid tags: {}",
        describe(&check)
    );

    let queued = run_for(&site, Duration::from_millis(700));
    let mut board = board.clone();
    upload_to(&mut board, &server.url, &db);
    site.write(&board);
    site.sync();

    // The exact tag maps the board asked for, built here rather than from any parser.
    let mut common_tags: BTreeMap<String, String> = board_tags.into_iter().collect();
    common_tags.insert("device_id".into(), device.into());
    let mut climate_tags = common_tags.clone();
    climate_tags.extend(sensor_tags);
    climate_tags.insert("sensor_id".into(), "climate #1, back=yes".into());
    let mut door_tags = common_tags;
    door_tags.insert("sensor_id".into(), "door \"2\"".into());

    let stored = server.points(&db);
    let climate: Vec<&Point> = stored
        .iter()
        .filter(|p| p.measurement == "cold store,room 1")
        .collect();
    let door: Vec<&Point> = stored
        .iter()
        .filter(|p| p.measurement == "iot_metrics" && sensor_of(p) == "door \"2\"")
        .collect();
    assert!(
        !climate.is_empty(),
        "no climate points under the hostile measurement name"
    );
    assert!(!door.is_empty(), "no door points");
    for p in &climate {
        assert_eq!(p.tags, climate_tags, "climate point at {}", p.time_ns);
    }
    for p in &door {
        assert_eq!(p.tags, door_tags, "door point at {}", p.time_ns);
    }
    assert_all_present(&parse_lines(&queued), &stored, "hostile-tag readings");

    // And the server's own index agrees.
    let values: BTreeSet<String> = server
        .query(&db, "SHOW TAG VALUES FROM /.*/ WITH KEY = \"device_id\"")
        .iter()
        .flat_map(|s| {
            s.values
                .iter()
                .map(|row| row[1].as_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(values, BTreeSet::from([device.to_string()]));
    let keys: BTreeSet<String> = server
        .query(&db, "SHOW TAG KEYS FROM \"cold store,room 1\"")
        .iter()
        .flat_map(|s| {
            s.values
                .iter()
                .map(|row| row[0].as_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(keys, climate_tags.keys().cloned().collect());
}

#[test]
fn check_on_a_broken_board_exits_2_naming_file_line_and_key() {
    let site = Site::new("check");
    let board = site.board();
    site.write(&board);
    let good = site.cli(&["check"]);
    assert_eq!(good.status.code(), Some(0), "{}", describe(&good));
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("e2e-device"),
        "check prints the resolved config: {}",
        describe(&good)
    );

    // Write a broken board, run `check`: exit 2, naming the file, the line of `marker`, the key.
    let expect_refusal = |broken: &str, marker: &str, key: &str| {
        let line = broken.lines().position(|l| l.contains(marker)).unwrap() + 1;
        std::fs::write(&site.board_path, broken).unwrap();
        let out = site.cli(&["check"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let expected = format!("{}:{line}: key `{key}`", site.board_path.display());
        assert!(
            stderr.contains(&expected),
            "expected `{expected}` in: {}",
            describe(&out)
        );
    };

    // A bad duration on a known line of the second sensor.
    let text = board.to_toml();
    let broken = text.replacen(
        "id = \"motion-1\"\nkind = \"simulated_motion\"\ninterval = \"50ms\"",
        "id = \"motion-1\"\nkind = \"simulated_motion\"\ninterval = \"5 parsecs\"",
        1,
    );
    assert_ne!(broken, text);
    expect_refusal(&broken, "5 parsecs", "sensor.interval");

    // An unknown key.
    let broken = text.replacen("[queue]\n", "[queue]\ncolour = \"red\"\n", 1);
    expect_refusal(&broken, "colour", "queue.colour");

    // `run` refuses the same file the same way instead of starting.
    let mut run = fieldlink();
    run.args(["run", "--board"]).arg(&site.board_path);
    let out = output_within(run, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn sigterm_stops_run_within_5_seconds_even_while_a_request_hangs() {
    let site = Site::new("sigterm");
    // The server reads the request and then says nothing for a minute.
    let hanging = FaultServer::start(Script::ok().delay(Duration::from_secs(60)));
    let mut board = site.board();
    upload_to(&mut board, &hanging.url(), "x");
    board.upload.as_mut().unwrap().timeout = "30s".into();
    site.write(&board);

    let agent = site.run();
    hanging.wait_for(Duration::from_secs(10), |r| !r.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let took = agent.terminate();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Nothing was acknowledged, so everything sampled is still queued.
    let status = site.status();
    assert!(status["depth"].as_i64().unwrap_or(0) > 0, "{status}");
    assert_eq!(counter(&status, "uploaded"), 0, "{status}");
}

#[test]
fn sigint_stops_run_cleanly_too() {
    let site = Site::new("sigint");
    site.write(&offline(&site, "x"));
    let agent = site.run();
    std::thread::sleep(Duration::from_millis(600));
    let log = agent.log.clone();
    let (status, took) = agent.stop(libc::SIGINT, Duration::from_secs(5));
    assert!(
        status.success(),
        "exit {status} after SIGINT: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    assert!(took < Duration::from_secs(5));
    assert!(!read_queue_lines(&site.queue).is_empty());
}

#[test]
fn status_reports_the_queue_as_json() {
    let site = Site::new("status");
    site.write(&offline(&site, "x"));
    let queued = run_for(&site, Duration::from_millis(700));
    let status = site.status();
    for key in [
        "depth",
        "held",
        "dead_letters",
        "oldest_age_s",
        "last_upload",
        "counters",
    ] {
        assert!(status.get(key).is_some(), "status lacks `{key}`: {status}");
    }
    assert_eq!(status["depth"], queued.len(), "{status}");
    assert_eq!(status["held"], 0, "{status}");
    assert_eq!(status["dead_letters"], 0, "{status}");
    assert!(
        status["oldest_age_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{status}"
    );
    assert_eq!(counter(&status, "sampled"), queued.len() as i64, "{status}");
    assert_eq!(counter(&status, "uploaded"), 0, "{status}");
    // The same numbers the queue file holds.
    let counters = read_queue_counters(&site.queue);
    assert_eq!(
        counters.get("sampled").copied().unwrap_or(0),
        queued.len() as i64
    );
}

/// A server that refuses some lines: only those go to the dead-letter table, the rest arrive;
/// `dead-letter retry --all` puts them back once the server takes them.
fn partial_write_dead_letters_only_the_bad_lines(api: &str, script: Script) {
    let site = Site::new(&format!("partial-{api}"));
    site.write(&offline(&site, "x"));
    let queued = run_for(&site, Duration::from_millis(700));
    let is_bad = |l: &str| l.contains("sensor_id=door-1");
    let bad: BTreeSet<String> = queued.iter().filter(|l| is_bad(l)).cloned().collect();
    let good: BTreeSet<String> = queued.iter().filter(|l| !is_bad(l)).cloned().collect();
    assert!(!bad.is_empty() && !good.is_empty());

    let server = FaultServer::start(script);
    let mut board = site.board();
    upload_to(&mut board, &server.url(), "x");
    board.upload.as_mut().unwrap().api = api.into();
    site.write(&board);
    site.sync();

    let accepted: BTreeSet<String> = server.accepted().into_iter().collect();
    assert_eq!(accepted, good, "accepted lines");
    let dead: BTreeSet<String> = read_dead_letters(&site.queue)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(dead, bad, "dead-lettered lines");
    let status = site.status();
    assert_eq!(status["dead_letters"], bad.len(), "{status}");
    assert_eq!(
        counter(&status, "dropped.rejected"),
        bad.len() as i64,
        "{status}"
    );
    let list = site.cli(&["dead-letter", "list"]);
    assert!(list.status.success(), "{}", describe(&list));
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("door-1"),
        "dead-letter list shows the lines: {}",
        describe(&list)
    );

    server.set_default(Script::ok());
    let retry = site.cli(&["dead-letter", "retry", "--all"]);
    assert!(retry.status.success(), "{}", describe(&retry));
    site.sync();
    let accepted: BTreeSet<String> = server.accepted().into_iter().collect();
    assert!(bad.is_subset(&accepted), "retried lines arrive");
    assert!(read_dead_letters(&site.queue).is_empty());
}

#[test]
fn a_v1_partial_write_dead_letters_only_the_rejected_lines() {
    partial_write_dead_letters_only_the_bad_lines(
        "v1",
        Script::partial_v1(|l| l.contains("sensor_id=door-1")),
    );
}

#[test]
fn a_v3_partial_write_dead_letters_only_the_rejected_lines() {
    partial_write_dead_letters_only_the_bad_lines(
        "v3",
        Script::partial_v3(|l| l.contains("sensor_id=door-1")),
    );
}

#[test]
fn a_413_splits_batches_until_they_fit() {
    let site = Site::new("split");
    site.write(&offline(&site, "x"));
    let queued = run_for(&site, Duration::from_millis(700));
    let limit = 2048;
    let server = FaultServer::start(Script::too_large_over(limit));
    let mut board = site.board();
    upload_to(&mut board, &server.url(), "x");
    site.write(&board);
    site.sync();

    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.answered == Some(413)),
        "no batch was too large"
    );
    let accepted: BTreeSet<String> = server.accepted().into_iter().collect();
    let expected: BTreeSet<String> = queued.into_iter().collect();
    assert_eq!(accepted, expected);
}

#[test]
fn retry_after_from_a_503_is_honoured() {
    let site = Site::new("retry-after");
    site.write(&offline(&site, "x"));
    run_for(&site, Duration::from_millis(300));
    let server = FaultServer::start(Script::ok());
    server.push([Script::status(503).header("Retry-After", "2")]);
    let mut board = site.board();
    upload_to(&mut board, &server.url(), "x");
    site.write(&board);
    let start = Instant::now();
    site.sync();
    let requests = server.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "sync retried after {:?}, before the 2 s the server asked for",
        start.elapsed()
    );
}
