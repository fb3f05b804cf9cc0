//! The sampler: reads each periodic sensor on its own interval and turns values into
//! timestamped readings. Intervals follow the monotonic clock, so an NTP step of the wall clock
//! neither skips nor doubles a sample. A sensor that fails is retried a little, then skipped for
//! that interval, counted, logged once per failure streak, and re-opened after a run of failures;
//! it never stops the other sensors and never yields a made-up value. A reading's timestamp is
//! taken here (`emit`), the moment its read returns, from the time keeper in `clock.rs`.

use crate::clock::{Clock, ManualClock, TimeKeeper};
use crate::reading::{Fields, Kind, Reading};
use crate::sensors::{EventSensor, OpenDriver, Sensor, SensorError};
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

/// One sensor and its schedule.
pub struct Slot<S: ?Sized> {
    pub index: usize,
    pub id: String,
    pub interval: Duration,
    pub open: OpenDriver<S>,
    driver: Option<Box<S>>,
    failures: u32,
    streak: Option<&'static str>,
}

impl<S: ?Sized> Slot<S> {
    pub fn new(index: usize, id: String, interval: Duration, open: OpenDriver<S>) -> Slot<S> {
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
    clock: &dyn Clock,
    shutdown: &Shutdown,
) -> Result<Fields, SensorError> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 && clock.wait(RETRY_PAUSE, shutdown) {
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

/// When each periodic sensor is next due, on a grid of the monotonic clock: an NTP step of the
/// wall clock neither skips nor doubles a sample.
pub struct Schedule {
    due_ns: Vec<i64>,
    interval_ns: Vec<i64>,
}

impl Schedule {
    /// Every slot is due first at `start_ns`.
    pub fn new(start_ns: i64, intervals: impl IntoIterator<Item = Duration>) -> Schedule {
        let interval_ns: Vec<i64> = intervals
            .into_iter()
            .map(|i| (i.as_nanos() as i64).max(1))
            .collect();
        Schedule {
            due_ns: vec![start_ns; interval_ns.len()],
            interval_ns,
        }
    }

    /// The slot due first, and when.
    pub fn next(&self) -> Option<(usize, i64)> {
        self.due_ns
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(_, when)| when)
    }

    /// Slot `index`, due at `when`, was served and the clock now says `now_ns`. Its next turn
    /// is one interval later on the grid; if we fell behind (a slow bus), the missed slots are
    /// skipped rather than fired as a burst.
    pub fn served(&mut self, index: usize, when: i64, now_ns: i64) {
        let interval = self.interval_ns[index];
        let mut due = when + interval;
        if due <= now_ns {
            due = now_ns + interval - (now_ns - when) % interval;
        }
        self.due_ns[index] = due;
    }
}

/// What the sampler does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing is due for this long.
    Wait(Duration),
    /// Shutdown, or nobody listens any more.
    Stop,
}

/// The periodic sensors and their schedule; [`run_periodic`] is its real-time loop, tests step
/// it with a manual clock.
pub struct Periodic {
    slots: Vec<Slot<dyn Sensor>>,
    schedule: Schedule,
    time: Arc<TimeKeeper>,
    out: Sender<Message>,
}

impl Periodic {
    /// Every sensor is due at once, then on its interval.
    pub fn new(slots: Vec<Slot<dyn Sensor>>, time: Arc<TimeKeeper>, out: Sender<Message>) -> Self {
        let start = time.clock().mono_ns();
        let schedule = Schedule::new(start, slots.iter().map(|s| s.interval));
        Periodic {
            slots,
            schedule,
            time,
            out,
        }
    }

    /// Read every sensor that is due by the clock's "now", and say how long until the next.
    pub fn run_due(&mut self, shutdown: &Shutdown) -> Next {
        let clock = self.time.clock().clone();
        loop {
            let Some((index, when)) = self.schedule.next() else {
                return Next::Stop;
            };
            let now = clock.mono_ns();
            if when > now {
                return Next::Wait(Duration::from_nanos((when - now) as u64));
            }
            if shutdown.is_triggered() {
                return Next::Stop;
            }
            let slot = &mut self.slots[index];
            match read_with_retries(slot, clock.as_ref(), shutdown) {
                Ok(fields) => {
                    slot.recovered();
                    if !emit(&self.out, &self.time, slot.index, Kind::Routine, fields) {
                        return Next::Stop;
                    }
                }
                // A read cut short by shutdown is not a sensor failure.
                Err(_) if shutdown.is_triggered() => return Next::Stop,
                Err(e) => slot.failed(&e, &self.out),
            }
            self.schedule.served(index, when, clock.mono_ns());
        }
    }

    /// Step through time on a manual clock: read what is due, advance to the next due time,
    /// until `end_mono_ns` (exclusive). No real time passes.
    pub fn run_until(&mut self, clock: &ManualClock, end_mono_ns: i64) {
        let never = Shutdown::new();
        while let Next::Wait(wait) = self.run_due(&never) {
            if clock.mono_ns() + wait.as_nanos() as i64 >= end_mono_ns {
                return;
            }
            clock.advance(wait);
        }
    }
}

/// Run every periodic sensor on its interval until shutdown; a read that hangs stops the beats.
pub fn run_periodic(
    slots: Vec<Slot<dyn Sensor>>,
    time: Arc<TimeKeeper>,
    out: Sender<Message>,
    shutdown: Shutdown,
    heartbeat: crate::liveness::Heartbeat,
) {
    let clock = time.clock().clone();
    let mut sampler = Periodic::new(slots, time, out);
    while let Next::Wait(wait) = sampler.run_due(&shutdown) {
        heartbeat.within(wait);
        if clock.wait(wait, &shutdown) {
            return;
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
            match read_with_retries(&mut slot, clock.as_ref(), &shutdown) {
                Ok(fields) => {
                    slot.recovered();
                    if !emit(&out, &time, slot.index, Kind::Routine, fields) {
                        return;
                    }
                }
                Err(e) => {
                    slot.failed(&e, &out);
                    if slot.driver.is_none() && clock.wait(slot.interval, &shutdown) {
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
            Ok(Some(event)) => {
                let kind = Kind::Event(event.edge);
                if !emit(&out, &time, slot.index, kind, event.fields) {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                slot.failed(&e, &out);
                if clock.wait(Duration::from_secs(1), &shutdown) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Reading, Value};
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
            Duration::from_secs(1),
            Box::new(move || {
                Ok(Box::new(Flaky {
                    reads: 0,
                    fail_on: fail_on.take().unwrap_or_default(),
                }) as Box<dyn Sensor>)
            }),
        )
    }

    const SECOND: i64 = 1_000_000_000;
    const MS: i64 = 1_000_000;

    fn manual_time() -> (Arc<ManualClock>, Arc<TimeKeeper>) {
        let clock = Arc::new(ManualClock::new(
            crate::clock::build_time_ns() + 86_400 * SECOND,
            true,
            "b",
        ));
        (clock.clone(), Arc::new(TimeKeeper::new(clock, false, 0)))
    }

    fn drain(rx: &mpsc::Receiver<Message>) -> (Vec<Reading>, Vec<(usize, &'static str)>) {
        let (mut readings, mut failures) = (Vec::new(), Vec::new());
        for message in rx.try_iter() {
            match message {
                Message::Reading(r) => readings.push(r),
                Message::Failed { sensor, reason } => failures.push((sensor, reason)),
            }
        }
        (readings, failures)
    }

    #[test]
    fn a_failing_sensor_is_retried_then_skipped_and_never_stops_the_others() {
        let (clock, time) = manual_time();
        let (tx, rx) = mpsc::channel();
        // Sensor 0 fails three reads in a row (one whole interval), sensor 1 never fails.
        let slots = vec![slot(0, vec![0, 1, 2]), slot(1, vec![])];
        let start = clock.mono_ns();
        Periodic::new(slots, time, tx).run_until(&clock, start + 3 * SECOND);
        let (readings, failures) = drain(&rx);
        assert_eq!(failures, vec![(0, "crc")]);
        let of = |sensor| -> Vec<_> {
            let mine = readings.iter().filter(|r| r.sensor == sensor);
            mine.map(|r| (r.fields.clone(), r.stamp.mono_ns - start))
                .collect()
        };
        assert_eq!(
            of(0),
            vec![
                (vec![("n", Value::Int(3))], SECOND),
                (vec![("n", Value::Int(4))], 2 * SECOND)
            ],
            "no made-up value for the failed interval"
        );
        // Sensor 1 waited for sensor 0's two retry pauses once, then kept its grid.
        let times_of_1: Vec<i64> = of(1).into_iter().map(|(_, t)| t).collect();
        assert_eq!(times_of_1, vec![40 * MS, SECOND, 2 * SECOND]);
        assert!(readings
            .iter()
            .all(|r| r.stamp.trusted && r.kind == Kind::Routine));
    }

    /// A sensor whose every read takes 50 ms of the manual clock.
    struct Slow(Arc<ManualClock>);

    impl Sensor for Slow {
        fn read(&mut self) -> Result<Fields, SensorError> {
            self.0.advance(Duration::from_millis(50));
            Ok(vec![("n", Value::Int(1))])
        }
    }

    #[test]
    fn a_sensor_slower_than_its_interval_skips_missed_slots_instead_of_bursting() {
        let (clock, time) = manual_time();
        let (tx, rx) = mpsc::channel();
        let sensor_clock = clock.clone();
        let slow = Slot::new(
            0,
            "S".into(),
            Duration::from_millis(20),
            Box::new(move || Ok(Box::new(Slow(sensor_clock.clone())) as Box<dyn Sensor>)),
        );
        let start = clock.mono_ns();
        Periodic::new(vec![slow], time, tx).run_until(&clock, start + 200 * MS);
        let (readings, _) = drain(&rx);
        // Reads start at 0, 60, 120 and 180 ms (the next free slot of the 20 ms grid) and are
        // stamped when they end, 50 ms later.
        let stamped: Vec<i64> = readings.iter().map(|r| r.stamp.mono_ns - start).collect();
        assert_eq!(stamped, vec![50 * MS, 110 * MS, 170 * MS, 230 * MS]);
    }

    /// Always fails; counts how often it is opened and read.
    struct Broken(Arc<std::sync::atomic::AtomicU32>);

    impl Sensor for Broken {
        fn read(&mut self) -> Result<Fields, SensorError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(SensorError::Crc {
                expected: 1,
                actual: 2,
            })
        }
    }

    #[test]
    fn a_sensor_failing_five_intervals_in_a_row_is_opened_afresh() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let (clock, time) = manual_time();
        let (tx, rx) = mpsc::channel();
        let (opens, reads) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (o, r) = (opens.clone(), reads.clone());
        let broken = Slot::new(
            0,
            "S".into(),
            Duration::from_secs(1),
            Box::new(move || {
                o.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(Broken(r.clone())) as Box<dyn Sensor>)
            }),
        );
        let start = clock.mono_ns();
        Periodic::new(vec![broken], time, tx).run_until(&clock, start + 11 * SECOND);
        let (readings, failures) = drain(&rx);
        assert!(readings.is_empty());
        assert_eq!(failures.len(), 11, "one failure per interval");
        assert_eq!(reads.load(Ordering::SeqCst), 33, "three tries per interval");
        // Opened at the start, then afresh after the 5th and the 10th failed interval.
        assert_eq!(opens.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_real_loop_stops_on_shutdown_without_reading() {
        let (clock, time) = manual_time();
        let (tx, rx) = mpsc::channel();
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let live = crate::liveness::Liveness::new(clock, Duration::from_secs(1));
        run_periodic(vec![slot(0, vec![])], time, tx, shutdown, live.watch("s"));
        assert_eq!(rx.try_iter().count(), 0);
    }
}
