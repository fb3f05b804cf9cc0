//! Figure 4: bytes written to disk per line-protocol byte while recording at the default
//! commit window.

use crate::fleet::{record_seconds, Fleet, Recorded};
use crate::report::{section, Budget, Report};
use crate::work_dir::WorkDir;
use crate::{now_ns, MIB};
use fieldlink::clock::{Clock, ManualClock, TimeKeeper};
use fieldlink::config::QueueConfig;
use fieldlink::queue::Queue;
use fieldlink::recorder::{disk_write_bytes, Recorder};
use std::sync::Arc;
use std::time::Duration;

/// A simulated hour of 8 sensors at 1 Hz through the recorder, committed every 5 s of
/// simulated time; `/proc/self/io` write_bytes over the line-protocol bytes of those readings.
pub fn disk_writes_per_byte(report: &mut Report, work: &WorkDir) {
    section("4. disk writes while recording (8 sensors at 1 Hz for a simulated hour, default commit window)");
    const SECONDS: usize = 3600;
    // The budget is stated for the default commit window, so measure at whatever it is.
    let commit_every = QueueConfig::default().commit_interval.as_secs().max(1) as usize;
    let Some(_) = disk_write_bytes() else {
        report.info(
            "disk writes",
            "not measured: /proc/self/io is unreadable".into(),
        );
        return;
    };
    let path = work.file("record.db");
    let clock = Arc::new(ManualClock::new(now_ns(), true, "bench-boot"));
    let keeper = Arc::new(TimeKeeper::new(clock.clone() as Arc<dyn Clock>, false, 0));
    let mut fleet = Fleet::new(0);
    let plan = fleet.plan();
    let queue = Queue::open(&path).expect("open queue");
    let mut recorder = Recorder::new(
        queue,
        &plan,
        keeper.clone(),
        Duration::from_secs(commit_every as u64),
        Duration::from_secs(60),
    )
    .expect("recorder");
    sync_disks();
    let before = disk_write_bytes().unwrap_or(0);
    let Recorded { readings, lp_bytes } = record_seconds(
        &mut fleet,
        &mut recorder,
        &clock,
        &keeper,
        SECONDS,
        commit_every,
    );
    let depth = recorder.queue().stats().map(|s| s.depth).unwrap_or(-1);
    drop(recorder);
    sync_disks();
    let written = disk_write_bytes().unwrap_or(0).saturating_sub(before);
    assert_eq!(depth as usize, readings, "every reading should be queued");
    report.budget(
        "disk bytes written per line-protocol byte",
        written as f64 / lp_bytes as f64,
        "B/B",
        3,
        Budget::AtMost(1.5),
    );
    report.value(
        "disk bytes written per reading",
        written as f64 / readings as f64,
        "B",
        1,
    );
    report.info(
        "disk detail",
        format!(
            "{readings} readings, {} commits, {:.2} MiB line protocol, {:.2} MiB written ({:.1} KiB per commit)",
            SECONDS / commit_every,
            lp_bytes as f64 / MIB,
            written as f64 / MIB,
            written as f64 / 1024.0 / (SECONDS / commit_every) as f64
        ),
    );
    work.remove_queue(&path);
}

pub fn sync_disks() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync()
    };
}
