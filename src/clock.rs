//! Time, behind a trait. A Pi has no real-time clock: after a power cut its wall clock may say
//! 1970 until NTP syncs. So every reading records both the wall time and the monotonic
//! boot time (CLOCK_BOOTTIME), and whether the wall clock was trusted when it was taken; the
//! queue re-stamps untrusted readings once the clock is trusted.

use std::time::Duration;

/// When a reading was taken, as far as this device can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Wall clock, nanoseconds since the Unix epoch.
    pub wall_ns: i64,
    /// CLOCK_BOOTTIME in nanoseconds: counts from boot, including suspend, never jumps.
    pub mono_ns: i64,
    /// The wall clock was synchronised and plausible when this was taken.
    pub trusted: bool,
}

/// The sources of time. The system implementation reads the kernel; tests script one.
pub trait Clock: Send + Sync {
    /// CLOCK_REALTIME in nanoseconds since the epoch.
    fn wall_ns(&self) -> i64;
    /// CLOCK_BOOTTIME in nanoseconds.
    fn mono_ns(&self) -> i64;
    /// Whether the kernel or timesyncd says the wall clock is synchronised.
    fn synchronised(&self) -> bool;
    /// This boot's id (`/proc/sys/kernel/random/boot_id`).
    fn boot_id(&self) -> String;
    /// Sleep on the monotonic clock. Tests advance simulated time instead.
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration)
    }
}
