//! A queue file damaged under a running agent: the agent sets it aside, salvages it, and goes
//! on sampling and uploading without losing what it held in memory.

mod common;

use common::fault_server::{FaultServer, Script};
use common::{read_queue_counters, wait_until, Site, Upload};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAGE: u64 = 1024;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Overwrite whole pages at these fractions of the file with 0xFF, as a failing card would.
fn garble(path: &Path, fractions: &[f64]) {
    let pages = std::fs::metadata(path).unwrap().len() / PAGE;
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for f in fractions {
        let page = ((pages as f64 * f) as u64).max(12);
        file.seek(SeekFrom::Start(page * PAGE)).unwrap();
        file.write_all(&[0xFF; PAGE as usize]).unwrap();
    }
    file.sync_all().unwrap();
}

fn corrupt_copies(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("queue.db.corrupt-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .count()
}

/// Sampling times of the climate sensor's lines the server accepted, sorted.
fn climate_times(server: &FaultServer) -> Vec<i64> {
    let mut times: Vec<i64> = server
        .accepted()
        .iter()
        .filter(|l| l.contains("sensor_id=climate-1"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    times.sort_unstable();
    times
}

#[test]
fn a_queue_garbled_under_a_running_agent_is_set_aside_salvaged_and_sampling_goes_on_without_a_gap()
{
    let server = FaultServer::start(Script::status(503).header("Retry-After", "1"));
    let site = Site::new("corrupt-while-running");
    let mut board = site.board();
    board.upload = Some(Upload {
        url: server.url(),
        api: "v1".into(),
        database: "d".into(),
        batch_lines: 100,
        timeout: "2s".into(),
        extra: Vec::new(),
    });
    // A small budget checkpoints the WAL every 64 pages, so older pages live in the file.
    let toml = board
        .to_toml()
        .replace("[queue]\n", "[queue]\nmax_bytes = \"1MiB\"\n");
    std::fs::write(&site.board_path, toml).unwrap();
    let agent = site.run();
    wait_until(Duration::from_secs(60), "a backlog of 600 readings", || {
        // Until the agent has made its queue, `status` has nothing to show.
        let out = site.cli(&["status", "--format", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (status["depth"].as_i64() >= Some(600)).then_some(())
    });

    garble(&site.queue, &[0.3, 0.4, 0.5]);
    let garbled_at = now_ns();
    server.set_default(Script::ok());
    wait_until(
        Duration::from_secs(30),
        "the queue set aside and salvaged",
        || {
            let log = agent.log_text();
            let said = log.contains("is corrupt") && log.contains("salvaged");
            (said && corrupt_copies(site.dir.path()) == 1).then_some(())
        },
    );
    // Sampling and uploading go on in the fresh queue: wait for a good number of readings
    // sampled after the damage (how soon they come depends on the machine's speed).
    wait_until(Duration::from_secs(60), "fresh readings uploaded", || {
        let times = climate_times(&server);
        let after = times.iter().filter(|t| **t > garbled_at).count();
        (after > 20 && times.last() > Some(&(now_ns() - 1_000_000_000))).then_some(())
    });
    agent.terminate();

    // Sampling went on after the damage, into the fresh queue.
    let after = climate_times(&server)
        .into_iter()
        .filter(|t| *t > garbled_at)
        .count();
    assert!(after > 20, "{after} climate readings after the damage");
    // Nothing was lost but what the garbled pages held: every reading ever sampled was
    // uploaded, still waits, or is counted as unreadable in the file set aside. A pending
    // window lost from memory would break this sum.
    let c = read_queue_counters(&site.queue);
    let get = |name: &str| c.get(name).copied().unwrap_or(0);
    assert!(
        get("queue.salvaged") > 0 && get("dropped.corrupt") > 0,
        "{c:?}"
    );
    let dropped: i64 = c
        .iter()
        .filter(|(name, _)| name.starts_with("dropped."))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        get("sampled"),
        get("uploaded") + get("queued") + get("held") + dropped,
        "{c:?}"
    );
    assert_eq!(corrupt_copies(site.dir.path()), 1, "set aside once");
}
