//! Boards that `check` used to pass and `run` (or InfluxDB) then failed on are refused at load,
//! which `check`, `run` and a reload share, with the key and the reason.

use super::{Board, ConfigError};

const CLIMATE: &str = "[[sensor]]\nid = \"T1\"\nkind = \"simulated_climate\"\n";
const UPLOAD: &str = "[upload]\napi = \"v1\"\ndatabase = \"iot\"\n";

fn load_in(dir: &std::path::Path, text: &str) -> Result<Board, ConfigError> {
    let path = dir.join("board.toml");
    std::fs::write(&path, text).unwrap();
    Board::load(&path)
}

fn load(text: &str) -> Result<Board, ConfigError> {
    load_in(tempfile::tempdir().unwrap().path(), text)
}

/// The error for `text`, which must name `key` and say `reason`.
fn refused(text: &str, key: &str, reason: &str) {
    let err = load(text).expect_err(text).to_string();
    assert!(err.contains(&format!("key `{key}`")), "{err}");
    assert!(err.contains(reason), "{err}");
}

fn with_url(url: &str) -> String {
    format!("{CLIMATE}{UPLOAD}url = \"{url}\"\n")
}

#[test]
fn values_the_agent_cannot_run_with_are_refused_at_their_key() {
    let queue = |line: &str| format!("{CLIMATE}[queue]\n{line}\n");
    refused(
        &queue("commit_interval = \"0s\""),
        "queue.commit_interval",
        "at least \"100ms\"",
    );
    refused(
        &queue("max_bytes = \"4KiB\""),
        "queue.max_bytes",
        "at least \"1MiB\"",
    );
    refused(&queue("path = \"\""), "queue.path", "temporary database");
    let upload = format!("{}timeout = \"0s\"\n", with_url("http://localhost:8086"));
    refused(&upload, "upload.timeout", "at least \"1s\"");
    refused(
        &format!("{CLIMATE}interval = \"400d\"\n"),
        "sensor[0].interval",
        "at most \"24h\"",
    );
}

#[test]
fn urls_the_agent_cannot_post_to_are_refused() {
    refused(&with_url("http://[::1"), "upload.url", "closing `]`");
    refused(&with_url("http://host:99999"), "upload.url", "port `99999`");
    refused(&with_url("http://host:0"), "upload.url", "port `0`");
    refused(&with_url("http://host:8086/?db=x"), "upload.url", "query");
    refused(&with_url("http://:8086"), "upload.url", "no host");
    assert!(load(&with_url("http://[::1]:8086/influx")).is_ok());
}

#[test]
fn credentials_in_the_url_are_refused_and_never_shown() {
    let err = load(&with_url("http://user:s3cret@example.org:8086"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `upload.url`"), "{err}");
    assert!(err.contains("`token_env` or `token_file`"), "{err}");
    assert!(err.contains("http://***@example.org:8086"), "{err}");
    assert!(!err.contains("s3cret") && !err.contains("user"), "{err}");
    assert_eq!(super::redact_url("https://a:b@h/p@x"), "https://***@h/p@x");
}

#[test]
fn credentials_in_a_broker_url_are_never_shown() {
    let text = format!("{CLIMATE}[upload]\nurl = \"mqtt://user:s3cret@broker:1883\"\n");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("key `upload.url`"), "{err}");
    assert!(err.contains("mqtt://***@broker:1883"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_token_file_with_a_line_break_inside_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "abc\ndef\n").unwrap();
    let text = format!(
        "{}token_file = \"token\"\n",
        with_url("http://localhost:8086")
    );
    let err = load_in(dir.path(), &text).unwrap_err().to_string();
    assert!(err.contains("key `upload.token_file`"), "{err}");
    assert!(err.contains("more than one line"), "{err}");
}

#[test]
fn a_missing_or_unparsable_ca_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}ca_file = \"ca.pem\"\n", with_url("https://example.org"));
    let err = load_in(dir.path(), &text).unwrap_err().to_string();
    assert!(
        err.contains("key `upload.ca_file`") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    let err = load_in(dir.path(), &text).unwrap_err().to_string();
    assert!(err.contains("no PEM certificate"), "{err}");
}

#[test]
fn names_and_tags_influxdb_would_store_wrongly_are_refused() {
    let sensor = |line: &str| format!("{CLIMATE}{line}\n");
    refused(
        &sensor("measurement = \"#m\""),
        "sensor[0].measurement",
        "comment",
    );
    refused(
        &sensor("measurement = 'm\\'"),
        "sensor[0].measurement",
        "backslash",
    );
    refused(
        &sensor("measurement = \"a\\nb\""),
        "sensor[0].measurement",
        "line break",
    );
    refused(
        &sensor("measurement = \"a\\tb\""),
        "sensor[0].measurement",
        "tab",
    );
    refused(
        &sensor("measurement = 'a\\\\b'"),
        "sensor[0].measurement",
        "two in a row",
    );
    refused(
        &sensor("tags = { time = \"x\" }"),
        "sensor[0].tags.time",
        "`time`",
    );
    refused(
        &sensor("tags = { sensor_id = \"x\" }"),
        "sensor[0].tags.sensor_id",
        "set by fieldlink",
    );
    let device = |id: &str| format!("[device]\nid = '{id}'\n{CLIMATE}");
    refused(&device(""), "device.id", "expected a device id");
    refused(&device("pi\\"), "device.id", "backslash");
    refused(
        &format!("[tags]\ndevice_id = \"x\"\n{CLIMATE}"),
        "tags.device_id",
        "set by fieldlink",
    );
    refused(
        &format!("[tags]\nk = 'a\\=b'\n{CLIMATE}"),
        "tags.k",
        "backslash",
    );
}

#[test]
fn relative_paths_are_taken_from_the_board_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0k3n\n").unwrap();
    let text = format!(
        "[[sensor]]\nid = \"cpu\"\nkind = \"soc_temp\"\npath = \"sys/temp\"\n\
         [queue]\npath = \"data/queue.db\"\n{}token_file = \"token\"\n",
        with_url("http://localhost:8086")
    );
    let board = load_in(dir.path(), &text).unwrap();
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(board.queue.path, Some(base.join("data/queue.db")));
    let upload = board.upload.unwrap();
    assert_eq!(upload.token_file, Some(base.join("token")));
    assert_eq!(
        board.sensors[0].kind,
        super::SensorKind::Sysfs(super::SysfsSettings::SocTemp {
            path: Some(base.join("sys/temp"))
        })
    );
}
