//! Figure 5: push and next-batch latency with a tiny and a huge queue (the next batch as the
//! uploader takes it: `next_segments`).

use crate::fleet::Fleet;
use crate::report::{section, thousands, Report};
use crate::work_dir::WorkDir;
use crate::{now_ns, BATCH_BYTES, BATCH_LINES, MIB, SECOND_NS, SENSORS};
use fieldlink::queue::Queue;
use std::time::Instant;

/// "Pushing a reading and taking the next batch cost the same with 10 M rows queued as with 10."
pub fn constant_cost(report: &mut Report, work: &WorkDir, huge: usize) {
    section("5. constant-cost operations: push (one-reading commit) and next_batch(5000, 1MiB)");
    let small = measure_costs(work, 10, "cost-small.db");
    // 10 rows make a 10-line batch; this size gives full batches to compare the huge queue with.
    let full_batch = measure_costs(work, 2 * BATCH_LINES, "cost-full-batch.db");
    let large = measure_costs(work, huge, "cost-huge.db");
    let levels = [
        ("10 rows".to_string(), &small),
        (format!("{} rows", thousands(2 * BATCH_LINES)), &full_batch),
        (format!("{} rows", thousands(huge)), &large),
    ];
    for (label, costs) in levels {
        report.value(
            &format!("median push latency, {label} queued"),
            costs.push_us,
            "µs",
            0,
        );
        report.value(
            &format!("median next_batch time, {label} queued"),
            costs.batch_ms,
            "ms",
            3,
        );
        report.info(
            &format!("next_batch detail, {label}"),
            format!(
                "{} lines per batch, {:.2} µs per line",
                costs.batch_lines,
                costs.batch_ms * 1000.0 / costs.batch_lines.max(1) as f64
            ),
        );
    }
    report.value(
        "push latency ratio (huge / 10)",
        large.push_us / small.push_us,
        "x",
        2,
    );
    report.value(
        &format!(
            "next_batch time ratio (huge / {} rows, both full batches)",
            thousands(2 * BATCH_LINES)
        ),
        large.batch_ms / full_batch.batch_ms,
        "x",
        2,
    );
}

pub struct Costs {
    push_us: f64,
    batch_ms: f64,
    batch_lines: usize,
}

pub fn measure_costs(work: &WorkDir, rows: usize, file: &str) -> Costs {
    const PUSHES: usize = 101;
    const BATCHES: usize = 21;
    let path = work.file(file);
    let mut fleet = Fleet::new(now_ns() - (rows / SENSORS) as i64 * SECOND_NS);
    let chunk = 100_000;
    let started = Instant::now();
    let mut queue = Queue::open(&path).expect("open queue");
    let series = fleet.series_ids(&mut queue);
    let mut done = 0usize;
    while done < rows {
        let n = chunk.min(rows - done);
        let readings = fleet.chunk(&series, n);
        queue.push(&readings, &[], &[]).expect("push");
        done += n;
        if rows >= 1_000_000 && done % 1_000_000 == 0 {
            println!(
                "  filled {}/{} rows ({:.0} s)",
                thousands(done),
                thousands(rows),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if rows >= 1_000_000 {
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "  queue of {} rows: {:.0} MiB file, filled in {:.1} s",
            thousands(rows),
            bytes as f64 / MIB,
            started.elapsed().as_secs_f64()
        );
    }

    let mut batch_times = Vec::with_capacity(BATCHES);
    let mut batch_lines = 0;
    for _ in 0..BATCHES {
        let started = Instant::now();
        // What the uploader takes: whole stored segments, stitched into one gzip member.
        let batch = queue
            .next_segments(None, BATCH_LINES, BATCH_BYTES)
            .expect("next_segments");
        batch_times.push(started.elapsed().as_secs_f64() * 1e3);
        batch_lines = batch.map_or(0, |b| b.lines);
    }
    let mut push_times = Vec::with_capacity(PUSHES);
    for _ in 0..PUSHES {
        let one = fleet.chunk(&series, 1);
        let started = Instant::now();
        queue.push(&one, &[], &[]).expect("push");
        push_times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    drop(queue);
    work.remove_queue(&path);
    Costs {
        push_us: median(&mut push_times),
        batch_ms: median(&mut batch_times),
        batch_lines,
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
