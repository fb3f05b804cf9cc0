//! A week offline: 8 sensors at 1 Hz for 7 simulated days (4,838,400 routine readings plus a
//! few hundred door/motion events) go through the real recorder on an injected clock. At the
//! default 64 MiB budget all of it fits at full resolution: nothing is thinned, and every
//! reading arrives. With a 4 MiB budget the queue thins and drops; then the network comes back
//! and the uploader drains the queue into a recording transport. Checked:
//!
//! - the budget: after every commit the live bytes are within `max_bytes`, and the files stay
//!   within a stated slack (db ≤ 4.5 MiB, WAL ≤ 1.1 MiB);
//! - every event sent in is received, exactly, with its timestamp;
//! - aggregates cover the thinned period: every routine reading is received raw, or folded
//!   into an aggregate of its own series and window (the sum of `<field>_count` over all aggregates
//!   ever created equals `dropped.thinned`), or removed and counted as `dropped.dropped_full`;
//!   each aggregate that was created is received or was dropped and counted;
//! - no two received lines share series and timestamp (InfluxDB would merge them into one);
//! - the counters add up exactly: `sampled + aggregates == uploaded + thinned + dropped_full +
//!   expired`, `queued == 0`, `uploaded` == lines received.

use fieldlink::clock::{build_time_ns, Clock, ManualClock, TimeKeeper};
use fieldlink::config::series::SeriesPlan;
use fieldlink::config::UploadConfig;
use fieldlink::line_protocol::{field_set, parse_field_set, series_key};
use fieldlink::queue::{Policy, Queue};
use fieldlink::reading::{EdgeName, Fields, Kind, Reading, Value};
use fieldlink::recorder::Recorder;
use fieldlink::rng::Rng;
use fieldlink::sampler::Message;
use fieldlink::upload::endpoint::Endpoint;
use fieldlink::upload::transport::{Reply, Transport, TransportError};
use fieldlink::upload::{InfluxHttp, Step, Uploader};
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECOND: i64 = 1_000_000_000;
const DAYS: i64 = 7;
const SENSORS: usize = 8;
const CLIMATE: usize = 6; // sensors 0..6; 6 is a door, 7 a motion sensor
const DOOR: usize = 6;
const MOTION: usize = 7;
/// A small budget, so the week exercises thinning and dropping.
const SMALL_BUDGET: u64 = 4 << 20;
/// The default `max_bytes`: a week at full resolution fits in it.
const DEFAULT_BUDGET: u64 = 64 << 20;
const WINDOW: Duration = Duration::from_secs(300);
/// Simulated seconds per commit: a larger window than the agent's default keeps this fast.
const COMMIT_EVERY: i64 = 60;
/// Slack over `max_bytes` for the files. The database file: enforcement runs after a commit
/// lands, and the file keeps its free pages, so 1/8 over (4.5 MiB). The WAL: the queue
/// checkpoints it at a quarter of `max_bytes` (1 MiB) and truncates it back to that, but a
/// checkpoint runs only after the transaction that crossed the mark, so the WAL may exceed the
/// quarter by one transaction (a retention pass that drops 2,000 rows is the largest): 1.5 MiB.
fn db_file_limit(budget: u64) -> u64 {
    budget + budget / 8
}
fn wal_file_limit(budget: u64) -> u64 {
    (budget / 4).min(4 << 20) + budget / 8
}

/// Lines the "server" received (gunzipped); always answers 204.
struct Recording(Arc<Mutex<Vec<String>>>);

impl Transport for Recording {
    fn post(
        &mut self,
        _url: &str,
        _headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError> {
        let text = read_one_member(body);
        // A body of stored segments ends in a newline, as line protocol may.
        let text = text.strip_suffix('\n').unwrap_or(&text);
        self.0
            .lock()
            .unwrap()
            .extend(text.split('\n').map(str::to_string));
        Ok(Reply {
            status: 204,
            retry_after: None,
            body: String::new(),
        })
    }
}

/// The text of a body that must be exactly one gzip member: a single-member reader stops
/// after the first, silently.
fn read_one_member(body: &[u8]) -> String {
    let mut decoder = flate2::bufread::GzDecoder::new(body);
    let mut text = String::new();
    decoder.read_to_string(&mut text).expect("a gzip body");
    assert!(
        decoder.into_inner().is_empty(),
        "bytes after the first gzip member"
    );
    text
}

/// Counts what arrives per (series key, window), for a drain too large to keep as lines.
struct Counting(Arc<Mutex<HashMap<(String, i64), i64>>>);

impl Transport for Counting {
    fn post(
        &mut self,
        _url: &str,
        _headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError> {
        let text = read_one_member(body);
        let window_ns = WINDOW.as_nanos() as i64;
        let mut counts = self.0.lock().unwrap();
        for line in text.lines() {
            let (head, time) = line.rsplit_once(' ').expect("a timestamp");
            let (key, _) = head.split_once(' ').expect("a field set");
            let time_ns: i64 = time.parse().expect("a numeric timestamp");
            let window = time_ns - time_ns.rem_euclid(window_ns);
            *counts.entry((key.to_string(), window)).or_default() += 1;
        }
        Ok(Reply {
            status: 204,
            retry_after: None,
            body: String::new(),
        })
    }
}

/// An aggregate row as the queue held it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Aggregate {
    series: String,
    time_ns: i64,
    fields: String,
}

/// How many readings an aggregate's field set holds (its basicstats `<field>_count`s), or
/// `None` for a field set that is not an aggregate (no `<field>_mean`).
fn aggregate_count(fields: &str) -> Option<i64> {
    let fields = parse_field_set(fields);
    if !fields.iter().any(|(name, _)| name.ends_with("_mean")) {
        return None;
    }
    let counts = fields.into_iter().filter_map(|(name, v)| match v {
        Value::Int(n) if name.ends_with("_count") => Some(n),
        _ => None,
    });
    counts.max()
}

impl Aggregate {
    fn count(&self) -> i64 {
        aggregate_count(&self.fields).unwrap_or_else(|| panic!("aggregate without count: {self:?}"))
    }
    fn line(&self) -> String {
        format!("{} {} {}", self.series, self.fields, self.time_ns)
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Where the queue lives: tmpfs when there is one, so SQLite's fsyncs cost nothing.
fn queue_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

#[test]
fn a_week_offline_stays_in_budget_keeps_events_and_accounts_for_every_reading() {
    let started = Instant::now();
    let dir = queue_dir();
    let files = QueueFiles {
        db: dir.path().join("queue.db"),
        wal: dir.path().join("queue.db-wal"),
        budget: SMALL_BUDGET,
    };
    let device = Device::barn();

    // A plausible, synchronised wall clock: a day after this binary was built.
    let t_start = build_time_ns() + 86_400 * SECOND;
    let clock = Arc::new(ManualClock::new(t_start, true, "boot-1"));
    let keeper = Arc::new(TimeKeeper::new(clock.clone() as Arc<dyn Clock>, false, 0));

    let week = record_a_week_offline(&device, &files, &clock, &keeper);
    let drained = drain_after_the_network_returns(&files.db, keeper);
    report(&week, &drained, started);
    let arrived = sort_what_arrived(&device, &week, &drained.received);

    assert_the_counters_add_up(&week, &drained);
    assert_every_event_arrives_exactly(&week, &arrived);
    let raw_dropped =
        assert_aggregates_account_for_every_thinned_reading(&week, &drained, &arrived);
    assert_every_window_is_covered(&device, &week, &arrived, raw_dropped);
    assert_no_two_lines_share_series_and_timestamp(&drained, &arrived);
}

#[test]
fn a_week_offline_fits_the_default_budget_at_full_resolution() {
    let dir = queue_dir();
    let files = QueueFiles {
        db: dir.path().join("queue.db"),
        wal: dir.path().join("queue.db-wal"),
        budget: DEFAULT_BUDGET,
    };
    let device = Device::barn();
    let t_start = build_time_ns() + 86_400 * SECOND;
    let clock = Arc::new(ManualClock::new(t_start, true, "boot-1"));
    let keeper = Arc::new(TimeKeeper::new(clock.clone() as Arc<dyn Clock>, false, 0));

    let week = record_a_week_offline(&device, &files, &clock, &keeper);
    let before = &week.counters_before_drain;
    let get = |name: &str| before.get(name).copied().unwrap_or(0);
    eprintln!(
        "offline week at the default budget: {} readings, max live {} B ({:.0} readings per MiB), counters {before:?}",
        get("sampled"),
        week.high_water.live,
        get("sampled") as f64 / (week.high_water.live as f64 / (1 << 20) as f64),
    );
    assert_eq!(week.routine_total, DAYS * 86_400 * SENSORS as i64);
    assert_eq!(
        (
            get("dropped.thinned"),
            get("dropped.dropped_full"),
            get("aggregates")
        ),
        (0, 0, 0),
        "nothing thinned or dropped"
    );
    assert_eq!(get("queued"), get("sampled"), "every reading still queued");

    let counts = Arc::new(Mutex::new(HashMap::new()));
    let cfg: UploadConfig = toml::from_str(
        "url = \"http://127.0.0.1:9\"\napi = \"v1\"\ndatabase = \"d\"\nmax_points_per_second = 0",
    )
    .unwrap();
    let mut uploader = Uploader::new(
        Queue::open(&files.db).unwrap(),
        InfluxHttp::new(Endpoint::new(&cfg).unwrap(), Counting(counts.clone())),
        &cfg,
        "offline-week",
        keeper,
    );
    while let Step::Sent(_) = uploader.step().unwrap() {}
    drop(uploader);
    let counts = counts.lock().unwrap();
    let mut events_per_window: HashMap<(String, i64), i64> = HashMap::new();
    let window_ns = WINDOW.as_nanos() as i64;
    for line in &week.events_in {
        let (head, time) = line.rsplit_once(' ').unwrap();
        let key = head.split_once(' ').unwrap().0.to_string();
        let time_ns: i64 = time.parse().unwrap();
        *events_per_window
            .entry((key, time_ns - time_ns.rem_euclid(window_ns)))
            .or_default() += 1;
    }
    for ((sensor, window), n) in &week.routine_in {
        let key = (device.keys[*sensor].clone(), *window);
        let events = events_per_window.get(&key).copied().unwrap_or(0);
        assert_eq!(
            counts.get(&key).copied().unwrap_or(0),
            n + events,
            "sensor {} window {window}: every reading arrives at full resolution",
            device.sensor_ids[*sensor]
        );
    }
}

/// The queue file and its WAL, whose sizes the budget bounds.
struct QueueFiles {
    db: PathBuf,
    wal: PathBuf,
    budget: u64,
}

/// The barn's 8 sensors: their ids, series keys, and what the recorder needs to know of them.
struct Device {
    sensor_ids: Vec<String>,
    keys: Vec<String>,
    index_of: HashMap<String, usize>,
}

impl Device {
    fn barn() -> Device {
        let sensor_ids: Vec<String> = (0..SENSORS)
            .map(|i| match i {
                DOOR => "DOR0300".to_string(),
                MOTION => "MOT0200".to_string(),
                _ => format!("TLM01{i:02}"),
            })
            .collect();
        let keys: Vec<String> = sensor_ids
            .iter()
            .map(|id| {
                let tags: BTreeMap<String, String> = [
                    ("device_id".to_string(), "barn-pi-07".to_string()),
                    ("location".to_string(), "barn".to_string()),
                    ("sensor_id".to_string(), id.clone()),
                ]
                .into();
                series_key("iot_metrics", &tags)
            })
            .collect();
        let index_of = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Device {
            sensor_ids,
            keys,
            index_of,
        }
    }

    fn plan(&self) -> SeriesPlan {
        SeriesPlan {
            sensor_keys: self.keys.clone(),
            event_keys: Vec::new(),
            sensor_ids: self.sensor_ids.clone(),
            internal_key: "fieldlink_internal,device_id=barn-pi-07".into(),
        }
    }
}

/// What the simulated sensors read: seeded random walks, a door and a motion sensor.
struct Sensors {
    rng: Rng,
    temperature: [f64; CLIMATE],
    humidity: [f64; CLIMATE],
    door_open: bool,
    open_count: i64,
    motion: bool,
}

impl Sensors {
    fn new() -> Sensors {
        Sensors {
            rng: Rng::new(0x0ff1_1ee7),
            temperature: [4.0; CLIMATE],
            humidity: [80.0; CLIMATE],
            door_open: false,
            open_count: 0,
            motion: false,
        }
    }

    /// A few hundred events over the week: when this second has one, how far into the second.
    fn event_this_second(&mut self) -> Option<Duration> {
        if self.rng.unit() < 1.0 / 1000.0 {
            Some(Duration::from_millis(
                100 + (self.rng.unit() * 800.0) as u64,
            ))
        } else {
            None
        }
    }

    /// The door opens or closes, or the motion sensor flips.
    fn event(&mut self) -> (usize, Fields) {
        if self.rng.unit() < 0.5 {
            self.door_open = !self.door_open;
            self.open_count += i64::from(self.door_open);
            (
                DOOR,
                vec![
                    ("door_open", Value::Bool(self.door_open)),
                    ("open_count", Value::Int(self.open_count)),
                ],
            )
        } else {
            self.motion = !self.motion;
            (MOTION, vec![("motion_detected", Value::Bool(self.motion))])
        }
    }

    /// The routine sample of `sensor` in second `sec` of the week.
    fn routine(&mut self, sensor: usize, sec: i64) -> Fields {
        match sensor {
            DOOR => vec![
                ("door_open", Value::Bool(self.door_open)),
                ("open_count", Value::Int(self.open_count)),
                ("battery_level", Value::Int(90 - sec / 86_400)),
            ],
            MOTION => vec![
                ("motion_detected", Value::Bool(self.motion)),
                ("battery_level", Value::Int(95 - sec / 86_400)),
            ],
            c => {
                self.temperature[c] += self.rng.range(-0.05, 0.05);
                self.humidity[c] =
                    (self.humidity[c] + self.rng.range(-0.2, 0.2)).clamp(30.0, 100.0);
                // Reported at the chips' resolution (0.01 °C, 0.01 %RH), as the drivers and
                // the simulated climate sensor do.
                let hundredths = |v: f64| (v * 100.0).round() / 100.0;
                vec![
                    ("temperature", Value::Float(hundredths(self.temperature[c]))),
                    ("humidity", Value::Float(hundredths(self.humidity[c]))),
                    ("battery_level", Value::Int(100 - sec / 20_000)),
                    ("signal_strength", Value::Int(-60 - (sec % 17))),
                ]
            }
        }
    }
}

/// The largest sizes seen after a commit, for the report.
#[derive(Default)]
struct HighWater {
    db: u64,
    wal: u64,
    live: u64,
    over_budget_commits: usize,
}

/// What went in during the week offline.
struct Week {
    /// Routine readings per (sensor, window).
    routine_in: HashMap<(usize, i64), i64>,
    routine_total: i64,
    /// Every event, as its exact line.
    events_in: Vec<String>,
    /// Every aggregate thinning created, as seen right after the commit that created it.
    created: Vec<Aggregate>,
    high_water: HighWater,
    counters_before_drain: BTreeMap<String, i64>,
    fill_time: Duration,
}

/// 7 days of 8 sensors at 1 Hz plus events through the real recorder on a manual clock,
/// committing every `COMMIT_EVERY` seconds and checking the files against the budget each time.
fn record_a_week_offline(
    device: &Device,
    files: &QueueFiles,
    clock: &ManualClock,
    keeper: &Arc<TimeKeeper>,
) -> Week {
    let started = Instant::now();
    let mut recorder = open_recorder_with_retention(files, device, keeper.clone());
    // A second connection that watches the aggregates thinning creates (read-only, and never
    // left inside a read transaction, so checkpoints are not held back).
    let watch = Connection::open_with_flags(&files.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("watch the queue");
    let mut sensors = Sensors::new();
    let window_ns = WINDOW.as_nanos() as i64;
    let mut week = Week {
        routine_in: HashMap::new(),
        routine_total: 0,
        events_in: Vec::new(),
        created: Vec::new(),
        high_water: HighWater::default(),
        counters_before_drain: BTreeMap::new(),
        fill_time: Duration::ZERO,
    };
    let mut aggregates_seen = 0i64;

    let seconds = DAYS * 86_400;
    for sec in 0..seconds {
        // Each event falls between two routine samples.
        if let Some(offset) = sensors.event_this_second() {
            clock.advance(offset);
            let (sensor, fields) = sensors.event();
            let stamp = keeper.stamp();
            let (set, _) = field_set(&fields);
            week.events_in.push(format!(
                "{} {} {}",
                device.keys[sensor],
                set.unwrap(),
                stamp.wall_ns
            ));
            recorder.accept(Message::Reading(Reading {
                sensor,
                kind: Kind::Event(EdgeName::Open),
                fields,
                stamp,
            }));
            clock.advance(Duration::from_secs(1) - offset);
        } else {
            clock.advance(Duration::from_secs(1));
        }
        let stamp = keeper.stamp();
        assert!(stamp.trusted);
        let window = stamp.wall_ns - stamp.wall_ns.rem_euclid(window_ns);
        for sensor in 0..SENSORS {
            let fields = sensors.routine(sensor, sec);
            recorder.accept(Message::Reading(Reading {
                sensor,
                kind: Kind::Routine,
                fields,
                stamp,
            }));
            *week.routine_in.entry((sensor, window)).or_default() += 1;
            week.routine_total += 1;
        }

        if (sec + 1) % COMMIT_EVERY == 0 || sec + 1 == seconds {
            recorder.commit();
            let day = sec as f64 / 86_400.0;
            check_the_files_against_the_budget(&mut recorder, files, &mut week.high_water, day);
            aggregates_seen =
                collect_new_aggregates(&mut recorder, &watch, aggregates_seen, &mut week, day);
        }
    }
    drop(watch);
    week.fill_time = started.elapsed();
    week.counters_before_drain = recorder.queue().counters().unwrap();
    week
}

fn open_recorder_with_retention(
    files: &QueueFiles,
    device: &Device,
    keeper: Arc<TimeKeeper>,
) -> Recorder {
    let policy = Policy {
        max_bytes: files.budget,
        max_age: Duration::from_secs(30 * 86_400),
        window: WINDOW,
    };
    Recorder::new(
        Queue::open(&files.db).unwrap(),
        &device.plan(),
        keeper,
        Duration::from_secs(COMMIT_EVERY as u64),
        Duration::from_secs(3600),
    )
    .unwrap()
    .with_retention(policy)
}

/// After a commit: the files within their slack, and the highest sizes so far.
fn check_the_files_against_the_budget(
    recorder: &mut Recorder,
    files: &QueueFiles,
    high_water: &mut HighWater,
    day: f64,
) {
    let (db_len, wal_len) = (file_len(&files.db), file_len(&files.wal));
    let stats = recorder.queue().stats().unwrap();
    high_water.db = high_water.db.max(db_len);
    high_water.wal = high_water.wal.max(wal_len);
    high_water.live = high_water.live.max(stats.bytes);
    if stats.bytes > files.budget {
        high_water.over_budget_commits += 1;
    }
    assert!(
        db_len <= db_file_limit(files.budget) && wal_len <= wal_file_limit(files.budget),
        "day {day:.2}: queue files over budget: db {db_len} (limit {}), wal {wal_len} (limit {}), live bytes {}",
        db_file_limit(files.budget),
        wal_file_limit(files.budget),
        stats.bytes
    );
}

/// Aggregates made by this commit's enforcement: the newest ones by id (thinning appends them
/// after everything it leaves). Returns the aggregate count seen so far.
fn collect_new_aggregates(
    recorder: &mut Recorder,
    watch: &Connection,
    aggregates_seen: i64,
    week: &mut Week,
    day: f64,
) -> i64 {
    let c = recorder.queue().counters().unwrap();
    let total = c.get("aggregates").copied().unwrap_or(0);
    let new = total - aggregates_seen;
    if new > 0 {
        let mut stmt = watch
            .prepare_cached(
                "SELECT s.key, r.time_ns, r.fields FROM readings r JOIN series s ON s.id = r.series
                 WHERE r.event = 2 ORDER BY r.id DESC LIMIT ?1",
            )
            .unwrap();
        let rows: Vec<Aggregate> = stmt
            .query_map([new], |r| {
                Ok(Aggregate {
                    series: r.get(0)?,
                    time_ns: r.get(1)?,
                    fields: r.get(2)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows.len() as i64,
            new,
            "day {day:.2}: {new} aggregates were counted but only {} are in the queue right after",
            rows.len()
        );
        week.created.extend(rows.into_iter().rev());
    }
    total
}

/// What the drain left behind and what the server received.
struct Drained {
    counters: BTreeMap<String, i64>,
    rows_left: i64,
    received: Vec<String>,
}

impl Drained {
    fn get(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// The network is back: the real uploader drains everything into a recording transport.
fn drain_after_the_network_returns(db: &Path, keeper: Arc<TimeKeeper>) -> Drained {
    let cfg: UploadConfig = toml::from_str(
        "url = \"http://127.0.0.1:9\"\napi = \"v1\"\ndatabase = \"d\"\nmax_points_per_second = 0",
    )
    .unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut uploader = Uploader::new(
        Queue::open(db).unwrap(),
        InfluxHttp::new(Endpoint::new(&cfg).unwrap(), Recording(received.clone())),
        &cfg,
        "offline-week",
        keeper,
    );
    loop {
        match uploader.step().unwrap() {
            Step::Sent(_) => {}
            Step::Idle => break,
            Step::Paused(p) => panic!("the recording transport never fails, yet: {p:?}"),
        }
    }
    let counters = uploader.queue().counters().unwrap();
    let rows_left = uploader.queue().stats().unwrap().depth;
    let received = received.lock().unwrap().clone();
    Drained {
        counters,
        rows_left,
        received,
    }
}

/// The figures of the run, on stderr.
fn report(week: &Week, drained: &Drained, started: Instant) {
    let created_count: i64 = week.created.iter().map(Aggregate::count).sum();
    let received_aggregates: Vec<i64> = drained
        .received
        .iter()
        .filter_map(|l| {
            let (head, _) = l.rsplit_once(' ')?;
            let (_, fields) = head.split_once(' ')?;
            aggregate_count(fields)
        })
        .collect();
    let h = &week.high_water;
    eprintln!(
        "offline week: {} routine readings + {} events in {:.1?} (total {:.1?}); \
         max live {} B, max db file {} B, max wal {} B, {} commit(s) over budget before enforcement; \
         {} aggregates created holding {created_count} readings ({} of them received, holding {} readings); {} lines received; counters before drain {:?}; after {:?}",
        week.routine_total,
        week.events_in.len(),
        week.fill_time,
        started.elapsed(),
        h.live,
        h.db,
        h.wal,
        h.over_budget_commits,
        week.created.len(),
        received_aggregates.len(),
        received_aggregates.iter().sum::<i64>(),
        drained.received.len(),
        week.counters_before_drain,
        drained.counters,
    );
}

/// What arrived, sorted: events, aggregates, raw routine readings per (sensor, window), and
/// how often each (series, timestamp) pair came.
struct Arrived<'a> {
    events_out: HashSet<&'a str>,
    aggregates_out: Vec<Aggregate>,
    routine_out: HashMap<(usize, i64), i64>,
    points: HashMap<(&'a str, &'a str), usize>,
}

fn sort_what_arrived<'a>(device: &Device, week: &Week, received: &'a [String]) -> Arrived<'a> {
    let window_ns = WINDOW.as_nanos() as i64;
    let event_set: HashSet<&str> = week.events_in.iter().map(String::as_str).collect();
    let mut arrived = Arrived {
        events_out: HashSet::new(),
        aggregates_out: Vec::new(),
        routine_out: HashMap::new(),
        points: HashMap::new(),
    };
    for line in received {
        let (head, time) = line.rsplit_once(' ').expect("a timestamp");
        let (key, fields) = head.split_once(' ').expect("a field set");
        *arrived.points.entry((key, time)).or_default() += 1;
        let time_ns: i64 = time.parse().unwrap();
        let sensor = *device
            .index_of
            .get(key)
            .unwrap_or_else(|| panic!("a line of an unknown series: {line}"));
        if event_set.contains(line.as_str()) {
            assert!(
                arrived.events_out.insert(line),
                "event received twice: {line}"
            );
        } else if aggregate_count(fields).is_some() {
            arrived.aggregates_out.push(Aggregate {
                series: key.to_string(),
                time_ns,
                fields: fields.to_string(),
            });
        } else {
            let window = time_ns - time_ns.rem_euclid(window_ns);
            *arrived.routine_out.entry((sensor, window)).or_default() += 1;
        }
    }
    arrived
}

fn assert_the_counters_add_up(week: &Week, drained: &Drained) {
    let get = |name: &str| drained.get(name);
    assert_eq!(drained.rows_left, 0, "the queue is empty after the drain");
    assert_eq!(get("queued"), 0, "`queued` gauge after the drain");
    assert_eq!(
        get("uploaded"),
        drained.received.len() as i64,
        "`uploaded` == lines the server received"
    );
    assert_eq!(
        get("sampled"),
        week.routine_total + week.events_in.len() as i64,
        "`sampled` == readings sent in"
    );
    assert_eq!(week.routine_total, 4_838_400);
    assert_eq!(get("dropped.expired"), 0, "nothing is older than max_age");
    assert_eq!(
        get("sampled") + get("aggregates"),
        get("uploaded")
            + get("dropped.thinned")
            + get("dropped.dropped_full")
            + get("dropped.expired"),
        "sampled + aggregates == uploaded + thinned + dropped_full + expired"
    );
}

fn assert_every_event_arrives_exactly(week: &Week, arrived: &Arrived) {
    let event_set: HashSet<&str> = week.events_in.iter().map(String::as_str).collect();
    let lost: Vec<&&str> = event_set
        .iter()
        .filter(|e| !arrived.events_out.contains(**e))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} events were not received, e.g. {:?}",
        lost.len(),
        event_set.len(),
        &lost[..lost.len().min(3)]
    );
}

/// What thinning created accounts for every thinned reading; every aggregate received is one
/// that was created; the rest were dropped and counted as such. Returns how many raw routine
/// readings were dropped.
fn assert_aggregates_account_for_every_thinned_reading(
    week: &Week,
    drained: &Drained,
    arrived: &Arrived,
) -> i64 {
    let get = |name: &str| drained.get(name);
    let created_count: i64 = week.created.iter().map(Aggregate::count).sum();
    let created_set: HashSet<String> = week.created.iter().map(Aggregate::line).collect();
    assert_eq!(
        week.created.len() as i64,
        get("aggregates"),
        "aggregates seen vs counted"
    );
    assert_eq!(
        created_count,
        get("dropped.thinned"),
        "sum of `count` over all aggregates == dropped.thinned"
    );
    for a in &arrived.aggregates_out {
        assert!(
            created_set.contains(&a.line()),
            "received an aggregate that was never seen in the queue: {a:?}"
        );
    }
    let aggregates_dropped = week.created.len() as i64 - arrived.aggregates_out.len() as i64;
    let raw_out: i64 = arrived.routine_out.values().sum();
    let raw_dropped = week.routine_total - raw_out - get("dropped.thinned");
    assert!(
        raw_dropped >= 0,
        "more routine readings accounted for ({raw_out} raw + {} thinned) than went in ({})",
        get("dropped.thinned"),
        week.routine_total
    );
    assert_eq!(
        get("dropped.dropped_full"),
        aggregates_dropped + raw_dropped,
        "dropped_full == aggregates dropped ({aggregates_dropped}) + raw routine readings dropped ({raw_dropped})"
    );
    raw_dropped
}

/// Window by window: every routine reading is received raw, folded into an aggregate of its
/// own series and window, or was dropped (dropped windows come first).
fn assert_every_window_is_covered(
    device: &Device,
    week: &Week,
    arrived: &Arrived,
    raw_dropped: i64,
) {
    let mut folded: HashMap<(usize, i64), i64> = HashMap::new();
    for a in &week.created {
        *folded
            .entry((device.index_of[a.series.as_str()], a.time_ns))
            .or_default() += a.count();
    }
    let mut uncovered = 0i64;
    let mut over: Vec<String> = Vec::new();
    for (&(sensor, window), &n) in &week.routine_in {
        let raw = arrived
            .routine_out
            .get(&(sensor, window))
            .copied()
            .unwrap_or(0);
        let agg = folded.get(&(sensor, window)).copied().unwrap_or(0);
        if raw + agg > n {
            over.push(format!(
                "{} window {window}: {n} in, {raw} raw + {agg} in aggregates",
                device.sensor_ids[sensor]
            ));
        }
        uncovered += (n - raw - agg).max(0);
    }
    assert!(
        over.is_empty(),
        "{} window(s) account for more readings than went in, e.g. {:?}",
        over.len(),
        &over[..over.len().min(3)]
    );
    assert_eq!(
        uncovered, raw_dropped,
        "readings neither received raw nor folded into an aggregate == raw routine readings dropped"
    );
    for sensor in 0..SENSORS {
        let first_raw = arrived
            .routine_out
            .keys()
            .filter(|(s, _)| *s == sensor)
            .map(|(_, w)| *w)
            .min();
        let mut windows: Vec<i64> = week
            .routine_in
            .keys()
            .filter(|(s, w)| *s == sensor && first_raw.is_none_or(|f| *w < f))
            .map(|(_, w)| *w)
            .collect();
        windows.sort();
        let received_cover = windows
            .iter()
            .filter(|w| {
                arrived
                    .aggregates_out
                    .iter()
                    .any(|a| a.series == device.keys[sensor] && a.time_ns == **w)
            })
            .count();
        let holes = windows
            .iter()
            .filter(|w| folded.get(&(sensor, **w)).copied().unwrap_or(0) == 0)
            .count();
        eprintln!(
            "  {}: {} window(s) before the first raw reading; {received_cover} covered by a received aggregate, {holes} with no aggregate ever made",
            device.sensor_ids[sensor],
            windows.len()
        );
        assert_eq!(
            holes, 0,
            "{}: every thinned window has an aggregate",
            device.sensor_ids[sensor]
        );
    }
}

/// InfluxDB keeps one point per series and timestamp: two different lines with the same pair
/// would silently replace each other.
fn assert_no_two_lines_share_series_and_timestamp(drained: &Drained, arrived: &Arrived) {
    let clashes: Vec<(&str, &str)> = arrived
        .points
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(point, _)| *point)
        .collect();
    if let Some((key, time)) = clashes.first() {
        let same: Vec<&String> = drained
            .received
            .iter()
            .filter(|l| l.starts_with(&format!("{key} ")) && l.ends_with(&format!(" {time}")))
            .collect();
        let aggregate_clashes = clashes
            .iter()
            .filter(|(k, t)| {
                arrived
                    .aggregates_out
                    .iter()
                    .filter(|a| a.series == *k && a.time_ns.to_string() == *t)
                    .count()
                    > 1
            })
            .count();
        panic!(
            "{} series+timestamp pair(s) were received more than once with different fields \
             ({aggregate_clashes} of them between aggregates of the same series and window); \
             InfluxDB keeps only the last line of each pair, so the others are lost there. E.g.\n{}",
            clashes.len(),
            same.iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
