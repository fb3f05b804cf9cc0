//! The sampler: reads each periodic sensor on its own interval and turns values into
//! timestamped readings. Intervals follow the monotonic clock, so an NTP step of the wall clock
//! neither skips nor doubles a sample. A sensor that fails is retried a little, then skipped for
//! that interval, counted, logged once per failure streak, and re-opened after a run of failures;
//! it never stops the other sensors and never yields a made-up value.

use crate::clock::TimeKeeper;
use crate::reading::{Fields, Kind, Reading};
use crate::sensors::{EventSensor, Sensor, SensorError};
use crate::shutdown::Shutdown;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// Tries per scheduled read before the interval is given up.
const ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Consecutive failed intervals after which the sensor is opened afresh (re-probed).
const REPROBE_AFTER: u32 = 5;

/// What sensor threads tell the recorder.
#[derive(Debug)]
pub enum Message {
    Reading(Reading),
    /// A scheduled read gave nothing; counted per sensor and reason.
    Failed {
        sensor: usize,
        reason: &'static str,
    },
}

/// Opens (or re-opens) a sensor's driver.
pub type Opener<S> = Box<dyn FnMut() -> Result<Box<S>, SensorError> + Send>;

/// One sensor and its schedule.
pub struct Slot<S: ?Sized> {
    pub index: usize,
    pub id: String,
    pub interval: Duration,
    pub open: Opener<S>,
    driver: Option<Box<S>>,
    failures: u32,
    streak: Option<&'static str>,
}

impl<S: ?Sized> Slot<S> {
    pub fn new(index: usize, id: String, interval: Duration, open: Opener<S>) -> Slot<S> {
        Slot {
            index,
            id,
            interval,
            open,
            driver: None,
            failures: 0,
            streak: None,
        }
    }

    /// Bookkeeping after a failed interval: log once per streak, re-probe after a run.
    fn failed(&mut self, err: &SensorError, out: &Sender<Message>) {
        let reason = err.reason();
        if self.streak != Some(reason) {
            log::warn!("sensor {}: {err}; skipping its readings until it recovers (logged once per streak)", self.id);
            self.streak = Some(reason);
        }
        self.failures += 1;
        if self.failures % REPROBE_AFTER == 0 {
            self.driver = None;
        }
        let _ = out.send(Message::Failed {
            sensor: self.index,
            reason,
        });
    }

    fn recovered(&mut self) {
        if let Some(reason) = self.streak.take() {
            log::info!(
                "sensor {}: reading again after {} failed interval(s) ({reason})",
                self.id,
                self.failures
            );
        }
        self.failures = 0;
    }
}

/// Read once with bounded retries, opening the driver first if needed.
fn read_with_retries<S: Sensor + ?Sized>(
    slot: &mut Slot<S>,
    shutdown: &Shutdown,
) -> Result<Fields, SensorError> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 && shutdown.sleep(RETRY_PAUSE) {
            break;
        }
        if slot.driver.is_none() {
            match (slot.open)() {
                Ok(driver) => slot.driver = Some(driver),
                Err(e) => return Err(e), // opening is not retried within one interval
            }
        }
        let Some(driver) = slot.driver.as_mut() else {
            break;
        };
        match driver.read() {
            Ok(fields) => return Ok(fields),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| SensorError::NotFound("shutting down".into())))
}

fn emit(
    out: &Sender<Message>,
    time: &TimeKeeper,
    sensor: usize,
    kind: Kind,
    fields: Fields,
) -> bool {
    let reading = Reading {
        sensor,
        kind,
        fields,
        stamp: time.stamp(),
    };
    out.send(Message::Reading(reading)).is_ok()
}

/// Run every periodic sensor on its interval until shutdown.
pub fn run_periodic(
    mut slots: Vec<Slot<dyn Sensor>>,
    time: Arc<TimeKeeper>,
    out: Sender<Message>,
    shutdown: Shutdown,
) {
    if slots.is_empty() {
        return;
    }
    let clock = time.clock().clone();
    let start = clock.mono_ns();
    let mut due: Vec<i64> = vec![start; slots.len()];
    loop {
        let now = clock.mono_ns();
        let (next, &when) = due
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .expect("slots is not empty");
        if when > now && shutdown.sleep(Duration::from_nanos((when - now) as u64)) {
            return;
        }
        if shutdown.is_triggered() {
            return;
        }
        let slot = &mut slots[next];
        match read_with_retries(slot, &shutdown) {
            Ok(fields) => {
                slot.recovered();
                if !emit(&out, &time, slot.index, Kind::Routine, fields) {
                    return;
                }
            }
            // A read cut short by shutdown is not a sensor failure.
            Err(_) if shutdown.is_triggered() => return,
            Err(e) => slot.failed(&e, &out),
        }
        // Next due on the monotonic grid; if we fell behind (a slow bus), skip missed slots
        // rather than firing a burst.
        let interval = slot.interval.as_nanos() as i64;
        let after = clock.mono_ns();
        due[next] = when + interval;
        if due[next] <= after {
            due[next] = after + interval - (after - when) % interval;
        }
    }
}

/// Run one event sensor (PIR, reed switch): each edge becomes an `Event` reading as it happens,
/// and the current state is read on the sensor's interval like any other sensor.
pub fn run_events(
    mut slot: Slot<dyn EventSensor>,
    time: Arc<TimeKeeper>,
    out: Sender<Message>,
    shutdown: Shutdown,
) {
    let clock = time.clock().clone();
    let mut due = clock.mono_ns();
    while !shutdown.is_triggered() {
        let now = clock.mono_ns();
        if now >= due {
            match read_with_retries(&mut slot, &shutdown) {
                Ok(fields) => {
                    slot.recovered();
                    if !emit(&out, &time, slot.index, Kind::Routine, fields) {
                        return;
                    }
                }
                Err(e) => {
                    slot.failed(&e, &out);
                    if slot.driver.is_none() && shutdown.sleep(slot.interval) {
                        return;
                    }
                }
            }
            due += slot.interval.as_nanos() as i64;
            let after = clock.mono_ns();
            if due <= after {
                due = after + slot.interval.as_nanos() as i64;
            }
            continue;
        }
        let Some(driver) = slot.driver.as_mut() else {
            due = now;
            continue;
        };
        // Wait for an edge at most until the next scheduled read, and at most a second so a
        // shutdown is noticed promptly.
        let wait = Duration::from_nanos((due - now) as u64).min(Duration::from_secs(1));
        match driver.next_event(wait) {
            Ok(Some(fields)) => {
                if !emit(&out, &time, slot.index, Kind::Event, fields) {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                slot.failed(&e, &out);
                if shutdown.sleep(Duration::from_secs(1)) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::reading::Value;
    use std::sync::mpsc;

    /// A sensor that fails on the reads listed in `fail_on` (counted from 0) and otherwise
    /// returns its read number.
    struct Flaky {
        reads: u32,
        fail_on: Vec<u32>,
    }

    impl Sensor for Flaky {
        fn read(&mut self) -> Result<Fields, SensorError> {
            let n = self.reads;
            self.reads += 1;
            if self.fail_on.contains(&n) {
                Err(SensorError::Crc {
                    expected: 1,
                    actual: 2,
                })
            } else {
                Ok(vec![("n", Value::Int(n as i64))])
            }
        }
    }

    fn slot(index: usize, fail_on: Vec<u32>) -> Slot<dyn Sensor> {
        let mut fail_on = Some(fail_on);
        Slot::new(
            index,
            format!("S{index}"),
            Duration::from_millis(10),
            Box::new(move || {
                Ok(Box::new(Flaky {
                    reads: 0,
                    fail_on: fail_on.take().unwrap_or_default(),
                }) as Box<dyn Sensor>)
            }),
        )
    }

    #[test]
    fn a_failing_sensor_is_retried_then_skipped_and_never_stops_the_others() {
        let time = Arc::new(TimeKeeper::new(Arc::new(SystemClock::default()), false, 0));
        let (tx, rx) = mpsc::channel();
        let shutdown = Shutdown::new();
        // Sensor 0 fails three reads in a row (one whole interval), sensor 1 never fails.
        let slots = vec![slot(0, vec![0, 1, 2]), slot(1, vec![])];
        let stopper = shutdown.clone();
        let handle = std::thread::spawn(move || run_periodic(slots, time, tx, stopper));
        let mut readings = Vec::new();
        let mut failures = Vec::new();
        while readings.len() < 6 {
            match rx
                .recv_timeout(Duration::from_secs(5))
                .expect("sampler produced nothing")
            {
                Message::Reading(r) => readings.push(r),
                Message::Failed { sensor, reason } => failures.push((sensor, reason)),
            }
        }
        shutdown.trigger();
        handle.join().unwrap();
        assert_eq!(failures, vec![(0, "crc")]);
        let first_of_0 = readings.iter().find(|r| r.sensor == 0).unwrap();
        assert_eq!(
            first_of_0.fields,
            vec![("n", Value::Int(3))],
            "no made-up value for the failed interval"
        );
        assert!(readings.iter().filter(|r| r.sensor == 1).count() >= 2);
        assert!(readings
            .iter()
            .all(|r| r.stamp.trusted && r.kind == Kind::Routine));
    }
}
