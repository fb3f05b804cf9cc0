//! What lands in InfluxDB: event readings you can count, edge aggregates, and the preview of
//! `read --format lp`, each checked against a real InfluxDB 1.x.

mod common;

use common::*;
use fieldlink::clock::{Clock, ManualClock, TimeKeeper};
use fieldlink::queue::Queue;
use fieldlink::recorder::Recorder;
use fieldlink::sampler::{self, Slot};
use fieldlink::sensors::gpio::{reed_switch, Edge, EdgeSource, ReedSwitch};
use fieldlink::sensors::{EventSensor, SensorError};
use fieldlink::shutdown::Shutdown;
use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.expect("a clock after 1970").as_nanos() as i64
}

/// The board of one device with a reed switch, uploading to `database` on the test server.
fn door_board(site: &Site, database: &str) -> String {
    format!(
        "[device]\nid = \"door-device\"\n\n[queue]\npath = {}\n\n\
         [upload]\nurl = {}\napi = \"v1\"\ndatabase = {}\nstart_delay_max = \"0s\"\n\
         max_points_per_second = 0\n\n\
         [[sensor]]\nid = \"door-1\"\nkind = \"reed_switch\"\ninterval = \"1s\"\nline = 17\n",
        toml_str(&site.queue.to_string_lossy()),
        toml_str(&influx().url),
        toml_str(database),
    )
}

/// A GPIO line playing a script of edges on the test's manual clock: waiting for an edge moves
/// the clock instead of sleeping. Once the script has run out and settled, it stops the agent.
struct ScriptedLine {
    clock: Arc<ManualClock>,
    start_ns: i64,
    edges: VecDeque<(u64, bool)>,
    level: bool,
    shutdown: Shutdown,
}

impl EdgeSource for ScriptedLine {
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, SensorError> {
        let now = self.clock.mono_ns();
        let deadline = now + timeout.as_nanos() as i64;
        match self.edges.front().copied() {
            Some((ms, active)) if self.start_ns + ms as i64 * 1_000_000 <= deadline => {
                self.edges.pop_front();
                let at = self.start_ns + ms as i64 * 1_000_000;
                self.clock
                    .advance(Duration::from_nanos((at - now).max(0) as u64));
                self.level = active;
                Ok(Some(Edge {
                    active,
                    at: Duration::from_nanos(at as u64),
                }))
            }
            next => {
                self.clock.advance(timeout);
                if next.is_none() && self.clock.mono_ns() - self.start_ns > 60_000_000_000 {
                    self.shutdown.trigger();
                }
                Ok(None)
            }
        }
    }

    fn level(&mut self) -> Result<bool, SensorError> {
        Ok(self.level)
    }
}

/// Five openings, each opening and each closing bouncing on the way.
fn five_bouncy_openings() -> VecDeque<(u64, bool)> {
    let mut edges = VecDeque::new();
    for n in 0..5u64 {
        let t = 2_000 + n * 9_000;
        edges.extend([(t, true), (t + 3, false), (t + 6, true)]);
        let t = t + 4_000;
        edges.extend([(t, false), (t + 4, true), (t + 8, false)]);
    }
    edges
}

#[test]
fn a_reed_switch_opened_five_times_with_bounce_lands_as_five_open_and_five_close_events() {
    let server = influx();
    let db = server.create_database("door_events");
    let site = Site::new("door-events");
    std::fs::write(&site.board_path, door_board(&site, &db)).expect("write the board");
    let board = fieldlink::config::Board::load(&site.board_path).expect("a valid board");
    let plan = fieldlink::device::series_plan(&board, "door-device");

    // An hour ago, so every reading is in the past for the real clock of `fieldlink sync`.
    let clock = Arc::new(ManualClock::new(now_ns() - 3_600_000_000_000, true, "b"));
    let time = Arc::new(TimeKeeper::new(clock.clone(), false, 0));
    let shutdown = Shutdown::new();
    let mut line = Some(ScriptedLine {
        clock: clock.clone(),
        start_ns: clock.mono_ns(),
        edges: five_bouncy_openings(),
        level: false,
        shutdown: shutdown.clone(),
    });
    let state = site.dir.path().join("door-1.state");
    let slot = Slot::new(
        0,
        "door-1".into(),
        Duration::from_secs(1),
        Box::new(move || {
            let line = line
                .take()
                .ok_or(SensorError::NotFound("reopened".into()))?;
            let door = ReedSwitch::new(line, reed_switch::DEFAULT_DEBOUNCE, state.clone())?;
            Ok(Box::new(door) as Box<dyn EventSensor>)
        }),
    );
    let (tx, rx) = mpsc::channel();
    sampler::run_events(slot, time.clone(), tx, shutdown);

    let queue = Queue::open(&site.queue).expect("open the queue");
    let hour = Duration::from_secs(3600);
    let mut recorder = Recorder::new(queue, &plan, time, hour, hour).expect("a recorder");
    let mut state_samples = 0;
    for message in rx.try_iter() {
        if let sampler::Message::Reading(r) = &message {
            state_samples += usize::from(!r.kind.is_event());
        }
        recorder.accept(message);
    }
    recorder.commit();
    drop(recorder);
    assert!(state_samples >= 40, "{state_samples} state samples");
    site.sync();

    let count = |filter: &str| -> i64 {
        let q = format!("SELECT count(door_open) FROM iot_metrics WHERE {filter}");
        let series = server.query(&db, &q);
        series
            .first()
            .map_or(0, |s| s.values[0][1].as_i64().unwrap_or(0))
    };
    assert_eq!(count("event = 'open'"), 5);
    assert_eq!(count("event = 'close'"), 5);
    assert_eq!(count("event = ''"), state_samples as i64);
    let points = server.points(&db);
    let untagged = points.iter().filter(|p| !p.tags.contains_key("event"));
    assert!(
        untagged
            .clone()
            .all(|p| p.fields.contains_key("open_count") && !p.fields.contains_key("open_seconds")),
        "only state samples go without the event tag"
    );
    assert_eq!(untagged.count(), state_samples);
    let last_open = points
        .iter()
        .filter(|p| p.tags.get("event").map(String::as_str) == Some("open"))
        .filter_map(|p| p.fields.get("open_count"))
        .max();
    assert_eq!(last_open, Some(&Field::Num("5".into())));
}

/// Points of a line-protocol text, parsed by the `influxdb-line-protocol` crate (not ours),
/// without their timestamps.
fn parsed_without_time(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = influxdb_line_protocol::parse_lines(text)
        .map(|line| {
            let line = line.unwrap_or_else(|e| panic!("not line protocol ({e}): {text}"));
            assert!(line.timestamp.is_some(), "every line has a timestamp");
            let tags: Vec<String> = line
                .series
                .tag_set
                .iter()
                .flatten()
                .map(|(k, v)| format!("{}={}", k.as_str(), v.as_str()))
                .collect();
            let fields: Vec<String> = line
                .field_set
                .iter()
                .map(|(k, v)| format!("{}={v:?}", k.as_str()))
                .collect();
            format!(
                "{} [{}] [{}]",
                line.series.measurement.as_str(),
                tags.join(","),
                fields.join(",")
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn read_as_line_protocol_parses_and_equals_what_is_then_queued() {
    let site = Site::new("read-lp");
    let mut board = site.board();
    board.tags.push(("site name".into(), "lab, north=1".into()));
    board.sensors[0]
        .tags
        .push(("shelf".into(), "top \"A\"".into()));
    for sensor in &mut board.sensors {
        sensor.interval = "10s".into();
    }
    site.write(&board);

    let out = site.cli(&["read", "--format", "lp"]);
    assert!(out.status.success(), "{}", describe(&out));
    let preview = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(preview.lines().count(), 3, "{preview}");
    assert!(!site.queue.exists(), "the preview queues nothing");

    let agent = site.run();
    let queued = wait_until(Duration::from_secs(20), "the first readings", || {
        let lines = try_read_queue_lines(&site.queue)?;
        let sensors: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("sensor_id=") && !l.contains("event="))
            .collect();
        (sensors.len() >= 3).then(|| {
            sensors
                .iter()
                .take(3)
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
        })
    });
    agent.terminate();
    let queued: Vec<String> = queued.into_iter().map(|l| l + "\n").collect();
    assert_eq!(
        parsed_without_time(&preview),
        parsed_without_time(&queued.concat())
    );
}

fn number(point: &Point, field: &str) -> f64 {
    match point.fields.get(field) {
        Some(Field::Num(n)) => n.parse().expect("a number"),
        other => panic!("{field}: expected a number, got {other:?} in {point:?}"),
    }
}

#[test]
fn an_aggregated_sensor_lands_one_point_per_window_counting_every_sample_even_at_sigterm() {
    let server = influx();
    let db = server.create_database("edge_aggregates");
    let site = Site::new("edge-aggregates");
    let mut board = site.board();
    board.sensors.truncate(1);
    board.sensors[0].extra = vec!["aggregate = \"1s\"".into(), "keep_raw = true".into()];
    site.write(&board);
    let agent = site.run();
    std::thread::sleep(Duration::from_millis(3_300));
    agent.terminate(); // mid-window: its samples are in the partial window's count

    board.upload = Some(Upload {
        url: influx().url.clone(),
        api: "v1".into(),
        database: db.clone(),
        batch_lines: 500,
        timeout: "5s".into(),
        extra: Vec::new(),
    });
    site.write(&board);
    site.sync();
    let points = server.points(&db);
    let climate = points.iter().filter(|p| p.measurement == "iot_metrics");
    let raw: Vec<&Point> = climate
        .clone()
        .filter(|p| p.fields.contains_key("temperature"))
        .collect();
    let windows: Vec<&Point> = climate
        .filter(|p| p.fields.contains_key("temperature_count"))
        .collect();
    assert!(raw.len() >= 40, "{} raw samples", raw.len());
    let second = 1_000_000_000;
    let mut raw_windows: Vec<i64> = raw.iter().map(|p| p.time_ns - p.time_ns % second).collect();
    raw_windows.dedup();
    let starts: Vec<i64> = windows
        .iter()
        .map(|p| p.time_ns - p.time_ns % second)
        .collect();
    assert_eq!(starts, raw_windows, "one point per window");
    assert_eq!(
        windows[0].time_ns, raw[0].time_ns,
        "the first, joined late, at its first sample"
    );
    assert!(
        windows[1..].iter().all(|w| w.time_ns % second == 0),
        "the others at their start"
    );
    for window in &windows {
        let start = window.time_ns - window.time_ns % second;
        let inside: Vec<f64> = raw
            .iter()
            .filter(|p| p.time_ns >= start && p.time_ns < start + second)
            .map(|p| number(p, "temperature"))
            .collect();
        let (min, mean, max) = (
            number(window, "temperature_min"),
            number(window, "temperature_mean"),
            number(window, "temperature_max"),
        );
        assert_eq!(number(window, "temperature_count"), inside.len() as f64);
        assert!(min <= mean && mean <= max, "{window:?}");
        let lowest = inside.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(min, lowest, "{window:?}");
        assert!(!window.tags.contains_key("event"));
    }
    let counted: f64 = windows.iter().map(|w| number(w, "temperature_count")).sum();
    assert_eq!(
        counted,
        raw.len() as f64,
        "every sample, the cut window's too, is counted"
    );
}
