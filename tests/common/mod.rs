//! What the end-to-end tests share: one real InfluxDB 1.x per test binary, a database per test,
//! the `fieldlink` binary under test, board files in temp directories, and exact views of what
//! the queue committed and what the server stored, in one comparable form ([`Point`]).
#![allow(dead_code)]

pub mod fault_server;

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// InfluxDB

/// The InfluxDB 1.x process of this test binary.
pub struct Influx {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub pid: u32,
    pub dir: PathBuf,
    agent: ureq::Agent,
}

static INFLUX: OnceLock<Influx> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The shared server, started on first use. It dies with the test binary (PR_SET_PDEATHSIG),
/// also when the binary is killed.
pub fn influx() -> &'static Influx {
    INFLUX.get_or_init(start_influx)
}

fn find_influxd() -> PathBuf {
    if let Some(path) = std::env::var_os("FIELDLINK_INFLUXD") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("influxd"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the end-to-end tests need InfluxDB 1.x's `influxd` on PATH (or FIELDLINK_INFLUXD=/path/to/influxd).\n\
             On Debian/Ubuntu: `sudo apt-get install --no-install-recommends influxdb`,\n\
             or run `scripts/test.sh` (as root it installs what is missing)."
        )
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Remove data directories left by test binaries that are gone (statics are never dropped, so
/// each run cleans up after the previous ones).
fn clean_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("influxd-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn start_influx() -> Influx {
    let influxd = find_influxd();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    clean_stale_dirs(&root);
    let dir = root.join(format!("influxd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the influxd directory");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();

    // Two free ports could be taken between probing and binding; try a few times.
    let mut last_log = String::new();
    for attempt in 0..3 {
        let (http, rpc) = (free_port(), free_port());
        let config = dir.join("influxdb.conf");
        std::fs::write(&config, influx_config(&dir, http, rpc)).expect("write influxdb.conf");
        let log_path = dir.join(format!("influxd-{attempt}.log"));
        let (pid, exited) = spawn_keeper(&influxd, &config, &log_path);
        let url = format!("http://127.0.0.1:{http}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !exited.load(Ordering::SeqCst) {
            let ping = agent.get(format!("{url}/ping")).call();
            if matches!(ping, Ok(ref r) if r.status().as_u16() == 204) {
                return Influx {
                    url,
                    pid,
                    dir,
                    agent,
                };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !exited.load(Ordering::SeqCst) {
            // Alive but not answering: give up on it.
            // SAFETY: kill(2) on the pid of our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    panic!(
        "influxd ({}) did not answer /ping with 204; its log:\n{last_log}",
        influxd.display()
    );
}

fn influx_config(dir: &Path, http: u16, rpc: u16) -> String {
    let d = dir.display();
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[shard-precreation]
  enabled = false

[retention]
  enabled = false
"#
    )
}

/// Start influxd from a thread that lives as long as the test binary: PR_SET_PDEATHSIG fires
/// when the *thread* that forked exits, so forking from a test's own thread would kill the
/// server at the end of the first test.
fn spawn_keeper(influxd: &Path, config: &Path, log: &Path) -> (u32, Arc<AtomicBool>) {
    let exited = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let shown = influxd.display().to_string();
    let (influxd, config, log) = (influxd.to_owned(), config.to_owned(), log.to_owned());
    let flag = exited.clone();
    std::thread::Builder::new()
        .name("influxd-keeper".into())
        .spawn(move || {
            let log = File::create(&log).expect("create the influxd log");
            let mut command = Command::new(&influxd);
            command
                .arg("-config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup the log file"))
                .stderr(log);
            die_with_parent(&mut command);
            match command.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(child.id()));
                    let _ = child.wait();
                    flag.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    flag.store(true, Ordering::SeqCst);
                    let _ = tx.send(Err(e));
                }
            }
        })
        .expect("spawn the influxd keeper thread");
    match rx.recv().expect("the keeper thread answers") {
        Ok(pid) => (pid, exited),
        Err(e) => panic!("cannot start {shown}: {e}"),
    }
}

/// Ask the kernel to SIGKILL the child when the thread that spawned it ends, so no influxd or
/// agent outlives a test binary that crashed or was killed.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                // The parent is already gone.
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// One result series of an InfluxQL query.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
}

impl Influx {
    /// A fresh database for one test, named after it (InfluxQL-safe characters only).
    pub fn create_database(&self, test: &str) -> String {
        let n = DATABASES.fetch_add(1, Ordering::SeqCst);
        let name: String = format!("{test}_{n}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.execute(&format!("CREATE DATABASE \"{name}\""));
        name
    }

    /// Run a statement that changes something (POST /query); panics on an error.
    pub fn execute(&self, influxql: &str) {
        let response = self
            .agent
            .post(format!("{}/query", self.url))
            .query("q", influxql)
            .send_empty();
        let text = read_answer(response, influxql);
        parse_results(&text, influxql);
    }

    /// Run a query with nanosecond epochs; every series of the first statement.
    pub fn query(&self, db: &str, influxql: &str) -> Vec<Series> {
        let response = self
            .agent
            .get(format!("{}/query", self.url))
            .query("db", db)
            .query("epoch", "ns")
            .query("q", influxql)
            .call();
        let text = read_answer(response, influxql);
        parse_results(&text, influxql)
    }

    /// Every point of every measurement in `db`, tags and fields as stored.
    pub fn points(&self, db: &str) -> Vec<Point> {
        let mut points = Vec::new();
        for series in self.query(db, "SELECT * FROM /.*/ GROUP BY *") {
            let time_col = series
                .columns
                .iter()
                .position(|c| c == "time")
                .expect("a time column");
            // GROUP BY * lists every tag key of the measurement; a series without one shows "".
            let tags: BTreeMap<String, String> = series
                .tags
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for row in &series.values {
                let mut fields = BTreeMap::new();
                for (i, value) in row.iter().enumerate() {
                    if i == time_col || value.is_null() {
                        continue;
                    }
                    fields.insert(series.columns[i].clone(), Field::from_json(value));
                }
                points.push(Point {
                    measurement: series.name.clone(),
                    tags: tags.clone(),
                    fields,
                    time_ns: row[time_col].as_i64().expect("an integer ns time"),
                });
            }
        }
        points.sort();
        points
    }

    /// Points of one measurement.
    pub fn points_of(&self, db: &str, measurement: &str) -> Vec<Point> {
        self.points(db)
            .into_iter()
            .filter(|p| p.measurement == measurement)
            .collect()
    }
}

fn read_answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>, q: &str) -> String {
    let mut response = response.unwrap_or_else(|e| panic!("InfluxDB query `{q}`: {e}"));
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("InfluxDB query `{q}`: reading the answer: {e}"));
    assert!(
        (200..300).contains(&status),
        "InfluxDB query `{q}`: HTTP {status}: {text}"
    );
    text
}

fn parse_results(text: &str, q: &str) -> Vec<Series> {
    let json: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("`{q}`: not JSON ({e}): {text}"));
    if let Some(error) = json.get("error") {
        panic!("InfluxDB query `{q}`: {error}");
    }
    let result = &json["results"][0];
    if let Some(error) = result.get("error") {
        panic!("InfluxDB query `{q}`: {error}");
    }
    let Some(series) = result.get("series").and_then(Value::as_array) else {
        return Vec::new();
    };
    series
        .iter()
        .map(|s| Series {
            name: s["name"].as_str().unwrap_or_default().to_string(),
            tags: s
                .get("tags")
                .and_then(Value::as_object)
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            columns: s["columns"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            values: s["values"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| r.as_array().cloned().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Points: what a line says, and what the server stored, in one comparable shape

/// A field value as both sides can express it. InfluxDB 1.x answers JSON, where `21.0` and
/// `21i` both come back as `21`, so numbers compare by value (written in Rust's shortest
/// round-trip form), not by type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Num(String),
    Bool(bool),
    Str(String),
}

impl Field {
    fn num(value: f64) -> Field {
        Field::Num(format!("{value}"))
    }

    fn from_json(value: &Value) -> Field {
        match value {
            Value::Bool(b) => Field::Bool(*b),
            Value::String(s) => Field::Str(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Field::num(i as f64),
                None => Field::num(n.as_f64().expect("a number")),
            },
            other => panic!("unexpected field value {other}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub time_ns: i64,
    pub fields: BTreeMap<String, Field>,
}

/// Parse one line of line protocol (as fieldlink writes it: explicit timestamp). Written from
/// the InfluxDB docs, independently of the crate's own writer, so it can check that writer.
pub fn parse_line(line: &str) -> Point {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    // Read until an unescaped delimiter; `\` escapes only the listed characters (and itself in
    // string fields), otherwise it is literal.
    let read_token = |i: &mut usize, stops: &[char], escapable: &[char]| -> String {
        let mut out = String::new();
        while *i < chars.len() && !stops.contains(&chars[*i]) {
            if chars[*i] == '\\' && *i + 1 < chars.len() && escapable.contains(&chars[*i + 1]) {
                out.push(chars[*i + 1]);
                *i += 2;
            } else {
                out.push(chars[*i]);
                *i += 1;
            }
        }
        out
    };
    let measurement = read_token(&mut i, &[',', ' '], &[',', ' ', '\\']);
    let mut tags = BTreeMap::new();
    while i < chars.len() && chars[i] == ',' {
        i += 1;
        let key = read_token(&mut i, &['='], &[',', '=', ' ']);
        i += 1;
        let value = read_token(&mut i, &[',', ' '], &[',', '=', ' ']);
        tags.insert(key, value);
    }
    assert_eq!(chars.get(i), Some(&' '), "no field set in `{line}`");
    i += 1;
    let mut fields = BTreeMap::new();
    loop {
        let key = read_token(&mut i, &['='], &[',', '=', ' ']);
        i += 1;
        let value = if chars.get(i) == Some(&'"') {
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && matches!(chars.get(i + 1), Some('"') | Some('\\')) {
                    s.push(chars[i + 1]);
                    i += 2;
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            i += 1;
            Field::Str(s)
        } else {
            let raw = read_token(&mut i, &[',', ' '], &[]);
            match raw.as_str() {
                "t" | "T" | "true" | "True" | "TRUE" => Field::Bool(true),
                "f" | "F" | "false" | "False" | "FALSE" => Field::Bool(false),
                _ if raw.ends_with('i') || raw.ends_with('u') => Field::num(
                    raw[..raw.len() - 1]
                        .parse::<i128>()
                        .unwrap_or_else(|_| panic!("bad integer `{raw}` in `{line}`"))
                        as f64,
                ),
                _ => Field::num(
                    raw.parse::<f64>()
                        .unwrap_or_else(|_| panic!("bad float `{raw}` in `{line}`")),
                ),
            }
        };
        fields.insert(key, value);
        match chars.get(i) {
            Some(',') => i += 1,
            Some(' ') => break,
            other => panic!("unexpected {other:?} after a field in `{line}`"),
        }
    }
    i += 1;
    let time: String = chars[i..].iter().collect();
    Point {
        measurement,
        tags,
        fields,
        time_ns: time
            .parse()
            .unwrap_or_else(|_| panic!("bad timestamp `{time}` in `{line}`")),
    }
}

pub fn parse_lines<S: AsRef<str>>(lines: &[S]) -> Vec<Point> {
    let mut points: Vec<Point> = lines.iter().map(|l| parse_line(l.as_ref())).collect();
    points.sort();
    points
}

/// Points in `expected` that `actual` lacks, for a readable failure.
pub fn missing(expected: &[Point], actual: &[Point]) -> Vec<Point> {
    let have: std::collections::BTreeSet<&Point> = actual.iter().collect();
    expected
        .iter()
        .filter(|p| !have.contains(p))
        .cloned()
        .collect()
}

/// Assert every expected point is present, showing a few of the missing ones and, for the
/// first, the stored points of the same series near its time.
pub fn assert_all_present(expected: &[Point], actual: &[Point], what: &str) {
    let gone = missing(expected, actual);
    if gone.is_empty() {
        return;
    }
    let near: Vec<&Point> = actual
        .iter()
        .filter(|p| p.measurement == gone[0].measurement && p.tags == gone[0].tags)
        .filter(|p| (p.time_ns - gone[0].time_ns).abs() < 1_000_000_000)
        .take(3)
        .collect();
    panic!(
        "{what}: {} of {} expected points are missing from InfluxDB ({} stored).\nFirst missing: {:#?}\nStored near it in the same series: {near:#?}\nMore missing: {:#?}",
        gone.len(),
        expected.len(),
        actual.len(),
        gone[0],
        &gone[1..gone.len().min(4)],
    );
}

// ---------------------------------------------------------------------------------------------
// The queue file

/// Every waiting reading as its exact line, `series.key fields time_ns`, in queue order.
pub fn read_queue_lines(path: &Path) -> Vec<String> {
    let conn = open_queue(path);
    let mut stmt = conn
        .prepare(
            "SELECT s.key, r.fields, r.time_ns FROM readings r JOIN series s ON s.id = r.series ORDER BY r.id",
        )
        .expect("prepare the readings query");
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?
            ))
        })
        .expect("query readings");
    rows.collect::<Result<_, _>>().expect("read readings")
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

// ---------------------------------------------------------------------------------------------
// Board files

/// Quote a string as a TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn inline_table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

#[derive(Debug, Clone)]
pub struct Sensor {
    pub id: String,
    pub kind: String,
    pub interval: String,
    pub measurement: Option<String>,
    pub tags: Vec<(String, String)>,
    pub seed: Option<u64>,
}

impl Sensor {
    pub fn new(id: &str, kind: &str) -> Sensor {
        Sensor {
            id: id.into(),
            kind: kind.into(),
            interval: "50ms".into(),
            measurement: None,
            tags: Vec::new(),
            seed: Some(7),
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Sensor {
        self.tags.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub url: String,
    pub api: String,
    pub database: String,
    pub batch_lines: usize,
    pub timeout: String,
    /// Extra `key = value` lines for `[upload]`.
    pub extra: Vec<String>,
}

/// A board file, written as TOML.
#[derive(Debug, Clone)]
pub struct Board {
    pub device_id: String,
    pub tags: Vec<(String, String)>,
    pub sensors: Vec<Sensor>,
    pub queue: PathBuf,
    pub commit_interval: String,
    pub upload: Option<Upload>,
}

impl Board {
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("[device]\nid = {}\n\n", toml_str(&self.device_id)));
        if !self.tags.is_empty() {
            out.push_str("[tags]\n");
            for (k, v) in &self.tags {
                out.push_str(&format!("{} = {}\n", toml_str(k), toml_str(v)));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "[queue]\npath = {}\ncommit_interval = {}\n\n",
            toml_str(&self.queue.to_string_lossy()),
            toml_str(&self.commit_interval)
        ));
        if let Some(u) = &self.upload {
            out.push_str(&format!(
                "[upload]\nurl = {}\napi = {}\ndatabase = {}\nbatch_lines = {}\nstart_delay_max = \"0s\"\nmax_points_per_second = 0\ntimeout = {}\n",
                toml_str(&u.url),
                toml_str(&u.api),
                toml_str(&u.database),
                u.batch_lines,
                toml_str(&u.timeout),
            ));
            for line in &u.extra {
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        for s in &self.sensors {
            out.push_str(&format!(
                "[[sensor]]\nid = {}\nkind = {}\ninterval = {}\n",
                toml_str(&s.id),
                toml_str(&s.kind),
                toml_str(&s.interval)
            ));
            if let Some(m) = &s.measurement {
                out.push_str(&format!("measurement = {}\n", toml_str(m)));
            }
            if let Some(seed) = s.seed {
                out.push_str(&format!("seed = {seed}\n"));
            }
            if !s.tags.is_empty() {
                out.push_str(&format!("tags = {}\n", inline_table(&s.tags)));
            }
            out.push('\n');
        }
        out
    }
}

/// A temp directory holding one device: its board file, queue and the agent's logs. Set
/// `FIELDLINK_KEEP_TMP=1` to keep it for a post-mortem.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub board_path: PathBuf,
    pub queue: PathBuf,
}

impl Site {
    pub fn new(test: &str) -> Site {
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("fieldlink-{test}-"))
            .tempdir()
            .expect("create a temp dir");
        if std::env::var_os("FIELDLINK_KEEP_TMP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let board_path = dir.path().join("board.toml");
        let queue = dir.path().join("queue.db");
        Site {
            dir,
            board_path,
            queue,
        }
    }

    /// Three simulated sensors at 50 ms, a 200 ms commit window, no upload.
    pub fn board(&self) -> Board {
        Board {
            device_id: "e2e-device".into(),
            tags: vec![("site".into(), "lab".into())],
            sensors: vec![
                Sensor::new("climate-1", "simulated_climate").tag("room", "cold store"),
                Sensor::new("motion-1", "simulated_motion"),
                Sensor::new("door-1", "simulated_door"),
            ],
            queue: self.queue.clone(),
            commit_interval: "200ms".into(),
            upload: None,
        }
    }

    pub fn write(&self, board: &Board) -> &Path {
        std::fs::write(&self.board_path, board.to_toml()).expect("write the board file");
        &self.board_path
    }

    /// Start `fieldlink run` on this site's board; its stderr goes to `run-<n>.log` here.
    pub fn run(&self) -> Agent {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
                    .count()
            })
            .unwrap_or(0);
        let log = self.dir.path().join(format!("run-{n}.log"));
        let stderr = File::create(&log).expect("create the agent log");
        let mut command = fieldlink();
        command
            .args(["run", "--board"])
            .arg(&self.board_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        die_with_parent(&mut command);
        let child = command.spawn().expect("start fieldlink run");
        Agent {
            child: Some(child),
            log,
        }
    }

    /// Run a one-shot subcommand (`status`, `sync`, …) on this site's board.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = fieldlink();
        command.args(args).arg("--board").arg(&self.board_path);
        output_within(command, Duration::from_secs(90))
    }

    /// `fieldlink status --format json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.cli(&["status", "--format", "json"]);
        assert!(
            out.status.success(),
            "fieldlink status failed: {}",
            describe(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", describe(&out)))
    }

    /// `fieldlink sync`, which must succeed.
    pub fn sync(&self) -> Output {
        let out = self.cli(&["sync", "--timeout", "30s"]);
        assert!(
            out.status.success(),
            "fieldlink sync failed: {}",
            describe(&out)
        );
        out
    }
}

/// The binary under test, with a quiet, predictable environment.
pub fn fieldlink() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fieldlink"));
    command
        .env("FIELDLINK_LOG", "info")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM");
    command
}

/// Run to completion, killing it (and failing) after `limit`.
pub fn output_within(mut command: Command, limit: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut command);
    let child = command.spawn().expect("start fieldlink");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for fieldlink"),
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let out = rx.recv().expect("the waiter answers").expect("wait");
            panic!(
                "{command:?} did not finish within {limit:?}: {}",
                describe(&out)
            );
        }
    }
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running `fieldlink run`; killed with SIGKILL if the test lets go of it.
pub struct Agent {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Agent {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Send `signal` and wait up to `limit`; the exit status and how long it took. Panics (with
    /// the agent's log) if it is still running after `limit`.
    pub fn stop(mut self, signal: i32, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("a running agent");
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid, not reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
        loop {
            if let Some(status) = child.try_wait().expect("wait for the agent") {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "fieldlink run did not exit within {limit:?} of signal {signal}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then insist on a clean exit 0 within 5 s.
    pub fn terminate(self) -> Duration {
        let log = self.log.clone();
        let (status, took) = self.stop(libc::SIGTERM, Duration::from_secs(5));
        assert!(
            status.success(),
            "fieldlink run exited with {status} after SIGTERM; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        took
    }

    /// kill -9: no chance to flush anything.
    pub fn kill9(self) {
        let (status, _) = self.stop(libc::SIGKILL, Duration::from_secs(5));
        assert!(!status.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Poll `check` every 20 ms until it returns `Some`, or panic with `what` after `limit`.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
