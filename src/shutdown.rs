//! A stop flag every thread can sleep on: SIGTERM wakes sleepers at once instead of after their
//! backoff, so the agent exits within seconds.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct Shutdown(Arc<(Mutex<bool>, Condvar)>);

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    pub fn trigger(&self) {
        let (flag, wake) = &*self.0;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }

    pub fn is_triggered(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleep up to `duration` of real time; returns true when woken by a shutdown. Timers wait
    /// through [`Clock::wait`](crate::clock::Clock::wait), which lands here for the system clock.
    pub fn sleep(&self, duration: Duration) -> bool {
        let (flag, wake) = &*self.0;
        let deadline = Instant::now() + duration;
        let mut stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            stopped = wake
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *stopped
    }
}
