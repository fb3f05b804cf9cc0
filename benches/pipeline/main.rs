//! The pipeline benchmark: prints figures, asserts nothing.
//!
//! `cargo bench --bench pipeline` runs the full version (1,000,000-reading drains, a
//! 10,000,000-row queue for the constant-cost check, the aarch64 release build);
//! `FIELDLINK_BENCH_QUICK=1 cargo bench --bench pipeline` runs a small one (100,000-reading
//! drains, a 1,000,000-row queue, no cross build) that fits in a CI smoke run.
//!
//! Figures, each printed as `name: value unit` with its budget and PASS/OVER where one exists:
//! 1. drain throughput through `Uploader` + `HttpTransport` + gzip to a loopback server;
//! 2. gzip-only throughput of the same batches (the limit) and the drain/gzip ratio;
//! 3. peak RSS, wall time and CPU of `fieldlink sync` draining the same queue (the real
//!    binary), its CPU against gzip-only's;
//! 4. bytes written to disk per line-protocol byte while recording at the default commit window;
//! 5. push and next_batch latency with a tiny and a huge queue;
//! 6. release binary sizes (aarch64, host);
//! 7. wire bytes per sensor-hour of a 1 Hz climate sensor, raw and with `aggregate = "1m"`;
//! 8. a reading's life in the queue: readings per MiB, sampling CPU, lifetime disk writes per
//!    line-protocol byte (fill and drain), wire bytes per reading.
//!
//! `FIELDLINK_BENCH_ONLY=wire` prints figure 7 alone (also right in a debug build:
//! `cargo bench --profile dev --bench pipeline`).
//!
//! Set `FIELDLINK_BENCH_DIR` to choose where queue files go (default /var/tmp; it must not be
//! tmpfs, or the disk-write figure means nothing). The aarch64 build goes to cargo's target
//! directory (`CARGO_TARGET_DIR` or the default), or to `FIELDLINK_CROSS_TARGET_DIR` when set.

mod binaries;
// The tests' HTTP server; the benchmark uses only its counting mode.
mod constant_cost;
mod disk_writes;
mod drain;
mod edge_aggregation;
#[allow(dead_code)]
#[path = "../../tests/common/fault_server.rs"]
mod fault_server;
mod fleet;
mod gzip_only;
mod received;
mod report;
mod rusage;
mod storage;
mod sync_drain;
mod work_dir;

use binaries::{binary_sizes, host_binary};
use constant_cost::constant_cost;
use disk_writes::disk_writes_per_byte;
use drain::drain_throughput;
use edge_aggregation::edge_aggregation;
use fault_server::FaultServer;
use gzip_only::gzip_only;
use report::Report;
use rusage::{rusage_trampoline, RUSAGE_TRAMPOLINE};
use std::time::SystemTime;
use storage::queue_storage;
use sync_drain::binary_drain;
use work_dir::WorkDir;

const MIB: f64 = 1024.0 * 1024.0;
const BATCH_LINES: usize = 5000;
const BATCH_BYTES: usize = 1 << 20;
/// Sensors of the simulated device; readings go round-robin, one per sensor per second.
const SENSORS: usize = 8;
const SECOND_NS: i64 = 1_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(RUSAGE_TRAMPOLINE) {
        rusage_trampoline(&args[2..]);
        return;
    }
    let mut report = Report::default();
    // Figure 7 needs no server, queue or build, and its bytes do not depend on optimisation.
    if std::env::var("FIELDLINK_BENCH_ONLY").is_ok_and(|v| v == "wire") {
        edge_aggregation(&mut report, now_ns());
        report.summary();
        return;
    }
    let scale = Scale::from_env();
    let work = WorkDir::create();
    let server = FaultServer::counting();
    println!(
        "fieldlink pipeline benchmark ({} mode): {} readings per drain, {} rows for the constant-cost check",
        if scale.quick { "quick" } else { "full" },
        scale.drain_rows,
        scale.huge_queue_rows
    );
    println!("work dir: {} ({})", work.path.display(), work.fs_note);
    println!();

    let start_ns = now_ns() - (scale.drain_rows / SENSORS) as i64 * SECOND_NS;
    let drain = drain_throughput(&mut report, &work, &server, scale.drain_rows, start_ns);
    let gzip_rate = gzip_only(&mut report, scale.drain_rows, start_ns, drain);
    let host_binary = host_binary();
    binary_drain(
        &mut report,
        &work,
        &server,
        host_binary.as_deref(),
        scale.drain_rows,
        start_ns,
        gzip_rate,
    );
    disk_writes_per_byte(&mut report, &work);
    queue_storage(&mut report, &work, &server, scale.storage_hours);
    constant_cost(&mut report, &work, scale.huge_queue_rows);
    binary_sizes(&mut report, host_binary.as_deref(), scale.quick);
    edge_aggregation(&mut report, now_ns());

    report.summary();
}

/// How big a run is.
struct Scale {
    quick: bool,
    /// Readings drained through the uploader and through the binary.
    drain_rows: usize,
    /// Rows queued for the "constant cost with a huge queue" check.
    huge_queue_rows: usize,
    /// Simulated hours recorded for the queue's storage figures.
    storage_hours: usize,
}

impl Scale {
    fn from_env() -> Scale {
        let quick = std::env::var("FIELDLINK_BENCH_QUICK").is_ok_and(|v| v == "1");
        Scale {
            quick,
            drain_rows: if quick { 100_000 } else { 1_000_000 },
            huge_queue_rows: if quick { 1_000_000 } else { 10_000_000 },
            storage_hours: if quick { 4 } else { 24 },
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
