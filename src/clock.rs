//! Time, behind a trait. A Pi has no real-time clock: after a power cut its wall clock may say
//! 1970 until NTP syncs. So every reading records both the wall time and the monotonic
//! boot time (CLOCK_BOOTTIME), and whether the wall clock was trusted when it was taken; the
//! queue re-stamps untrusted readings once the clock is trusted.

use crate::shutdown::Shutdown;
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
    /// Wait `duration` on this clock, or less if `stop` is triggered meanwhile; true when
    /// stopped. Every timer of the agent waits here, so a test clock decides what waiting means.
    fn wait(&self, duration: Duration, stop: &Shutdown) -> bool {
        stop.sleep(duration)
    }
}

/// The build time of this binary, in nanoseconds since the epoch.
pub fn build_time_ns() -> i64 {
    env!("FIELDLINK_BUILD_UNIX").parse::<i64>().unwrap_or(0) * 1_000_000_000
}

/// A wall time as signed nanoseconds since the Unix epoch. `SystemTime` is 64-bit on every
/// target, 32-bit armv7 included (std reads the clock with `clock_gettime64`), so this is exact
/// past 2038-01-19; it saturates only in the year 2262.
pub fn ns_since_epoch(time: std::time::SystemTime) -> i64 {
    let saturate = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => saturate(d),
        Err(e) => -saturate(e.duration()),
    }
}

/// The kernel's clocks and the synchronisation flags of the kernel and systemd-timesyncd.
pub struct SystemClock {
    timesync_flag: std::path::PathBuf,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            timesync_flag: "/run/systemd/timesync/synchronized".into(),
        }
    }
}

impl Clock for SystemClock {
    fn wall_ns(&self) -> i64 {
        ns_since_epoch(std::time::SystemTime::now())
    }

    fn mono_ns(&self) -> i64 {
        // Only kernels older than 2.6.39 lack CLOCK_BOOTTIME.
        crate::os::time::boottime_ns().unwrap_or(0)
    }

    fn synchronised(&self) -> bool {
        self.timesync_flag.exists() || crate::os::time::kernel_synchronised().unwrap_or(false)
    }

    fn boot_id(&self) -> String {
        crate::os::proc::boot_id().unwrap_or_else(|_| "unknown-boot".into())
    }
}

/// Decides whether the wall clock can be trusted, and stamps readings.
pub struct TimeKeeper {
    clock: std::sync::Arc<dyn Clock>,
    require_sync: bool,
    /// Nothing earlier than this can be true: the build time, or the latest time this device
    /// ever trusted (persisted by the queue).
    not_before_ns: std::sync::atomic::AtomicI64,
}

impl TimeKeeper {
    pub fn new(
        clock: std::sync::Arc<dyn Clock>,
        require_sync: bool,
        last_trusted_ns: i64,
    ) -> TimeKeeper {
        TimeKeeper {
            clock,
            require_sync,
            not_before_ns: std::sync::atomic::AtomicI64::new(last_trusted_ns.max(build_time_ns())),
        }
    }

    pub fn clock(&self) -> &std::sync::Arc<dyn Clock> {
        &self.clock
    }

    /// Stamp a reading now.
    pub fn stamp(&self) -> Stamp {
        let wall_ns = self.clock.wall_ns();
        let mono_ns = self.clock.mono_ns();
        Stamp {
            wall_ns,
            mono_ns,
            trusted: self.trusts(wall_ns),
        }
    }

    /// A wall time is trusted when it is not before what we already know to be past, and (if
    /// the board asks for it) the kernel or timesyncd says the clock is synchronised.
    pub fn trusts(&self, wall_ns: i64) -> bool {
        let plausible = wall_ns
            >= self
                .not_before_ns
                .load(std::sync::atomic::Ordering::Relaxed);
        plausible && (!self.require_sync || self.clock.synchronised())
    }

    /// Remember a trusted time as the new lower bound for plausibility.
    pub fn saw_trusted(&self, wall_ns: i64) {
        self.not_before_ns
            .fetch_max(wall_ns, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn not_before_ns(&self) -> i64 {
        self.not_before_ns
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A clock tests drive by hand: wall and monotonic time, sync state and boot id all settable.
/// Sleeping or waiting on it advances it at once instead of taking real time.
#[derive(Debug, Default)]
pub struct ManualClock {
    state: std::sync::Mutex<ManualState>,
}

#[derive(Debug, Default, Clone)]
struct ManualState {
    wall_ns: i64,
    mono_ns: i64,
    synced: bool,
    boot: String,
}

impl ManualClock {
    pub fn new(wall_ns: i64, synced: bool, boot: &str) -> ManualClock {
        ManualClock {
            state: std::sync::Mutex::new(ManualState {
                wall_ns,
                mono_ns: 1_000_000_000,
                synced,
                boot: boot.into(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ManualState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Time passes: both clocks move together.
    pub fn advance(&self, d: Duration) {
        self.with(|s| {
            s.wall_ns += d.as_nanos() as i64;
            s.mono_ns += d.as_nanos() as i64;
        })
    }

    /// The wall clock is stepped (NTP sync, manual change); the monotonic clock is not.
    pub fn set_wall(&self, wall_ns: i64) {
        self.with(|s| s.wall_ns = wall_ns)
    }

    pub fn set_synced(&self, synced: bool) {
        self.with(|s| s.synced = synced)
    }

    /// A reboot: new boot id, monotonic time restarts, wall clock as given.
    pub fn reboot(&self, boot: &str, wall_ns: i64) {
        self.with(|s| {
            s.boot = boot.into();
            s.mono_ns = 1_000_000_000;
            s.wall_ns = wall_ns;
            s.synced = false;
        })
    }
}

impl Clock for ManualClock {
    fn wall_ns(&self) -> i64 {
        self.with(|s| s.wall_ns)
    }
    fn mono_ns(&self) -> i64 {
        self.with(|s| s.mono_ns)
    }
    fn synchronised(&self) -> bool {
        self.with(|s| s.synced)
    }
    fn boot_id(&self) -> String {
        self.with(|s| s.boot.clone())
    }
    fn sleep(&self, duration: Duration) {
        self.advance(duration)
    }
    /// Waiting takes no real time: the clock moves on by `duration` unless already stopped.
    fn wait(&self, duration: Duration, stop: &Shutdown) -> bool {
        if !stop.is_triggered() {
            self.advance(duration);
        }
        stop.is_triggered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const DAY: i64 = 86_400 * 1_000_000_000;
    /// 2040-02-29T12:34:56Z, past the 32-bit `time_t` limit (2038-01-19T03:14:07Z).
    const AFTER_2038_S: u64 = 2_214_131_696;

    #[test]
    fn a_wall_time_after_2038_is_exact_in_nanoseconds_on_every_target() {
        let time = std::time::UNIX_EPOCH + Duration::new(AFTER_2038_S, 123_456_789);
        assert_eq!(ns_since_epoch(time), 2_214_131_696_123_456_789);
        let before_1970 = std::time::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(ns_since_epoch(before_1970), -1_000_000_000);
        let wall_ns = ns_since_epoch(time);
        let clock = Arc::new(ManualClock::new(wall_ns, true, "b1"));
        let keeper = TimeKeeper::new(clock.clone(), true, wall_ns - DAY);
        let stamp = keeper.stamp();
        assert_eq!(stamp.wall_ns, 2_214_131_696_123_456_789);
        assert!(stamp.trusted);
        clock.advance(Duration::from_secs(3 * 365 * 86_400));
        assert_eq!(keeper.stamp().wall_ns, wall_ns + 3 * 365 * DAY);
    }

    #[test]
    fn a_1970_clock_is_never_trusted() {
        let clock = Arc::new(ManualClock::new(5 * DAY, true, "b1"));
        let keeper = TimeKeeper::new(clock, false, 0);
        assert!(!keeper.stamp().trusted);
    }

    #[test]
    fn a_clock_before_the_last_trusted_time_is_not_trusted_even_when_synced() {
        let now = build_time_ns() + 100 * DAY;
        let clock = Arc::new(ManualClock::new(now - DAY, true, "b1"));
        let keeper = TimeKeeper::new(clock.clone(), true, now);
        assert!(!keeper.stamp().trusted);
        clock.set_wall(now + 1);
        assert!(keeper.stamp().trusted);
    }

    #[test]
    fn require_sync_waits_for_the_kernel_or_timesyncd() {
        let clock = Arc::new(ManualClock::new(build_time_ns() + DAY, false, "b1"));
        let keeper = TimeKeeper::new(clock.clone(), true, 0);
        assert!(!keeper.stamp().trusted);
        clock.set_synced(true);
        assert!(keeper.stamp().trusted);
        let relaxed = TimeKeeper::new(
            Arc::new(ManualClock::new(build_time_ns() + DAY, false, "b1")),
            false,
            0,
        );
        assert!(
            relaxed.stamp().trusted,
            "without require_sync a plausible clock is enough"
        );
    }

    #[test]
    fn the_system_clock_reads_boottime_and_a_boot_id() {
        let clock = SystemClock::default();
        let a = clock.mono_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.mono_ns() > a && a > 0);
        assert!(clock.wall_ns() > build_time_ns() - DAY);
        assert_eq!(clock.boot_id().len(), 36);
    }

    #[test]
    fn waiting_on_the_manual_clock_moves_it_unless_stopped() {
        let clock = ManualClock::new(0, true, "b1");
        let stop = Shutdown::new();
        let before = clock.mono_ns();
        assert!(!clock.wait(Duration::from_secs(90), &stop));
        assert_eq!(clock.mono_ns() - before, 90_000_000_000);
        stop.trigger();
        assert!(clock.wait(Duration::from_secs(90), &stop));
        assert_eq!(
            clock.mono_ns() - before,
            90_000_000_000,
            "a stopped wait takes no time"
        );
    }
}
