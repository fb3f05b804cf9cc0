//! The InfluxDB 1.x process of a test binary and the queries the tests ask it: one server per
//! binary, started on first use, a fresh database per test, and what a database stores as
//! comparable [`Point`]s.

use super::line_protocol::{Field, Point};
use super::process::die_with_parent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// The InfluxDB 1.x process of this test binary.
pub struct Influx {
    /// `http://127.0.0.1:<port>`
    pub url: String,
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
                return Influx { url, agent };
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
