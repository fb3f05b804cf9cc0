//! `sync` says what became of the readings: a server that refuses every line leaves them all
//! dead-lettered, and sync must not call that "uploaded".

mod emulator;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn fieldlink() -> Command {
    let mut command = emulator::fieldlink_command();
    command
        .env_remove("FIELDLINK_BOARD")
        .env_remove("JOURNAL_STREAM")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC");
    command
}

fn write_board(dir: &Path, name: &str, upload: &str) -> String {
    let text = format!(
        "[device]\nid = \"sync-1\"\n[[sensor]]\nid = \"t1\"\nkind = \"simulated_climate\"\n\
         interval = \"10ms\"\n[queue]\npath = \"{}\"\ncommit_interval = \"100ms\"\n{upload}",
        dir.join("queue.db").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).expect("board written");
    path.to_string_lossy().into_owned()
}

/// An InfluxDB 1.x stand-in that refuses every request as unparsable (400).
fn refusing_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = r#"{"error":"unable to parse: bad timestamp"}"#;
            let reply = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = reader.get_mut().write_all(reply.as_bytes());
        }
    });
    url
}

#[test]
fn sync_counts_refused_readings_as_dead_lettered_not_uploaded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let offline = write_board(dir.path(), "offline.toml", "");
    let mut agent = fieldlink()
        .args(["run", "--board", &offline])
        .stderr(Stdio::null())
        .spawn()
        .expect("agent starts");
    std::thread::sleep(Duration::from_millis(800));
    let stopped = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    assert!(agent.wait().expect("agent ends").success());

    let upload = format!(
        "[upload]\nurl = \"{}\"\napi = \"v1\"\ndatabase = \"iot\"\n",
        refusing_server()
    );
    let online = write_board(dir.path(), "online.toml", &upload);
    let output = fieldlink()
        .args(["sync", "--timeout", "30s", "--board", &online])
        .output()
        .expect("sync runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 reading(s) uploaded, "),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains(" still queued"), "{stdout}");
    let dead: usize = stdout
        .split("uploaded, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(dead > 0, "{stdout}");
    assert!(stdout.contains("0 still queued"), "{stdout}");
}
