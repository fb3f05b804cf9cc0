//! Figure 8: what the queue costs over a reading's whole life. The simulated device records
//! through the real recorder at the default commit window, then the real uploader drains it
//! all to the loopback server: readings per MiB of queue, sampling CPU per simulated hour,
//! disk writes over fill and drain per line-protocol byte, and wire bytes per reading.

use crate::disk_writes::sync_disks;
use crate::drain::upload_config;
use crate::fault_server::FaultServer;
use crate::fleet::{record_seconds, Fleet, Recorded};
use crate::received::Received;
use crate::report::{section, Budget, Report};
use crate::work_dir::WorkDir;
use crate::{MIB, SENSORS};
use fieldlink::clock::{build_time_ns, Clock, ManualClock, SystemClock, TimeKeeper};
use fieldlink::config::QueueConfig;
use fieldlink::queue::{Policy, Queue};
use fieldlink::recorder::{disk_write_bytes, Recorder};
use fieldlink::upload::endpoint::Endpoint;
use fieldlink::upload::transport::{HttpTransport, TlsOptions};
use fieldlink::upload::{InfluxHttp, Step, Uploader};
use std::sync::Arc;
use std::time::Duration;

/// The queue's figures after recording `hours` of the simulated device.
struct Filled {
    readings: usize,
    lp_bytes: usize,
    live_bytes: u64,
    written: u64,
    cpu_s: f64,
}

pub fn queue_storage(report: &mut Report, work: &WorkDir, server: &FaultServer, hours: usize) {
    section(&format!(
        "8. a reading's life in the queue ({hours} simulated hours of 8 sensors at 1 Hz through the recorder, then a full drain)"
    ));
    if disk_write_bytes().is_none() {
        report.info(
            "queue storage",
            "not measured: /proc/self/io is unreadable".into(),
        );
        return;
    }
    let path = work.file("storage.db");
    let filled = fill_through_the_recorder(&path, hours);
    sync_disks();
    let before_drain = disk_write_bytes().unwrap_or(0);
    let received_before = Received::by(server);
    drain(&path, server);
    sync_disks();
    let drain_written = disk_write_bytes().unwrap_or(0).saturating_sub(before_drain);
    let got = Received::by(server).since(&received_before);

    let per_mib = filled.readings as f64 / (filled.live_bytes as f64 / MIB);
    report.budget(
        "raw readings per MiB of queue",
        per_mib,
        "readings",
        0,
        Budget::AtLeast(60_000.0),
    );
    let week = 7 * 86_400 * SENSORS;
    report.info(
        "a week at full resolution",
        format!(
            "{:.1} MiB for {week} readings ({:.0} bytes per reading)",
            week as f64 / per_mib,
            filled.live_bytes as f64 / filled.readings as f64
        ),
    );
    let lifetime = (filled.written + drain_written) as f64 / filled.lp_bytes as f64;
    report.budget(
        "lifetime disk writes per line-protocol byte",
        lifetime,
        "bytes",
        3,
        Budget::AtMost(0.5),
    );
    report.info(
        "writes detail",
        format!(
            "{:.1} MiB line protocol; fill wrote {:.2} MiB, drain {:.2} MiB",
            filled.lp_bytes as f64 / MIB,
            filled.written as f64 / MIB,
            drain_written as f64 / MIB
        ),
    );
    let wire = got.bytes as f64 / filled.readings as f64;
    report.budget(
        "wire bytes per reading",
        wire,
        "bytes",
        2,
        Budget::AtMost(10.7),
    );
    report.value(
        "sampling CPU per simulated hour (recorder thread)",
        filled.cpu_s / hours as f64 * 1e3,
        "ms",
        1,
    );
    work.remove_queue(&path);
}

/// Record `hours` of the fleet through the recorder with the default queue settings.
fn fill_through_the_recorder(path: &std::path::Path, hours: usize) -> Filled {
    let defaults = QueueConfig::default();
    let commit_every = defaults.commit_interval.as_secs().max(1) as usize;
    let seconds = hours * 3600;
    // A trusted wall clock all along: a day after this binary was built (a clock before that
    // is not trusted, and its readings would be held, then released as rows).
    let clock = Arc::new(ManualClock::new(
        build_time_ns() + 86_400_000_000_000,
        true,
        "bench",
    ));
    let keeper = Arc::new(TimeKeeper::new(clock.clone() as Arc<dyn Clock>, false, 0));
    let mut fleet = Fleet::new(0);
    let policy = Policy {
        max_bytes: defaults.max_bytes,
        max_age: defaults.max_age,
        window: defaults.downsample_window,
    };
    let queue = Queue::open(path).expect("open queue");
    let mut recorder = Recorder::new(
        queue,
        &fleet.plan(),
        keeper.clone(),
        defaults.commit_interval,
        Duration::from_secs(60),
    )
    .expect("recorder")
    .with_retention(policy);
    sync_disks();
    let before = disk_write_bytes().unwrap_or(0);
    let cpu_before = thread_cpu_s();
    let Recorded { readings, lp_bytes } = record_seconds(
        &mut fleet,
        &mut recorder,
        &clock,
        &keeper,
        seconds,
        commit_every,
    );
    let cpu_s = thread_cpu_s() - cpu_before;
    let stats = recorder.queue().stats().expect("stats");
    assert_eq!(
        stats.depth as usize, readings,
        "every reading should be queued"
    );
    drop(recorder);
    sync_disks();
    Filled {
        readings,
        lp_bytes,
        live_bytes: stats.bytes,
        written: disk_write_bytes().unwrap_or(0).saturating_sub(before),
        cpu_s,
    }
}

fn drain(path: &std::path::Path, server: &FaultServer) {
    let cfg = upload_config(server.addr());
    let transport = HttpTransport::new(cfg.timeout, &TlsOptions::default()).expect("transport");
    let output = InfluxHttp::new(Endpoint::new(&cfg).expect("endpoint"), transport);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let time = Arc::new(TimeKeeper::new(clock, false, 0));
    let mut uploader = Uploader::new(
        Queue::open(path).expect("open queue"),
        output,
        &cfg,
        "bench",
        time,
    );
    loop {
        match uploader.step().expect("upload step") {
            Step::Idle => break,
            Step::Sent(_) => {}
            Step::Paused(pause) => panic!(
                "the loopback server made the uploader pause: {}",
                pause.reason
            ),
        }
    }
}

/// CPU time (user + system) of this thread so far.
fn thread_cpu_s() -> f64 {
    crate::gzip_only::thread_cpu().as_secs_f64()
}
