//! The kernel's clocks: CLOCK_BOOTTIME for schedules and stamps, and adjtimex(2) for whether
//! NTP has synchronised the wall clock.

use std::io;

/// A clock the kernel would not read.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// clock_gettime(CLOCK_BOOTTIME) failed (only on kernels older than 2.6.39).
    #[error("cannot read CLOCK_BOOTTIME")]
    Boottime(#[source] io::Error),
    /// clock_gettime(CLOCK_MONOTONIC) failed.
    #[error("cannot read CLOCK_MONOTONIC")]
    Monotonic(#[source] io::Error),
    /// adjtimex(2) in read-only mode failed.
    #[error("cannot read the kernel's clock state (adjtimex)")]
    Adjtimex(#[source] io::Error),
}

/// CLOCK_BOOTTIME in nanoseconds: monotonic, and unlike CLOCK_MONOTONIC it keeps counting
/// through suspend.
// time_t and c_long are 32-bit on armv7: the conversions are needed there, not on x86_64.
#[allow(unsafe_code, clippy::useless_conversion)]
pub fn boottime_ns() -> Result<i64, TimeError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return Err(TimeError::Boottime(io::Error::last_os_error()));
    }
    Ok(i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_nsec))
}

/// CLOCK_MONOTONIC in microseconds, as systemd wants it with `RELOADING=1`
/// (`MONOTONIC_USEC=`).
// time_t and c_long are 32-bit on armv7: the conversions are needed there, not on x86_64.
#[allow(unsafe_code, clippy::useless_conversion)]
pub fn monotonic_usec() -> Result<u64, TimeError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return Err(TimeError::Monotonic(io::Error::last_os_error()));
    }
    let usec = i64::from(ts.tv_sec) * 1_000_000 + i64::from(ts.tv_nsec) / 1_000;
    Ok(u64::try_from(usec).unwrap_or(0))
}

/// Whether the kernel says its wall clock is synchronised: adjtimex(2) in read-only mode,
/// synchronised unless STA_UNSYNC is set or the state is TIME_ERROR.
///
/// The system call is made directly: on 32-bit targets with a 32-bit `time_t` (armv7 glibc),
/// glibc's `adjtimex` wrapper fails with EOVERFLOW once the wall clock is past 2038-01-19,
/// which would make a synchronised clock look unsynchronised forever. The kernel's own 32-bit
/// call only truncates the `time` field, which is not read here.
#[allow(unsafe_code)]
pub fn kernel_synchronised() -> Result<bool, TimeError> {
    // SAFETY: a zeroed timex is a valid value; with modes = 0 the kernel only reads its state
    // into the struct we own, whose layout is the kernel's (checked below for 32-bit targets).
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::syscall(libc::SYS_adjtimex, &mut tx as *mut libc::timex) };
    if state < 0 {
        return Err(TimeError::Adjtimex(io::Error::last_os_error()));
    }
    Ok(state != libc::c_long::from(libc::TIME_ERROR) && tx.status & libc::STA_UNSYNC == 0)
}

// The direct system call relies on libc's `timex` being the kernel's 32-bit `old_timex32` (128
// bytes) on 32-bit targets; a libc built for a 64-bit `time_t` there would need `clock_adjtime64`.
#[cfg(target_pointer_width = "32")]
const _: () = assert!(std::mem::size_of::<libc::timex>() == 128);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_moves_forward_and_adjtimex_answers() {
        let a = boottime_ns().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = boottime_ns().unwrap();
        assert!(a > 0 && b - a >= 2_000_000, "{a} then {b}");
        assert!(kernel_synchronised().is_ok());
        assert!(monotonic_usec().unwrap() > 0);
    }
}
