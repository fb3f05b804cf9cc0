//! Figure 3: peak RSS and wall time of the real `fieldlink sync` draining the same queue.

use crate::fault_server::FaultServer;
use crate::fleet::{fill_queue, Fleet};
use crate::received::Received;
use crate::report::{section, Budget, Report};
use crate::rusage::RUSAGE_TRAMPOLINE;
use crate::work_dir::WorkDir;
use crate::{BATCH_LINES, MIB};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn binary_drain(
    report: &mut Report,
    work: &WorkDir,
    server: &FaultServer,
    binary: Option<&Path>,
    rows: usize,
    start_ns: i64,
    gzip_rate: f64,
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
    let before = Received::by(server);
    let run = run_sync(binary, work, server, &queue_path);
    let got = Received::by(server).since(&before);
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
    // CPU per reading of the whole process, against gzip alone on the same lines (figure 2).
    report.budget(
        "drain CPU / gzip-only CPU (fieldlink sync, per reading)",
        (run.user_s + run.sys_s) / rows as f64 * gzip_rate,
        "x",
        2,
        Budget::AtMost(1.5),
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

pub struct SyncRun {
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
pub fn run_sync(binary: &Path, work: &WorkDir, server: &FaultServer, queue_path: &Path) -> SyncRun {
    let board = work.file("board.toml");
    std::fs::write(
        &board,
        format!(
            "[device]\nid = \"bench-device\"\n\n[queue]\npath = \"{}\"\n\n[upload]\nurl = \"http://{}\"\n\
             api = \"v1\"\ndatabase = \"bench\"\nbatch_lines = {BATCH_LINES}\nbatch_bytes = \"1MiB\"\n\
             max_points_per_second = 0\nstart_delay_max = \"0s\"\n",
            queue_path.display(),
            server.addr()
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
