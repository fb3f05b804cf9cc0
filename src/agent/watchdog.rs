//! Keeping systemd informed: `READY=1` once running, `WATCHDOG=1` only while every worker keeps
//! its promise of progress (see [`crate::liveness`]), `STATUS=` with what the agent is doing,
//! and `STOPPING=1` at the end. A stalled worker stops the pings, so systemd's `WatchdogSec=`
//! kills and restarts the agent.

use crate::activity::Activity;
use crate::clock::{Clock, TimeKeeper};
use crate::liveness::Liveness;
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// How often the status line is refreshed when systemd asks for no watchdog.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// How late a worker may be when systemd asks for no watchdog (only the log then says so).
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// What the main thread looks at on each tick.
pub struct Watch {
    pub liveness: Liveness,
    pub activity: Arc<Activity>,
    pub time: Arc<TimeKeeper>,
}

/// The tick of the main loop and the grace a worker gets beyond its own bound: half of
/// `WatchdogSec` each (sd_watchdog_enabled(3)), so a stalled worker stops the pings one tick
/// after its bound and systemd acts within `WatchdogSec` of the last ping.
pub fn tick_and_grace() -> (Duration, Duration) {
    match crate::os::notify::watchdog_interval() {
        Some(interval) => (interval, interval),
        None => (STATUS_INTERVAL, DEFAULT_GRACE),
    }
}

/// Say we are ready, then at every `tick` ping the watchdog (if every worker is alive) and
/// refresh the status, until shutdown; then say we are stopping.
pub fn keep_systemd_informed(
    clock: &dyn Clock,
    shutdown: &Shutdown,
    watch: &Watch,
    tick: Duration,
    notify: &mut dyn FnMut(&str),
) {
    notify(&format!("READY=1\nSTATUS={}", status_line(watch)));
    let mut stall_logged = false;
    while !clock.wait(tick, shutdown) {
        let stalled = watch.liveness.stalled();
        if stalled.is_empty() {
            stall_logged = false;
            notify(&format!("WATCHDOG=1\nSTATUS={}", status_line(watch)));
            continue;
        }
        let names = stalled.join(", ");
        if !stall_logged {
            log::error!("watchdog: no progress from {names} within its bound; watchdog pings stop so that systemd restarts the agent");
            stall_logged = true;
        }
        notify(&format!("STATUS=stalled: {names}; watchdog pings stopped"));
    }
    notify("STOPPING=1\nSTATUS=committing and stopping");
}

fn status_line(watch: &Watch) -> String {
    watch.activity.status_line(watch.time.stamp().trusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{build_time_ns, ManualClock};

    #[test]
    fn pings_stop_once_a_worker_hangs_past_its_bound_and_the_status_names_it() {
        let clock = Arc::new(ManualClock::new(build_time_ns() + 1, true, "b"));
        let liveness = Liveness::new(clock.clone(), Duration::from_secs(1));
        let sampler = liveness.watch("sampler");
        let recorder = liveness.watch("recorder");
        let watch = Watch {
            liveness: liveness.clone(),
            activity: Arc::new(Activity::default()),
            time: Arc::new(TimeKeeper::new(clock.clone(), false, 0)),
        };
        // The recorder promises progress within 5 s and then hangs; the sampler keeps ticking.
        recorder.within(Duration::from_secs(5));
        let shutdown = Shutdown::new();
        let mut sent = Vec::new();
        let mut notify = |message: &str| {
            sent.push(message.to_string());
            sampler.within(Duration::from_secs(1));
            if sent.len() == 20 {
                shutdown.trigger();
            }
        };
        keep_systemd_informed(
            clock.as_ref(),
            &shutdown,
            &watch,
            Duration::from_secs(1),
            &mut notify,
        );
        assert_eq!(sent[0], "READY=1\nSTATUS=sampling");
        let pings: Vec<bool> = sent[1..20]
            .iter()
            .map(|m| m.starts_with("WATCHDOG=1"))
            .collect();
        // Ticks at 1..=6 s are within the 5 s bound plus 1 s grace; from 7 s on, silence.
        assert_eq!(pings, [[true; 6].as_slice(), &[false; 13]].concat());
        assert_eq!(sent[1], "WATCHDOG=1\nSTATUS=sampling");
        assert_eq!(sent[7], "STATUS=stalled: recorder; watchdog pings stopped");
        assert_eq!(sent[20], "STOPPING=1\nSTATUS=committing and stopping");
    }
}
