//! Figure 2: gzip-only throughput of the same batches, the limit of a drain, and the
//! drain/gzip ratio.

use crate::fleet::Fleet;
use crate::report::{section, Budget, Report};
use crate::{BATCH_BYTES, BATCH_LINES, MIB};
use fieldlink::queue::Batch;
use fieldlink::upload::gzip;
use std::time::{Duration, Instant};

/// gzip the same line protocol in the same batches, timing only the compression. Returns
/// gzip's points per CPU second (this thread's CPU time, which other programs on the machine
/// do not inflate as they do wall time).
pub fn gzip_only(report: &mut Report, rows: usize, start_ns: i64, drain_rate: f64) -> f64 {
    section("2. gzip-only throughput (same bytes, same batches, fieldlink::upload::gzip)");
    let mut fleet = Fleet::new(start_ns);
    let mut spent = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    let (mut raw, mut packed, mut batches) = (0usize, 0usize, 0usize);
    let mut batch = Batch::with_capacity(BATCH_LINES, BATCH_BYTES);
    let mut id = 0i64;
    let mut flush = |batch: &mut Batch, spent: &mut Duration| {
        let (started, cpu_started) = (Instant::now(), thread_cpu());
        let body = gzip(batch.body());
        *spent += started.elapsed();
        cpu += thread_cpu().saturating_sub(cpu_started);
        raw += batch.body_len();
        packed += body.len();
        batches += 1;
        *batch = Batch::with_capacity(BATCH_LINES, BATCH_BYTES);
    };
    for _ in 0..rows {
        let (sensor, time_ns, fields) = fleet.next_stored();
        let key = &fleet.keys[sensor];
        // The same bound as Queue::next_batch: lines, then uncompressed bytes.
        let full = batch.len() == BATCH_LINES
            || (!batch.is_empty()
                && batch.body_len()
                    + 1
                    + fieldlink::line_protocol::line_len(key, &fields, time_ns)
                    > BATCH_BYTES);
        if full {
            flush(&mut batch, &mut spent);
        }
        id += 1;
        batch.push(id, key, &fields, time_ns);
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut spent);
    }
    let rate = rows as f64 / spent.as_secs_f64();
    report.value("gzip-only throughput", rate, "points/s", 0);
    report.info(
        "gzip detail",
        format!(
            "{batches} batches, {:.1} MiB line protocol -> {:.1} MiB gzip (ratio {:.1}), {:.1} MiB/s in",
            raw as f64 / MIB,
            packed as f64 / MIB,
            raw as f64 / packed.max(1) as f64,
            raw as f64 / MIB / spent.as_secs_f64()
        ),
    );
    report.budget(
        "drain / gzip-only",
        100.0 * drain_rate / rate,
        "%",
        1,
        Budget::AtLeast(70.0),
    );
    let cpu_rate = rows as f64 / cpu.as_secs_f64();
    report.value(
        "gzip-only CPU throughput",
        cpu_rate,
        "points per CPU second",
        0,
    );
    cpu_rate
}

/// CPU time of this thread.
pub fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now)
    };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
