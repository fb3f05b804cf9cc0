//! `sync` beside a running agent asks the agent to drain instead of draining the same queue
//! itself: every line reaches the server exactly once.

mod common;

use common::fault_server::{FaultServer, Script};
use common::{describe, read_queue_counters, wait_until, Site, Upload};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn sync_beside_a_running_agent_asks_it_to_drain_reports_progress_and_nothing_is_sent_twice() {
    // Unreachable at first: the agent is told to come back in ten minutes.
    let server = FaultServer::start(Script::status(503).header("Retry-After", "600"));
    let site = Site::new("sync-beside-agent");
    let mut board = site.board();
    board.upload = Some(Upload {
        url: server.url(),
        api: "v1".into(),
        database: "d".into(),
        batch_lines: 40,
        timeout: "2s".into(),
        extra: Vec::new(),
    });
    site.write(&board);
    let agent = site.run();
    server.wait_for(Duration::from_secs(30), |r| !r.is_empty());
    wait_until(Duration::from_secs(60), "a backlog of 300 readings", || {
        (site.status()["depth"].as_i64() >= Some(300)).then_some(())
    });

    // Reachable now; each answer takes a while, so a second drainer would overlap the agent.
    server.set_default(Script::ok().delay(Duration::from_millis(20)));
    let out = site.cli(&["sync", "--timeout", "60s"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{}", describe(&out));
    // The agent's lock file names it.
    let lock = std::fs::read_to_string(site.dir.path().join("queue.db.lock")).unwrap();
    let pid = format!("pid {}", lock.trim());
    assert!(
        stderr.contains(&pid) && stderr.contains("holds the queue"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" of ") && stderr.contains("sent "),
        "{stderr}"
    );
    assert!(
        stdout.starts_with("queue drained by the running agent"),
        "{stdout}"
    );
    assert!(
        agent.log_text().contains("drain requested"),
        "{}",
        agent.log_text()
    );
    agent.terminate();

    let accepted = server.accepted();
    let unique: HashSet<&String> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "lines sent twice");
    let counters = read_queue_counters(&site.queue);
    assert_eq!(accepted.len() as i64, counters["uploaded"]);
    assert!(accepted.len() >= 300, "{}", accepted.len());
}
