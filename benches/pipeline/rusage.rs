//! The child's own resource usage (peak RSS, CPU time) through a fresh exec of this bench
//! executable, so the figure is the agent's and not the benchmark's.

use std::process::Command;
use std::time::Instant;

pub const RUSAGE_TRAMPOLINE: &str = "--rusage-trampoline";

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
pub fn rusage_trampoline(args: &[String]) {
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
pub fn rusage_self_maxrss() -> libc::c_long {
    // SAFETY: getrusage fills the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

/// Wait for a child and take its resource usage (peak RSS in KiB is `ru_maxrss`).
#[allow(unsafe_code)]
pub fn wait4(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
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

pub fn timeval_s(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}
