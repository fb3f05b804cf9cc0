//! Liveness: each worker thread (sampler, recorder, uploader) promises, as it goes, by when it
//! will show progress again, and the main thread pings systemd's watchdog only while every
//! promise holds. A worker stuck in a sensor read, a disk write or a request that outlived its
//! timeout stops the pings, and systemd restarts the agent.

use crate::clock::Clock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One watched worker: its name and the monotonic time by which it must show progress.
#[derive(Debug)]
struct Worker {
    name: &'static str,
    deadline_ns: AtomicI64,
}

/// A worker's side: it calls [`Heartbeat::within`] whenever it makes progress. Dropping it
/// (the worker ended on purpose) stops watching; a panic unwinding past it does not.
pub struct Heartbeat {
    worker: Arc<Worker>,
    clock: Arc<dyn Clock>,
    grace: Duration,
}

impl Heartbeat {
    /// Progress now; the next comes within `bound` (plus the watchdog's grace, which covers
    /// the work between two beats: reading the sensors, one commit).
    pub fn within(&self, bound: Duration) {
        let deadline = self
            .clock
            .mono_ns()
            .saturating_add(duration_ns(bound))
            .saturating_add(duration_ns(self.grace));
        self.worker.deadline_ns.store(deadline, Ordering::Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.worker.deadline_ns.store(i64::MAX, Ordering::Relaxed);
        }
    }
}

/// The main thread's side: which workers, if any, missed their promise.
#[derive(Clone)]
pub struct Liveness {
    workers: Arc<Mutex<Vec<Arc<Worker>>>>,
    clock: Arc<dyn Clock>,
    grace: Duration,
}

impl Liveness {
    /// `grace` is added to every bound: a worker is stalled only when it is this late.
    pub fn new(clock: Arc<dyn Clock>, grace: Duration) -> Liveness {
        Liveness {
            workers: Arc::default(),
            clock,
            grace,
        }
    }

    /// Watch one more worker; it must beat within the grace from now.
    pub fn watch(&self, name: &'static str) -> Heartbeat {
        let worker = Arc::new(Worker {
            name,
            deadline_ns: AtomicI64::new(0),
        });
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker.clone());
        let heartbeat = Heartbeat {
            worker,
            clock: self.clock.clone(),
            grace: self.grace,
        };
        heartbeat.within(Duration::ZERO);
        heartbeat
    }

    /// The workers past their deadline, by name; empty while all are alive.
    pub fn stalled(&self) -> Vec<&'static str> {
        let now = self.clock.mono_ns();
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|w| w.deadline_ns.load(Ordering::Relaxed) < now)
            .map(|w| w.name)
            .collect()
    }
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_worker_is_stalled_only_once_its_bound_and_the_grace_have_passed() {
        let clock = Arc::new(ManualClock::new(0, true, "b"));
        let liveness = Liveness::new(clock.clone(), Duration::from_secs(5));
        let sampler = liveness.watch("sampler");
        let recorder = liveness.watch("recorder");
        sampler.within(Duration::from_secs(60));
        clock.advance(Duration::from_secs(5));
        assert!(liveness.stalled().is_empty());
        clock.advance(Duration::from_millis(1));
        assert_eq!(liveness.stalled(), ["recorder"]);
        recorder.within(Duration::from_secs(1));
        clock.advance(Duration::from_secs(60));
        assert_eq!(liveness.stalled(), ["sampler", "recorder"]);
        drop(sampler);
        recorder.within(Duration::ZERO);
        assert!(liveness.stalled().is_empty());
    }

    #[test]
    fn a_worker_that_panicked_stays_watched_and_stalls() {
        let clock = Arc::new(ManualClock::new(0, true, "b"));
        let liveness = Liveness::new(clock.clone(), Duration::from_secs(1));
        let recorder = liveness.watch("recorder");
        let ended = std::thread::spawn(move || {
            let _heartbeat = recorder;
            panic!("a bug in the recorder");
        })
        .join();
        assert!(ended.is_err());
        clock.advance(Duration::from_secs(2));
        assert_eq!(liveness.stalled(), ["recorder"]);
    }
}
