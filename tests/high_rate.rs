//! A high sampling rate on the real binary: 100 simulated sensors every 10 ms (10,000 readings a
//! second) with a long commit window. Every reading reaches the queue: the window commits
//! early instead of dropping what does not fit in memory, and memory stays bounded.

mod common;

use common::*;
use std::time::Duration;

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[test]
fn a_hundred_sensors_at_ten_milliseconds_lose_nothing_while_the_disk_has_room() {
    let site = Site::new("high-rate");
    let mut board = site.board();
    board.sensors = (0..100)
        .map(|i| {
            let mut sensor = Sensor::new(&format!("climate-{i}"), "simulated_climate");
            sensor.interval = "10ms".into();
            sensor
        })
        .collect();
    board.commit_interval = "10s".into();
    site.write(&board);
    let agent = site.run();
    std::thread::sleep(Duration::from_secs(3));
    let peak_kib = peak_rss_kib(agent.pid());
    agent.terminate();
    // About 7 MiB natively; a window that held every reading would pass this within seconds.
    // Under qemu the process is the emulator, whose own translated code and heap add about
    // 25 MiB.
    let bound_kib = if emulator::emulated() { 48 } else { 32 } * 1024;
    assert!(peak_kib < bound_kib, "peak RSS {peak_kib} KiB");
    let counters = read_queue_counters(&site.queue);
    assert_eq!(
        counters.get("dropped.dropped_full").copied().unwrap_or(0),
        0,
        "{counters:?}"
    );
    let queued = read_queue_lines(&site.queue).len();
    // Far more than the 4,096 readings the in-memory bound holds; the exact count depends on
    // how much CPU the sampler got.
    assert!(
        queued > 10_000,
        "only {queued} readings queued: {counters:?}"
    );
}
