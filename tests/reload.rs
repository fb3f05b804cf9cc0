//! SIGHUP on the real binary: a valid new board file takes effect in the same process without
//! losing a pending reading; an invalid one is logged with file:line:key and the running board
//! stays; SIGTERM and SIGINT still stop it cleanly afterwards.

mod common;

use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn hangup(agent: &Agent) {
    // SAFETY: kill(2) on our own child, not reaped yet.
    assert_eq!(unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) }, 0);
}

/// The queued lines of one sensor.
fn of_sensor<'a>(lines: &'a [String], sensor: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|l| {
            l.contains(&format!("sensor_id={sensor} "))
                || l.contains(&format!("sensor_id={sensor},"))
        })
        .collect()
}

fn time_ns(line: &str) -> i64 {
    line.rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_valid_board_takes_over_on_sighup_and_no_pending_reading_is_lost() {
    let site = Site::new("reload-valid");
    let mut board = site.board();
    // A window longer than the test: everything sampled before SIGHUP is still pending then.
    board.commit_interval = "1h".into();
    site.write(&board);
    let mut agent = site.run();
    let started_ns = now_ns();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        read_queue_lines_or_none(&site).is_empty(),
        "nothing committed yet"
    );
    board.tags.push(("reload".into(), "2".into()));
    board
        .sensors
        .push(Sensor::new("climate-2", "simulated_climate"));
    site.write(&board);
    let hangup_ns = now_ns();
    hangup(&agent);
    // The same process starts afresh (same PID) and says so once more.
    wait_until(Duration::from_secs(20), "the fresh start", || {
        (agent.log_text().matches(" running: device").count() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1000));
    // The fresh start watches for SIGHUP again.
    hangup(&agent);
    wait_until(Duration::from_secs(20), "the second fresh start", || {
        (agent.log_text().matches(" running: device").count() == 3).then_some(())
    });
    assert!(agent.is_running(), "{}", agent.log_text());
    let log = agent.log_text();
    assert!(log.contains("reloading"), "{log}");
    agent.terminate();
    let lines = read_queue_lines(&site.queue);
    let before: Vec<_> = of_sensor(&lines, "climate-1")
        .into_iter()
        .filter(|l| time_ns(l) < hangup_ns)
        .collect();
    // 50 ms readings for the 1.5 s before SIGHUP (less the start-up time of a debug build).
    let expected = ((hangup_ns - started_ns) / 50_000_000) as usize;
    assert!(
        before.len() * 2 >= expected && before.iter().all(|l| !l.contains("reload=2")),
        "{} of ~{expected} readings sampled before SIGHUP were kept: {before:?}",
        before.len()
    );
    let new_sensor = of_sensor(&lines, "climate-2");
    assert!(
        !new_sensor.is_empty(),
        "the added sensor samples: {lines:?}"
    );
    assert!(
        new_sensor.iter().all(|l| l.contains("reload=2")),
        "new readings carry the new tag: {new_sensor:?}"
    );
}

fn read_queue_lines_or_none(site: &Site) -> Vec<String> {
    try_read_queue_lines(&site.queue).unwrap_or_default()
}

#[test]
fn an_invalid_board_on_sighup_is_logged_with_file_line_and_key_and_the_old_board_stays() {
    let site = Site::new("reload-invalid");
    let board = site.board();
    site.write(&board);
    let mut agent = site.run();
    wait_until(Duration::from_secs(10), "first commit", || {
        (!read_queue_lines_or_none(&site).is_empty()).then_some(())
    });
    let mut broken = board.clone();
    broken.sensors[0].interval = "soon".into();
    site.write(&broken);
    hangup(&agent);
    let text = std::fs::read_to_string(&site.board_path).expect("read the board");
    let line = 1 + text
        .lines()
        .position(|l| l == "interval = \"soon\"")
        .expect("the broken line");
    let place = format!(
        "{}:{line}: key `sensor.interval`",
        site.board_path.display()
    );
    let logged = wait_until(Duration::from_secs(10), "the refusal in the log", || {
        let log = agent.log_text();
        log.lines()
            .find(|l| l.contains("reload refused"))
            .map(str::to_string)
    });
    assert!(logged.contains(&place), "{logged}");
    assert!(
        logged.starts_with("<3>") || logged.contains("ERROR"),
        "{logged}"
    );
    let seen = read_queue_lines(&site.queue).len();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(agent.is_running(), "{}", agent.log_text());
    assert!(
        read_queue_lines(&site.queue).len() > seen,
        "the old board keeps sampling"
    );
    let (status, _) = agent.stop(libc::SIGINT, Duration::from_secs(5));
    assert!(status.success(), "SIGINT still stops it cleanly: {status}");
}
