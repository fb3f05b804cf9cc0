//! systemd's notify protocol on the real binary, through a datagram socket the test binds as
//! `NOTIFY_SOCKET`: READY=1, WATCHDOG=1 pings at half of `WATCHDOG_USEC`, a STATUS line that
//! says what the agent is doing, and no more pings once a worker hangs.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A watchdog of one second: pings every half second.
const WATCHDOG_USEC: &str = "1000000";

/// `fieldlink run` under a fake systemd; killed if the test lets go of it.
struct Supervised {
    child: Child,
    socket: UnixDatagram,
    log: std::path::PathBuf,
}

impl Supervised {
    fn start(site: &Site) -> Supervised {
        let path = site.dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let log = site.dir.path().join("run.log");
        let mut command = fieldlink();
        command
            .args(["run", "--board"])
            .arg(&site.board_path)
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", WATCHDOG_USEC)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"));
        die_with_parent(&mut command);
        let child = command.spawn().expect("start fieldlink run");
        Supervised { child, socket, log }
    }

    /// Every message systemd would get during `span`.
    fn messages_for(&self, span: Duration) -> Vec<(Duration, String)> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some(left) = span.checked_sub(start.elapsed()) {
            let wait = left.max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait)).expect("timeout");
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                out.push((start.elapsed(), text));
            }
        }
        out
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_healthy_agent_says_ready_pings_the_watchdog_and_says_what_it_is_doing() {
    let site = Site::new("watchdog-healthy");
    site.write(&site.board());
    let mut agent = Supervised::start(&site);
    let first = agent.messages_for(Duration::from_secs(3));
    let texts: Vec<&str> = first.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        texts.first(),
        Some(&"READY=1\nSTATUS=sampling"),
        "{texts:?}"
    );
    let pings = texts
        .iter()
        .filter(|m| m.starts_with("WATCHDOG=1\n"))
        .count();
    assert!((4..=7).contains(&pings), "{pings} pings in 3 s: {texts:?}");
    assert!(
        texts.iter().skip(1).all(|m| m.contains("STATUS=sampling")),
        "{texts:?}"
    );
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let last = agent.messages_for(Duration::from_secs(2));
    assert!(
        last.iter().any(|(_, m)| m.starts_with("STOPPING=1")),
        "{last:?}"
    );
    let status = agent.child.wait().expect("wait");
    assert!(status.success(), "{status}: {}", agent.log_text());
}

/// A sysfs file that blocks its reader forever, like a wedged kernel driver: a FIFO nobody
/// writes to.
fn wedged_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("temp");
    let c_path = std::ffi::CString::new(path.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: mkfifo reads the NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    path
}

#[test]
fn a_sampler_hung_in_a_sensor_read_stops_the_watchdog_pings_and_the_status_says_so() {
    let site = Site::new("watchdog-hang");
    let wedged = wedged_file(site.dir.path());
    let board = format!(
        "{}[[sensor]]\nid = \"soc\"\nkind = \"soc_temp\"\ninterval = \"1s\"\npath = {}\n",
        site.board().to_toml(),
        toml_str(&wedged.to_string_lossy())
    );
    std::fs::write(&site.board_path, board).expect("write the board");
    let agent = Supervised::start(&site);
    let messages = agent.messages_for(Duration::from_secs(4));
    assert!(
        messages
            .first()
            .is_some_and(|(_, m)| m.starts_with("READY=1")),
        "{messages:?}"
    );
    let late_pings: Vec<_> = messages
        .iter()
        .filter(|(at, m)| *at > Duration::from_millis(1500) && m.starts_with("WATCHDOG=1"))
        .collect();
    assert!(late_pings.is_empty(), "pings went on: {messages:?}");
    assert!(
        messages
            .iter()
            .any(|(_, m)| m == "STATUS=stalled: sampler; watchdog pings stopped"),
        "{messages:?}"
    );
    assert!(
        agent.log_text().contains("no progress from sampler"),
        "{}",
        agent.log_text()
    );
}
