//! The uploader thread's loop: one step at a time, paced, paused while the server or network
//! fails, telling the watchdog how long each step and each wait may take and the status line
//! whether it is uploading or offline.

use crate::activity::{Activity, Upload};
use crate::clock::Clock;
use crate::liveness::Heartbeat;
use crate::shutdown::Shutdown;
use crate::upload::{Step, Uploader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the uploader sleeps when the queue is empty.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often a waiting uploader looks for a drain request from `sync`.
const DRAIN_POLL: Duration = Duration::from_millis(250);
/// How long the uploader waits after a queue error.
const QUEUE_ERROR_PAUSE: Duration = Duration::from_secs(5);

/// The longest one step may take: a batch, and while a rejected batch is bisected two requests
/// per halving, each within the request timeout. Past this the uploader is stuck.
pub fn step_bound(timeout: Duration, batch_lines: usize) -> Duration {
    let halvings = usize::BITS - batch_lines.max(1).leading_zeros();
    timeout.saturating_mul(2 * halvings + 2)
}

/// What the uploader thread needs besides the uploader itself.
pub struct UploadWatch {
    pub heartbeat: Heartbeat,
    pub activity: std::sync::Arc<Activity>,
    pub step_bound: Duration,
    /// Raised by SIGUSR1 (`sync` beside the running agent): end the current wait.
    pub drain: Arc<AtomicBool>,
}

pub fn upload_loop<O: crate::upload::Output>(
    mut uploader: Uploader<O>,
    start_delay: Duration,
    clock: &dyn Clock,
    stop: Shutdown,
    watch: UploadWatch,
) {
    watch.activity.set_upload(Upload::Idle, 0);
    if !start_delay.is_zero() {
        log::info!(
            "waiting {:.1?} before the first upload (spreads a fleet's reconnects)",
            start_delay
        );
        watch.heartbeat.within(start_delay);
        if clock.wait(start_delay, &stop) {
            return;
        }
    }
    let mut offline = false;
    loop {
        watch.heartbeat.within(watch.step_bound);
        let wait = match uploader.step() {
            Ok(Step::Sent(_)) => {
                offline = false;
                watch.activity.set_upload(Upload::Uploading, 0);
                uploader.pace_delay()
            }
            Ok(Step::Idle) => {
                watch.activity.set_upload(Upload::Idle, 0);
                IDLE_POLL
            }
            Ok(Step::Paused(pause)) => {
                let depth = uploader.queue().stats().map(|s| s.depth).unwrap_or(0);
                if !offline {
                    log::info!("queueing offline: {depth} reading(s) waiting on disk; uploads resume when the server answers");
                    offline = true;
                }
                watch.activity.set_upload(Upload::Offline, depth);
                pause.delay
            }
            Err(e) => {
                log::error!("upload: queue error: {e}");
                QUEUE_ERROR_PAUSE
            }
        };
        // Waiting out a pause or an idle queue is progress too.
        watch.heartbeat.within(wait);
        if wait_unless_drain_requested(clock, wait, &stop, &watch.drain) {
            return;
        }
    }
}

/// Wait `wait` on `clock`, cut short by a drain request (`sync` beside the running agent
/// sends SIGUSR1): a pause after failures ends at once. True when the agent is stopping.
fn wait_unless_drain_requested(
    clock: &dyn Clock,
    wait: Duration,
    stop: &Shutdown,
    drain: &AtomicBool,
) -> bool {
    let deadline = clock.mono_ns().saturating_add(wait.as_nanos() as i64);
    loop {
        if drain.swap(false, Ordering::SeqCst) {
            log::info!("drain requested (fieldlink sync): uploading now");
            return stop.is_triggered();
        }
        let left = deadline.saturating_sub(clock.mono_ns());
        if left <= 0 {
            return stop.is_triggered();
        }
        let slice = Duration::from_nanos(left as u64).min(DRAIN_POLL);
        if clock.wait(slice, stop) {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_drain_request_ends_an_uploader_pause_at_once_and_is_used_up() {
        let clock = ManualClock::new(0, true, "b");
        let (stop, drain) = (Shutdown::new(), AtomicBool::new(true));
        let start = clock.mono_ns();
        let wait = |d| wait_unless_drain_requested(&clock, d, &stop, &drain);
        assert!(!wait(Duration::from_secs(600)));
        assert_eq!(clock.mono_ns(), start);
        assert!(!wait(Duration::from_secs(3)));
        assert_eq!(clock.mono_ns() - start, 3_000_000_000);
    }

    #[test]
    fn a_step_may_take_a_request_timeout_for_each_request_of_a_full_bisection() {
        // 5000 lines halve 13 times: up to 2 requests per halving plus the batch and a retry.
        assert_eq!(
            step_bound(Duration::from_secs(10), 5000),
            Duration::from_secs(280)
        );
        assert_eq!(
            step_bound(Duration::from_secs(10), 1),
            Duration::from_secs(40)
        );
    }
}
