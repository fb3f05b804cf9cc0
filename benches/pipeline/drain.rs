//! Figure 1: drain throughput through the real uploader, transport and gzip to the loopback
//! server, and where a drain spends its time.

use crate::fault_server::FaultServer;
use crate::fleet::{fill_queue, Fleet};
use crate::received::Received;
use crate::report::{section, Report};
use crate::work_dir::WorkDir;
use crate::{BATCH_BYTES, BATCH_LINES, MIB};
use fieldlink::clock::{Clock, SystemClock, TimeKeeper};
use fieldlink::config::UploadConfig;
use fieldlink::queue::{Queue, Run};
use fieldlink::upload::endpoint::Endpoint;
use fieldlink::upload::transport::{HttpTransport, TlsOptions, Transport};
use fieldlink::upload::{InfluxHttp, Step, Uploader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fill a queue and drain it with the real uploader, transport and gzip. Returns points/s.
pub fn drain_throughput(
    report: &mut Report,
    work: &WorkDir,
    server: &FaultServer,
    rows: usize,
    start_ns: i64,
) -> f64 {
    section("1. drain throughput (Uploader + HttpTransport + gzip -> loopback HTTP)");
    let path = work.file("drain.db");
    let fill = fill_queue(&path, &mut Fleet::new(start_ns), rows, 10_000);
    report.info(
        "queue fill (10k readings per push)",
        format!("{:.0} rows/s", rows as f64 / fill.as_secs_f64()),
    );

    let cfg = upload_config(server.addr());
    let endpoint = Endpoint::new(&cfg).expect("endpoint");
    let transport = HttpTransport::new(cfg.timeout, &TlsOptions::default()).expect("transport");
    let queue = Queue::open(&path).expect("open queue");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let time = Arc::new(TimeKeeper::new(clock, false, 0));
    let output = InfluxHttp::new(endpoint, transport);
    let mut uploader = Uploader::new(queue, output, &cfg, "bench", time);
    let before = Received::by(server);
    let started = Instant::now();
    let mut sent = 0usize;
    loop {
        match uploader.step().expect("upload step") {
            Step::Idle => break,
            Step::Sent(n) => sent += n,
            Step::Paused(pause) => panic!(
                "the loopback server made the uploader pause: {}",
                pause.reason
            ),
        }
    }
    let elapsed = started.elapsed();
    let got = Received::by(server).since(&before);
    let uploaded = uploader
        .queue()
        .counters()
        .expect("counters")
        .get(fieldlink::queue::counter::UPLOADED)
        .copied()
        .unwrap_or(0);
    assert_eq!(sent, rows, "every reading should leave the queue");
    assert_eq!(
        uploaded as usize, rows,
        "the queue should count every reading as uploaded"
    );

    let rate = rows as f64 / elapsed.as_secs_f64();
    report.value("drain throughput", rate, "points/s", 0);
    report.info(
        "drain detail",
        format!(
            "{rows} readings in {:.2} s, {} requests, {:.1} MiB gzip received ({:.0} readings/request)",
            elapsed.as_secs_f64(),
            got.requests,
            got.bytes as f64 / MIB,
            rows as f64 / got.requests.max(1) as f64
        ),
    );
    drop(uploader);
    work.remove_queue(&path);
    drain_breakdown(report, work, server, rows, start_ns);
    rate
}

/// The uploader's steps done one by one with the same public parts, each timed, to show where
/// a drain spends its time.
pub fn drain_breakdown(
    report: &mut Report,
    work: &WorkDir,
    server: &FaultServer,
    rows: usize,
    start_ns: i64,
) {
    let path = work.file("breakdown.db");
    fill_queue(&path, &mut Fleet::new(start_ns), rows, 10_000);
    let cfg = upload_config(server.addr());
    let mut endpoint = Endpoint::new(&cfg).expect("endpoint");
    let mut transport = HttpTransport::new(cfg.timeout, &TlsOptions::default()).expect("transport");
    let mut queue = Queue::open(&path).expect("open queue");
    let mut spent = [Duration::ZERO; 3];
    let mut time = |slot: usize, started: Instant| spent[slot] += started.elapsed();
    let started = Instant::now();
    loop {
        // Whole stored segments, stitched into one gzip member: nothing is compressed here.
        let t = Instant::now();
        let batch = queue
            .next_segments(None, BATCH_LINES, BATCH_BYTES)
            .expect("next_segments");
        time(0, t);
        let Some(batch) = batch else { break };
        let t = Instant::now();
        let headers = endpoint.headers().expect("headers");
        let reply = transport
            .post(&endpoint.url, &headers, &batch.gzip)
            .expect("post");
        assert_eq!(reply.status, 204);
        time(1, t);
        let t = Instant::now();
        let (first, last) = batch.run;
        queue
            .ack_runs(&[Run::Pieces(first, last)], "ok: bench")
            .expect("ack");
        time(2, t);
    }
    let total = started.elapsed().as_secs_f64();
    let share = |d: Duration| {
        format!(
            "{:.0} ms ({:.0} %)",
            d.as_secs_f64() * 1e3,
            100.0 * d.as_secs_f64() / total
        )
    };
    report.info(
        "drain breakdown (same steps timed one by one)",
        format!(
            "total {:.0} ms: next_segments (read + stitch) {}, HTTP POST {}, ack {}",
            total * 1e3,
            share(spent[0]),
            share(spent[1]),
            share(spent[2])
        ),
    );
    drop(queue);
    work.remove_queue(&path);
}

pub fn upload_config(addr: SocketAddr) -> UploadConfig {
    let text = format!(
        "url = \"http://{addr}\"\napi = \"v1\"\ndatabase = \"bench\"\nbatch_lines = {BATCH_LINES}\n\
         batch_bytes = \"1MiB\"\nmax_points_per_second = 0\nstart_delay_max = \"0s\"\ntimeout = \"30s\"\n"
    );
    toml::from_str(&text).expect("upload config")
}
