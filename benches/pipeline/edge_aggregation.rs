//! Figure 7: wire bytes per sensor-hour for one climate sensor sampled at 1 Hz, raw and with
//! `aggregate = "1m"`: the same samples, the same series key, gzip in the default batches
//! (5,000 lines / 1 MiB uncompressed), as the uploader sends them.

use crate::report::{section, Report};
use crate::{BATCH_BYTES, BATCH_LINES};
use fieldlink::aggregate::EdgeWindow;
use fieldlink::clock::Stamp;
use fieldlink::line_protocol::{field_set, line_len};
use fieldlink::queue::Batch;
use fieldlink::sensors::simulated::SimulatedClimate;
use fieldlink::sensors::Sensor;
use fieldlink::upload::gzip;
use std::time::Duration;

const KEY: &str =
    "iot_metrics,device_id=pi-0042,room=cold\\ store,sensor_id=climate-1,site=north-barn";
const HOUR_S: i64 = 3600;

/// Print raw and aggregated wire bytes for one sensor-hour, and the ratio.
pub fn edge_aggregation(report: &mut Report, start_ns: i64) {
    section("7. wire bytes per sensor-hour: climate sensor at 1 Hz, raw vs aggregate = \"1m\"");
    // Whole minutes, so the hour holds exactly sixty windows.
    let start_ns = start_ns - start_ns.rem_euclid(60 * 1_000_000_000);
    let mut sensor = SimulatedClimate::new(42);
    let mut window = EdgeWindow::new(Duration::from_secs(60), None);
    let (mut raw, mut aggregated) = (Vec::new(), Vec::new());
    for second in 0..HOUR_S {
        let Ok(fields) = sensor.read() else { continue };
        let wall_ns = start_ns + second * 1_000_000_000;
        let stamp = Stamp {
            wall_ns,
            mono_ns: wall_ns,
            trusted: true,
        };
        if let (Some(set), _) = field_set(&fields) {
            raw.push((set, wall_ns));
        }
        aggregated.extend(
            window
                .add(&fields, stamp)
                .map(|c| (c.field_set, c.stamp.wall_ns)),
        );
    }
    aggregated.extend(window.close().map(|c| (c.field_set, c.stamp.wall_ns)));
    let (raw_lp, raw_gz) = wire_bytes(&raw);
    let (agg_lp, agg_gz) = wire_bytes(&aggregated);
    report.info(
        "detail",
        format!(
            "raw: {} lines, {raw_lp} B line protocol; aggregated: {} lines, {agg_lp} B",
            raw.len(),
            aggregated.len()
        ),
    );
    report.value(
        "raw 1 Hz wire bytes per sensor-hour (gzip)",
        raw_gz as f64,
        "B",
        0,
    );
    report.value(
        "aggregate=1m wire bytes per sensor-hour (gzip)",
        agg_gz as f64,
        "B",
        0,
    );
    report.value(
        "raw / aggregate=1m wire bytes",
        raw_gz as f64 / agg_gz as f64,
        "x",
        1,
    );
}

/// Line-protocol bytes and gzip bytes of these lines, batched like `Queue::next_batch`.
fn wire_bytes(lines: &[(String, i64)]) -> (usize, usize) {
    let (mut plain, mut packed) = (0, 0);
    let mut batch = Batch::with_capacity(BATCH_LINES, BATCH_BYTES);
    let mut flush = |batch: &mut Batch| {
        plain += batch.body_len();
        packed += gzip(batch.body()).len();
        *batch = Batch::with_capacity(BATCH_LINES, BATCH_BYTES);
    };
    for (id, (fields, time_ns)) in lines.iter().enumerate() {
        let next = line_len(KEY, fields, *time_ns) + 1;
        let full = batch.len() == BATCH_LINES
            || (!batch.is_empty() && batch.body_len() + next > BATCH_BYTES);
        if full {
            flush(&mut batch);
        }
        batch.push(id as i64, KEY, fields, *time_ns);
    }
    if !batch.is_empty() {
        flush(&mut batch);
    }
    (plain, packed)
}
