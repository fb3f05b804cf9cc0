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
//! 3. peak RSS and wall time of `fieldlink sync` draining the same queue (the real binary);
//! 4. bytes written to disk per line-protocol byte while recording at the default commit window;
//! 5. push and next_batch latency with a tiny and a huge queue;
//! 6. release binary sizes (aarch64, host).
//!
//! Set `FIELDLINK_BENCH_DIR` to choose where queue files go (default /var/tmp; it must not be
//! tmpfs, or the disk-write figure means nothing).

use fieldlink::clock::{Clock, ManualClock, SystemClock, TimeKeeper};
use fieldlink::config::{QueueConfig, UploadConfig};
use fieldlink::line_protocol::{field_set, push_line, series_key};
use fieldlink::queue::{Batch, NewReading, Queue};
use fieldlink::reading::{Fields, Kind, Reading};
use fieldlink::recorder::{disk_write_bytes, Recorder, SeriesPlan, INTERNAL_MEASUREMENT};
use fieldlink::sampler::Message;
use fieldlink::sensors::simulated::SimulatedClimate;
use fieldlink::sensors::Sensor;
use fieldlink::upload::endpoint::Endpoint;
use fieldlink::upload::transport::{HttpTransport, TlsOptions, Transport};
use fieldlink::upload::{gzip, InfluxHttp, Step, Uploader};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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
    let scale = Scale::from_env();
    let work = WorkDir::create();
    let server = LoopbackServer::start();
    let mut report = Report::default();
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
    gzip_only(&mut report, scale.drain_rows, start_ns, drain);
    let host_binary = host_binary();
    binary_drain(
        &mut report,
        &work,
        &server,
        host_binary.as_deref(),
        scale.drain_rows,
        start_ns,
    );
    disk_writes_per_byte(&mut report, &work);
    constant_cost(&mut report, &work, scale.huge_queue_rows);
    binary_sizes(&mut report, host_binary.as_deref(), scale.quick);

    report.summary();
}

/// How big a run is.
struct Scale {
    quick: bool,
    /// Readings drained through the uploader and through the binary.
    drain_rows: usize,
    /// Rows queued for the "constant cost with a huge queue" check.
    huge_queue_rows: usize,
}

impl Scale {
    fn from_env() -> Scale {
        let quick = std::env::var("FIELDLINK_BENCH_QUICK").is_ok_and(|v| v == "1");
        Scale {
            quick,
            drain_rows: if quick { 100_000 } else { 1_000_000 },
            huge_queue_rows: if quick { 1_000_000 } else { 10_000_000 },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Drain throughput
// ---------------------------------------------------------------------------------------------

/// Fill a queue and drain it with the real uploader, transport and gzip. Returns points/s.
fn drain_throughput(
    report: &mut Report,
    work: &WorkDir,
    server: &LoopbackServer,
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

    let cfg = upload_config(server.addr);
    let endpoint = Endpoint::new(&cfg).expect("endpoint");
    let transport = HttpTransport::new(cfg.timeout, &TlsOptions::default()).expect("transport");
    let queue = Queue::open(&path).expect("open queue");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let time = Arc::new(TimeKeeper::new(clock, false, 0));
    let output = InfluxHttp::new(endpoint, transport);
    let mut uploader = Uploader::new(queue, output, &cfg, "bench", time);
    let before = server.snapshot();
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
    let got = server.snapshot().since(&before);
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
fn drain_breakdown(
    report: &mut Report,
    work: &WorkDir,
    server: &LoopbackServer,
    rows: usize,
    start_ns: i64,
) {
    let path = work.file("breakdown.db");
    fill_queue(&path, &mut Fleet::new(start_ns), rows, 10_000);
    let cfg = upload_config(server.addr);
    let mut endpoint = Endpoint::new(&cfg).expect("endpoint");
    let mut transport = HttpTransport::new(cfg.timeout, &TlsOptions::default()).expect("transport");
    let mut queue = Queue::open(&path).expect("open queue");
    let mut spent = [Duration::ZERO; 4];
    let mut time = |slot: usize, started: Instant| spent[slot] += started.elapsed();
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let batch = queue
            .next_batch(BATCH_LINES, BATCH_BYTES)
            .expect("next_batch");
        time(0, t);
        let Some(batch) = batch else { break };
        let t = Instant::now();
        let body = gzip(batch.body());
        time(1, t);
        let t = Instant::now();
        let headers = endpoint.headers().expect("headers");
        let reply = transport
            .post(&endpoint.url, &headers, &body)
            .expect("post");
        assert_eq!(reply.status, 204);
        time(2, t);
        let t = Instant::now();
        queue.ack(batch.ids(), "ok: bench").expect("ack");
        time(3, t);
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
            "total {:.0} ms: next_batch {}, gzip {}, HTTP POST {}, ack {}",
            total * 1e3,
            share(spent[0]),
            share(spent[1]),
            share(spent[2]),
            share(spent[3])
        ),
    );
    drop(queue);
    work.remove_queue(&path);
}

fn upload_config(addr: SocketAddr) -> UploadConfig {
    let text = format!(
        "url = \"http://{addr}\"\napi = \"v1\"\ndatabase = \"bench\"\nbatch_lines = {BATCH_LINES}\n\
         batch_bytes = \"1MiB\"\nmax_points_per_second = 0\nstart_delay_max = \"0s\"\ntimeout = \"30s\"\n"
    );
    toml::from_str(&text).expect("upload config")
}

// ---------------------------------------------------------------------------------------------
// 2. gzip-only throughput: the limit of the drain
// ---------------------------------------------------------------------------------------------

/// gzip the same line protocol in the same batches, timing only the compression.
fn gzip_only(report: &mut Report, rows: usize, start_ns: i64, drain_rate: f64) {
    section("2. gzip-only throughput (same bytes, same batches, fieldlink::upload::gzip)");
    let mut fleet = Fleet::new(start_ns);
    let mut spent = Duration::ZERO;
    let (mut raw, mut packed, mut batches) = (0usize, 0usize, 0usize);
    let mut batch = Batch::with_capacity(BATCH_LINES, BATCH_BYTES);
    let mut id = 0i64;
    let mut flush = |batch: &mut Batch, spent: &mut Duration| {
        let started = Instant::now();
        let body = gzip(batch.body());
        *spent += started.elapsed();
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
}

// ---------------------------------------------------------------------------------------------
// 3. Peak RSS and wall time of the real binary draining the queue
// ---------------------------------------------------------------------------------------------

fn binary_drain(
    report: &mut Report,
    work: &WorkDir,
    server: &LoopbackServer,
    binary: Option<&Path>,
    rows: usize,
    start_ns: i64,
) {
    section("3. `fieldlink sync` (release binary) draining the queue");
    let Some(binary) = binary else {
        report.info(
            "peak RSS while draining",
            "not measured: no release binary (see above)".into(),
        );
        return;
    };
    // The same board and loopback endpoint with nothing queued: what the process costs anyway.
    let empty_queue = work.file("sync-empty.db");
    let empty = run_sync(binary, work, server, &empty_queue);
    work.remove_queue(&empty_queue);

    let queue_path = work.file("sync.db");
    fill_queue(&queue_path, &mut Fleet::new(start_ns), rows, 10_000);
    let before = server.snapshot();
    let run = run_sync(binary, work, server, &queue_path);
    let got = server.snapshot().since(&before);
    let (status, elapsed, out) = (run.status, run.elapsed, run.out);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        report.info(
            "fieldlink sync",
            format!(
                "FAILED (wait status {status:#x}): {} {}",
                out.trim(),
                run.err.trim()
            ),
        );
        return;
    }
    let peak_kib = run.maxrss_kib;
    report.budget(
        "peak RSS while draining (fieldlink sync)",
        peak_kib / 1024.0,
        "MiB",
        2,
        Budget::AtMost(6.0),
    );
    report.value("fieldlink sync wall time", elapsed.as_secs_f64(), "s", 2);
    report.value(
        "fieldlink sync drain throughput",
        rows as f64 / elapsed.as_secs_f64(),
        "points/s",
        0,
    );
    report.info(
        "sync detail",
        format!(
            "{rows} readings, {} requests, {:.1} MiB received, user {:.2} s, sys {:.2} s; said: {}",
            got.requests,
            got.bytes as f64 / MIB,
            run.user_s,
            run.sys_s,
            out.trim()
        ),
    );
    report.info(
        "peak RSS with an empty queue (same board)",
        format!(
            "{:.2} MiB, so draining adds {:.2} MiB",
            empty.maxrss_kib / 1024.0,
            (peak_kib - empty.maxrss_kib) / 1024.0
        ),
    );
    work.remove_queue(&queue_path);
}

struct SyncRun {
    status: libc::c_int,
    /// Peak resident set of the child alone, KiB.
    maxrss_kib: f64,
    user_s: f64,
    sys_s: f64,
    elapsed: Duration,
    out: String,
    err: String,
}

/// Run `fieldlink sync` on a board whose queue is `queue_path` and whose upload goes to the
/// loopback server.
fn run_sync(binary: &Path, work: &WorkDir, server: &LoopbackServer, queue_path: &Path) -> SyncRun {
    let board = work.file("board.toml");
    std::fs::write(
        &board,
        format!(
            "[device]\nid = \"bench-device\"\n\n[queue]\npath = \"{}\"\n\n[upload]\nurl = \"http://{}\"\n\
             api = \"v1\"\ndatabase = \"bench\"\nbatch_lines = {BATCH_LINES}\nbatch_bytes = \"1MiB\"\n\
             max_points_per_second = 0\nstart_delay_max = \"0s\"\n",
            queue_path.display(),
            server.addr
        ),
    )
    .expect("write board file");
    let stdout = work.file("sync.out");
    let stderr = work.file("sync.err");
    let result = work.file("sync.rusage");
    // Through a small copy of this executable: see `rusage_trampoline`.
    let trampoline = Command::new(std::env::current_exe().expect("bench executable"))
        .arg(RUSAGE_TRAMPOLINE)
        .arg(&result)
        .arg(binary)
        .args(["sync", "--board"])
        .arg(&board)
        .args(["--timeout", "3600s"])
        .env_remove("STATE_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .status()
        .expect("start the rusage trampoline");
    assert!(trampoline.success(), "the rusage trampoline failed");
    let text = std::fs::read_to_string(&result).expect("rusage result");
    let numbers: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [status, maxrss_kib, user_s, sys_s, wall_s] = numbers[..] else {
        panic!("unexpected rusage result {text:?}");
    };
    SyncRun {
        status: status as libc::c_int,
        maxrss_kib,
        user_s,
        sys_s,
        elapsed: Duration::from_secs_f64(wall_s),
        out: std::fs::read_to_string(&stdout).unwrap_or_default(),
        err: std::fs::read_to_string(&stderr).unwrap_or_default(),
    }
}

const RUSAGE_TRAMPOLINE: &str = "--rusage-trampoline";

/// `pipeline --rusage-trampoline RESULT PROGRAM ARGS...`: run PROGRAM (inheriting stdio), then
/// write "status maxrss_kib user_s sys_s wall_s" to RESULT.
///
/// Why not spawn the binary from the benchmark itself: on exec, Linux folds the high-water RSS
/// of the memory the child started from into the child's `ru_maxrss`. A child spawned by this
/// (by then large) process would report the benchmark's own peak. This trampoline is a fresh
/// exec of the bench executable that has done nothing yet, so its high-water mark stays well
/// under what the agent reaches and `ru_maxrss` is the agent's own.
// The child is reaped by `wait4`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn rusage_trampoline(args: &[String]) {
    let [result, program, rest @ ..] = args else {
        panic!("usage: pipeline {RUSAGE_TRAMPOLINE} RESULT PROGRAM ARGS...");
    };
    let started = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let (status, usage) = wait4(child.id() as libc::pid_t);
    let own = rusage_self_maxrss();
    let line = format!(
        "{status} {} {:.3} {:.3} {:.3}\n",
        usage.ru_maxrss,
        timeval_s(usage.ru_utime),
        timeval_s(usage.ru_stime),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(result, line).expect("write rusage result");
    if own >= usage.ru_maxrss {
        eprintln!("warning: the trampoline's own peak RSS ({own} KiB) bounds the child's figure");
    }
}

#[allow(unsafe_code)]
fn rusage_self_maxrss() -> libc::c_long {
    // SAFETY: getrusage fills the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

/// Wait for a child and take its resource usage (peak RSS in KiB is `ru_maxrss`).
#[allow(unsafe_code)]
fn wait4(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it and `status` for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return (status, usage);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            panic!("wait4({pid}): {err}");
        }
    }
}

fn timeval_s(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// The host release binary: the one cargo built for this bench, else next to the bench
/// executable, else built now.
fn host_binary() -> Option<PathBuf> {
    if let Some(path) = option_env!("CARGO_BIN_EXE_fieldlink").map(PathBuf::from) {
        if path.exists() {
            return Some(path);
        }
    }
    // <target>/release/deps/pipeline-<hash> -> <target>/release/fieldlink
    let exe = std::env::current_exe().ok()?;
    let release = exe.parent()?.parent()?.to_path_buf();
    let candidate = release.join("fieldlink");
    if candidate.exists() {
        return Some(candidate);
    }
    let target = release.parent()?.to_path_buf();
    println!("building the release binary: cargo build --release --bin fieldlink");
    let status = cargo()
        .args(["build", "--release", "--bin", "fieldlink"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    match status {
        Ok(s) if s.success() && candidate.exists() => Some(candidate),
        other => {
            println!("could not build {}: {other:?}", candidate.display());
            None
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

// ---------------------------------------------------------------------------------------------
// 4. Bytes written to disk per line-protocol byte while recording
// ---------------------------------------------------------------------------------------------

/// A simulated hour of 8 sensors at 1 Hz through the recorder, committed every 5 s of
/// simulated time; `/proc/self/io` write_bytes over the line-protocol bytes of those readings.
fn disk_writes_per_byte(report: &mut Report, work: &WorkDir) {
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
    let mut lp_bytes = 0usize;
    let mut line = Vec::with_capacity(512);
    let mut readings = 0usize;
    for second in 1..=SECONDS {
        for sensor in 0..SENSORS {
            let stamp = keeper.stamp();
            let fields = fleet.climates[sensor].read().expect("simulated read");
            if let (Some(set), _) = field_set(&fields) {
                line.clear();
                push_line(&mut line, &fleet.keys[sensor], &set, stamp.wall_ns);
                lp_bytes += line.len() + 1; // one newline per line
            }
            recorder.accept(Message::Reading(Reading {
                sensor,
                kind: Kind::Routine,
                fields,
                stamp,
            }));
            readings += 1;
        }
        clock.advance(Duration::from_secs(1));
        if second % commit_every == 0 {
            recorder.commit();
        }
    }
    recorder.commit();
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

fn sync_disks() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync()
    };
}

// ---------------------------------------------------------------------------------------------
// 5. Constant-cost operations
// ---------------------------------------------------------------------------------------------

/// "Pushing a reading and taking the next batch cost the same with 10 M rows queued as with 10."
fn constant_cost(report: &mut Report, work: &WorkDir, huge: usize) {
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

struct Costs {
    push_us: f64,
    batch_ms: f64,
    batch_lines: usize,
}

fn measure_costs(work: &WorkDir, rows: usize, file: &str) -> Costs {
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
        let batch = queue
            .next_batch(BATCH_LINES, BATCH_BYTES)
            .expect("next_batch");
        batch_times.push(started.elapsed().as_secs_f64() * 1e3);
        batch_lines = batch.map_or(0, |b| b.len());
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// 6. Binary sizes
// ---------------------------------------------------------------------------------------------

const AARCH64: &str = "aarch64-unknown-linux-gnu";
const CROSS_TARGET_DIR: &str = "/work/target-cross";

fn binary_sizes(report: &mut Report, host: Option<&Path>, quick: bool) {
    section("6. release binary sizes");
    let cross_dir = std::env::var("FIELDLINK_CROSS_TARGET_DIR").unwrap_or(CROSS_TARGET_DIR.into());
    let aarch64 = Path::new(&cross_dir)
        .join(AARCH64)
        .join("release/fieldlink");
    let command = format!("CARGO_TARGET_DIR={cross_dir} cargo build --release --target {AARCH64}");
    if !quick {
        // A no-op when the binary is fresh; otherwise brings it up to date with the tree.
        println!("  {command}");
        let status = cargo()
            .args([
                "build",
                "--release",
                "--target",
                AARCH64,
                "--bin",
                "fieldlink",
            ])
            .env("CARGO_TARGET_DIR", &cross_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("  the aarch64 build failed ({status:?})");
        }
    }
    match stripped_size(&aarch64, "aarch64-linux-gnu-strip") {
        Some(bytes) => report.budget(
            "aarch64 release binary (stripped)",
            bytes as f64 / MIB,
            "MiB",
            2,
            Budget::AtMost(3.0),
        ),
        None => report.info(
            "aarch64 release binary (stripped)",
            format!("not built; build it with `{command}`"),
        ),
    }
    match host.and_then(|p| stripped_size(p, "strip")) {
        Some(bytes) => report.value(
            "host release binary (stripped)",
            bytes as f64 / MIB,
            "MiB",
            2,
        ),
        None => report.info("host release binary (stripped)", "not built".into()),
    }
}

/// Size after `strip` (the release profile already strips; this only makes sure), or the
/// file's size when the strip tool is missing.
fn stripped_size(binary: &Path, strip: &str) -> Option<u64> {
    let size = std::fs::metadata(binary).ok()?.len();
    let copy = std::env::temp_dir().join(format!("fieldlink-bench-strip-{}", std::process::id()));
    let stripped = Command::new(strip)
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    Some(stripped.unwrap_or(size).min(size))
}

// ---------------------------------------------------------------------------------------------
// Simulated data
// ---------------------------------------------------------------------------------------------

/// One device with `SENSORS` simulated climate sensors, each read once a second. Seeded, so two
/// fleets with the same start time produce the same readings byte for byte.
struct Fleet {
    keys: Vec<String>,
    ids: Vec<String>,
    climates: Vec<SimulatedClimate>,
    start_ns: i64,
    next: u64,
}

impl Fleet {
    fn new(start_ns: i64) -> Fleet {
        let ids: Vec<String> = (1..=SENSORS).map(|i| format!("climate-{i:02}")).collect();
        let keys = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let tags: BTreeMap<String, String> = [
                    ("device_id", "pi-cold-store-017".to_string()),
                    ("sensor_id", id.clone()),
                    ("location", "warehouse-north".to_string()),
                    ("floor", format!("{}", 1 + i / 4)),
                    (
                        "zone",
                        format!("cold-store-{}", (b'a' + (i % 4) as u8) as char),
                    ),
                    ("device_type", "simulated_climate".to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                series_key("iot_metrics", &tags)
            })
            .collect();
        let climates = (0..SENSORS)
            .map(|i| SimulatedClimate::new(0x5EED_0000 + i as u64))
            .collect();
        Fleet {
            keys,
            ids,
            climates,
            start_ns,
            next: 0,
        }
    }

    /// The next reading as the queue stores it: sensor index, time, field set.
    fn next_stored(&mut self) -> (usize, i64, String) {
        let n = self.next;
        self.next += 1;
        let sensor = (n % SENSORS as u64) as usize;
        let second = (n / SENSORS as u64) as i64;
        // Sensors share a 1 Hz schedule but are not read in the same nanosecond.
        let time_ns = self.start_ns + second * SECOND_NS + sensor as i64 * 1_250_003;
        let fields: Fields = self.climates[sensor].read().expect("simulated read");
        let set = field_set(&fields).0.expect("climate fields are finite");
        (sensor, time_ns, set)
    }

    fn series_ids(&self, queue: &mut Queue) -> Vec<i64> {
        self.keys
            .iter()
            .map(|k| queue.series_id(k).expect("series id"))
            .collect()
    }

    fn chunk(&mut self, series: &[i64], n: usize) -> Vec<NewReading> {
        (0..n)
            .map(|_| {
                let (sensor, time_ns, fields) = self.next_stored();
                NewReading {
                    series: series[sensor],
                    time_ns,
                    fields,
                    event: false,
                }
            })
            .collect()
    }

    fn plan(&self) -> SeriesPlan {
        let internal_tags: BTreeMap<String, String> =
            [("device_id".to_string(), "pi-cold-store-017".to_string())].into();
        SeriesPlan {
            sensor_keys: self.keys.clone(),
            sensor_ids: self.ids.clone(),
            internal_key: series_key(INTERNAL_MEASUREMENT, &internal_tags),
        }
    }
}

/// Fill a fresh queue file with `rows` readings, `chunk` per push. Returns the time it took.
fn fill_queue(path: &Path, fleet: &mut Fleet, rows: usize, chunk: usize) -> Duration {
    let started = Instant::now();
    let mut queue = Queue::open(path).expect("open queue");
    let series = fleet.series_ids(&mut queue);
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        queue
            .push(&fleet.chunk(&series, n), &[], &[])
            .expect("push");
        done += n;
    }
    started.elapsed()
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The loopback InfluxDB stand-in
// ---------------------------------------------------------------------------------------------

/// HTTP/1.1 with keep-alive on 127.0.0.1: reads each request's body (Content-Length or
/// chunked), counts its bytes and answers 204. It never decompresses, so it costs little next
/// to the client.
struct LoopbackServer {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
struct Received {
    bytes: u64,
    requests: u64,
}

impl Received {
    fn since(&self, before: &Received) -> Received {
        Received {
            bytes: self.bytes - before.bytes,
            requests: self.requests - before.requests,
        }
    }
}

impl LoopbackServer {
    fn start() -> LoopbackServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let bytes = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let (b, r) = (bytes.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, r) = (b.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &b, &r);
                });
            }
        });
        LoopbackServer {
            addr,
            bytes,
            requests,
        }
    }

    fn snapshot(&self) -> Received {
        Received {
            bytes: self.bytes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

fn serve(stream: TcpStream, bytes: &AtomicU64, requests: &AtomicU64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // the client closed the connection
        }
        if line.trim().is_empty() {
            continue;
        }
        let (mut length, mut chunked, mut expect) = (0usize, false, false);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("expect") {
                expect = value.eq_ignore_ascii_case("100-continue");
            }
        }
        if expect {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = if chunked {
            discard_chunked(&mut reader, &mut line)?
        } else {
            discard(&mut reader, length)?;
            length
        };
        bytes.fetch_add(body as u64, Ordering::Relaxed);
        requests.fetch_add(1, Ordering::Relaxed);
        writer.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")?;
    }
}

/// Skip `length` body bytes straight out of the read buffer, without copying them.
fn discard(reader: &mut impl BufRead, mut length: usize) -> std::io::Result<()> {
    while length > 0 {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = available.len().min(length);
        reader.consume(n);
        length -= n;
    }
    Ok(())
}

fn discard_chunked(reader: &mut impl BufRead, line: &mut String) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        line.clear();
        reader.read_line(line)?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                line.clear();
                if reader.read_line(line)? == 0 || line.trim().is_empty() {
                    return Ok(total);
                }
            }
        }
        discard(reader, size + 2)?; // the chunk and its CRLF
        total += size;
    }
}

// ---------------------------------------------------------------------------------------------
// Work directory on a disk-backed file system
// ---------------------------------------------------------------------------------------------

struct WorkDir {
    path: PathBuf,
    fs_note: String,
}

impl WorkDir {
    fn create() -> WorkDir {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = std::env::var_os("FIELDLINK_BENCH_DIR") {
            candidates.push(dir.into());
        }
        candidates.push("/var/tmp".into());
        if let Some(target) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent()?.parent()?.parent().map(Path::to_path_buf))
        {
            candidates.push(target);
        }
        for base in candidates {
            match fs_type(&base) {
                Some(TMPFS_MAGIC) | None => continue,
                Some(magic) => {
                    let path = base.join(format!("fieldlink-bench-{}", std::process::id()));
                    if std::fs::create_dir_all(&path).is_ok() {
                        return WorkDir {
                            path,
                            fs_note: format!("file system magic {magic:#x}, not tmpfs"),
                        };
                    }
                }
            }
        }
        panic!("no disk-backed directory for the queue files; set FIELDLINK_BENCH_DIR");
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Remove a queue file and its WAL and shared-memory files.
    fn remove_queue(&self, path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

const TMPFS_MAGIC: i64 = 0x0102_1994;

#[allow(unsafe_code)]
fn fs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs fills the struct we own from a NUL-terminated path.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then_some(stat.f_type as i64)
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

enum Budget {
    AtMost(f64),
    AtLeast(f64),
}

/// Prints each figure as it is measured and all of them again at the end.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn value(&mut self, name: &str, value: f64, unit: &str, decimals: usize) {
        self.emit(format!("{name}: {value:.decimals$} {unit}"));
    }

    fn budget(&mut self, name: &str, value: f64, unit: &str, decimals: usize, budget: Budget) {
        let (sign, limit, ok) = match budget {
            Budget::AtMost(limit) => ("<=", limit, value <= limit),
            Budget::AtLeast(limit) => (">=", limit, value >= limit),
        };
        let verdict = if ok {
            "PASS".to_string()
        } else {
            let off = (value - limit).abs();
            format!(
                "OVER by {off:.decimals$} {unit} ({:.0} %)",
                100.0 * off / limit
            )
        };
        self.emit(format!(
            "{name}: {value:.decimals$} {unit} (budget {sign} {limit} {unit}) {verdict}"
        ));
    }

    fn info(&mut self, name: &str, text: String) {
        println!("  {name}: {text}");
    }

    fn emit(&mut self, line: String) {
        println!("{line}");
        self.lines.push(line);
    }

    fn summary(&self) {
        println!();
        println!("== summary ==");
        for line in &self.lines {
            println!("{line}");
        }
    }
}

fn section(title: &str) {
    println!();
    println!("-- {title}");
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
