//! The recorder: the one thread that writes readings to the queue. It gathers what the sensor
//! threads send for one commit window and writes it in a single transaction, so the SD card
//! sees one small burst every few seconds instead of a write per reading. It also decides,
//! per reading, whether its timestamp can be trusted or must be held, releases held readings
//! once the clock is trusted, and adds the agent's own health readings.

use crate::activity::Activity;
use crate::aggregate::EdgeWindow;
use crate::clock::TimeKeeper;
use crate::config::Aggregation;
use crate::line_protocol;
use crate::liveness::Heartbeat;
use crate::queue::{counter, Class, Commit, HeldReading, NewReading, Policy, Queue, QueueError};
use crate::reading::{EdgeName, Fields, Kind, Value};
use crate::sampler::Message;
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Most readings kept in memory while the disk refuses writes (full, or failing). Past this the
/// oldest routine readings are dropped and counted, so memory stays bounded on a 512 MB Pi.
pub const SPILL_LIMIT: usize = 4096;

use crate::config::series::SeriesPlan;

/// A window commits early once this many readings are pending, so no sampling rate outruns the
/// window: 100 sensors at 10 ms fill it in a tenth of a second and commit ten times a second.
pub const COMMIT_BATCH: usize = 1024;

/// ... or once their line protocol reaches this many bytes (a few wide readings).
pub const COMMIT_BATCH_BYTES: usize = 256 * 1024;

pub struct Recorder {
    queue: Queue,
    /// Series ids of each sensor, by its index in the board file.
    series: Vec<SensorSeries>,
    sensor_ids: Vec<String>,
    internal_series: i64,
    time: Arc<TimeKeeper>,
    boot: String,
    commit_interval: Duration,
    metrics_interval: Duration,
    /// When the current commit window and metrics interval end, on the monotonic clock.
    next_commit_ns: i64,
    next_metrics_ns: i64,
    trusted: Vec<NewReading>,
    held: Vec<HeldReading>,
    /// Bytes of line protocol in `trusted` and `held`.
    pending_bytes: usize,
    counters: BTreeMap<String, i64>,
    /// Held readings of this boot exist (in the queue or pending).
    holding: bool,
    /// Wall-minus-monotonic offset learnt from the first trusted stamp after holding.
    release_offset: Option<i64>,
    newest_trusted_ns: Option<i64>,
    disk_trouble: bool,
    retention: Option<Policy>,
    persisted_trusted_ns: i64,
    /// Told at every turn of [`Recorder::run`], so a commit that hangs stops the watchdog.
    heartbeat: Option<Heartbeat>,
    /// Told when the disk stops or starts taking writes.
    activity: Option<Arc<Activity>>,
    /// Per sensor, by board index: its aggregation window, if the board asks for one.
    aggregates: Vec<Option<Aggregating>>,
}

/// A sensor whose periodic readings are aggregated (`aggregate = "1m"`).
struct Aggregating {
    window: EdgeWindow,
    /// `keep_raw = true`: queue the raw readings as well.
    keep_raw: bool,
}

impl Recorder {
    pub fn new(
        mut queue: Queue,
        plan: &SeriesPlan,
        time: Arc<TimeKeeper>,
        commit_interval: Duration,
        metrics_interval: Duration,
    ) -> Result<Recorder, QueueError> {
        let series = SensorSeries::of_plan(&mut queue, plan)?;
        let internal_series = queue.series_id(&plan.internal_key)?;
        let boot = time.clock().boot_id();
        let holding = queue.stats()?.held > 0;
        let now = time.clock().mono_ns();
        Ok(Recorder {
            next_commit_ns: now + commit_interval.as_nanos() as i64,
            next_metrics_ns: now + metrics_interval.as_nanos() as i64,
            queue,
            series,
            sensor_ids: plan.sensor_ids.clone(),
            internal_series,
            time,
            boot,
            commit_interval,
            metrics_interval,
            trusted: Vec::new(),
            held: Vec::new(),
            pending_bytes: 0,
            counters: BTreeMap::new(),
            holding,
            release_offset: None,
            newest_trusted_ns: None,
            disk_trouble: false,
            retention: None,
            persisted_trusted_ns: i64::MIN / 2,
            heartbeat: None,
            activity: None,
            aggregates: Vec::new(),
        })
    }

    /// Keep the queue within these bounds after every commit.
    pub fn with_retention(mut self, policy: Policy) -> Recorder {
        self.queue.set_budget(policy.max_bytes);
        self.retention = Some(policy);
        self
    }

    /// Aggregate the periodic readings of the sensors that ask for it, by board index.
    pub fn with_aggregation(mut self, per_sensor: &[Option<Aggregation>]) -> Recorder {
        self.aggregates = per_sensor
            .iter()
            .map(|plan| {
                plan.as_ref().map(|a| Aggregating {
                    window: EdgeWindow::new(a.window, a.fields.clone()),
                    keep_raw: a.keep_raw,
                })
            })
            .collect();
        self
    }

    /// Report progress to the watchdog and disk trouble to the status line.
    pub fn watched(mut self, heartbeat: Heartbeat, activity: Arc<Activity>) -> Recorder {
        self.heartbeat = Some(heartbeat);
        self.activity = Some(activity);
        self
    }

    pub fn queue(&mut self) -> &mut Queue {
        &mut self.queue
    }

    /// Receive until every sender is gone (the sensor threads stop on shutdown), committing at
    /// each window's end and once more at the very end.
    pub fn run(mut self, rx: Receiver<Message>) {
        loop {
            let wait = self.close_due_windows();
            if let Some(heartbeat) = &self.heartbeat {
                heartbeat.within(wait);
            }
            match rx.recv_timeout(wait) {
                Ok(message) => self.accept(message),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.close_aggregates(None);
                    self.commit();
                    return;
                }
            }
        }
    }

    /// Close the windows that have ended by the clock's "now": the health reading once its
    /// interval has passed, then the commit. Returns how long until the current window ends.
    pub fn close_due_windows(&mut self) -> Duration {
        let now = self.time.clock().mono_ns();
        self.close_aggregates(Some(now));
        if now >= self.next_commit_ns {
            if now >= self.next_metrics_ns {
                self.add_health_reading();
                self.next_metrics_ns = now + self.metrics_interval.as_nanos() as i64;
            }
            self.commit();
            self.next_commit_ns = now + self.commit_interval.as_nanos() as i64;
        }
        Duration::from_nanos((self.next_commit_ns - now).max(0) as u64)
    }

    /// Take one message into the pending commit.
    pub fn accept(&mut self, message: Message) {
        match message {
            Message::Failed { sensor, reason } => {
                let id = self
                    .sensor_ids
                    .get(sensor)
                    .map(String::as_str)
                    .unwrap_or("?");
                *self
                    .counters
                    .entry(format!("{}{id}.{reason}", counter::SENSOR_ERROR_PREFIX))
                    .or_default() += 1;
            }
            Message::Reading(reading) => {
                let Some(series) = self.series.get(reading.sensor) else {
                    return;
                };
                let (id, state) = (series.of(reading.kind), series.state);
                if !reading.kind.is_event() && !self.aggregate(state, &reading) {
                    return;
                }
                self.add(id, reading.kind, &reading.fields, reading.stamp);
            }
        }
    }

    /// Fold a periodic reading into its sensor's window, queueing the window it closes.
    /// Returns whether the raw reading is to be queued too.
    fn aggregate(&mut self, series: i64, reading: &crate::reading::Reading) -> bool {
        let Some(Some(agg)) = self.aggregates.get_mut(reading.sensor) else {
            return true;
        };
        let keep_raw = agg.keep_raw;
        if let Some(closed) = agg.window.add(&reading.fields, reading.stamp) {
            self.push(series, Class::Aggregate, closed.field_set, closed.stamp);
        }
        keep_raw
    }

    /// Queue the aggregate windows that have ended by `now_mono_ns`, or all of them (shutdown:
    /// a window cut short keeps its real count).
    pub fn close_aggregates(&mut self, now_mono_ns: Option<i64>) {
        let mut closed = Vec::new();
        for (sensor, agg) in self.aggregates.iter_mut().enumerate() {
            let Some(agg) = agg else { continue };
            let window = match now_mono_ns {
                Some(now) => agg.window.close_if_ended(now),
                None => agg.window.close(),
            };
            if let (Some(window), Some(series)) = (window, self.series.get(sensor)) {
                closed.push((series.state, window));
            }
        }
        for (series, window) in closed {
            self.push(series, Class::Aggregate, window.field_set, window.stamp);
        }
    }

    fn add(&mut self, series: i64, kind: Kind, fields: &Fields, stamp: crate::clock::Stamp) {
        let (set, nonfinite) = line_protocol::field_set(fields);
        if nonfinite > 0 {
            *self
                .counters
                .entry(counter::FIELDS_NONFINITE.into())
                .or_default() += nonfinite as i64;
        }
        let Some(fields) = set else { return };
        let class = if kind.is_event() {
            Class::Event
        } else {
            Class::Routine
        };
        self.push(series, class, fields, stamp);
    }

    /// Queue one line's field set: trusted, or held until the clock is.
    fn push(&mut self, series: i64, class: Class, fields: String, stamp: crate::clock::Stamp) {
        self.pending_bytes += fields.len();
        if stamp.trusted {
            if self.holding && self.release_offset.is_none() {
                self.release_offset = Some(stamp.wall_ns - stamp.mono_ns);
            }
            self.newest_trusted_ns = Some(stamp.wall_ns);
            self.trusted.push(NewReading {
                series,
                time_ns: stamp.wall_ns,
                fields,
                class,
            });
        } else {
            self.holding = true;
            self.held.push(HeldReading {
                series,
                boot: self.boot.clone(),
                mono_ns: stamp.mono_ns,
                wall_ns: stamp.wall_ns,
                fields,
                class,
            });
        }
        if self.disk_trouble {
            // The next window's commit retries the disk; meanwhile memory stays bounded.
            self.enforce_spill_limit();
        } else if self.pending() >= COMMIT_BATCH || self.pending_bytes >= COMMIT_BATCH_BYTES {
            self.commit();
        }
    }

    /// Readings waiting for the next commit.
    pub fn pending(&self) -> usize {
        self.trusted.len() + self.held.len()
    }

    /// Write what the window gathered. On failure everything stays pending (bounded) and the
    /// write is retried at the next window.
    pub fn commit(&mut self) {
        if self.trusted.is_empty()
            && self.held.is_empty()
            && self.counters.is_empty()
            && self.release_offset.is_none()
        {
            return;
        }
        let counters: Vec<(&str, i64)> = self
            .counters
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let mut meta = Vec::new();
        // The last trusted time is a lower bound for plausibility after a reboot; a minute's
        // precision is plenty, and writing it once a minute saves a page write per commit.
        if let Some(newest) = self.newest_trusted_ns {
            if newest - self.persisted_trusted_ns >= 60_000_000_000 {
                meta.push(("last_trusted_ns", newest.to_string()));
                self.persisted_trusted_ns = newest;
            }
        }
        let result = self.queue.commit(&Commit {
            trusted: &self.trusted,
            held: &self.held,
            counters: &counters,
            meta: &meta,
        });
        match result {
            Ok(()) => {
                if self.disk_trouble {
                    log::info!("queue writes work again");
                    self.set_disk_trouble(false);
                }
                if let Some(newest) = self.newest_trusted_ns.take() {
                    self.time.saw_trusted(newest);
                }
                self.trusted.clear();
                self.held.clear();
                self.pending_bytes = 0;
                self.counters.clear();
            }
            Err(e) => {
                if !self.disk_trouble {
                    log::error!("cannot write the queue ({e}); keeping up to {SPILL_LIMIT} readings in memory and retrying");
                    self.set_disk_trouble(true);
                }
                self.enforce_spill_limit();
                return;
            }
        }
        self.after_commit();
    }

    /// What a successful commit makes possible: keeping the queue within its budget, and
    /// releasing readings held for the clock once it is trusted.
    fn after_commit(&mut self) {
        if let Some(policy) = self.retention {
            // An untrusted clock must not expire anything: its "now" may be decades off.
            let stamp = self.time.stamp();
            let now = if stamp.trusted {
                stamp.wall_ns
            } else {
                i64::MIN / 2
            };
            if let Err(e) = self.queue.enforce(&policy, now) {
                log::error!("cannot enforce the queue's budget: {e}");
            }
        }
        if let Some(offset) = self.release_offset.take() {
            match self.queue.release_held(&self.boot, offset) {
                Ok(n) => {
                    self.holding = false;
                    if n > 0 {
                        log::info!("clock trusted: re-stamped and released {n} held readings");
                    }
                }
                Err(e) => {
                    log::error!("cannot release held readings: {e}");
                    self.release_offset = Some(offset);
                }
            }
        }
    }

    fn set_disk_trouble(&mut self, trouble: bool) {
        self.disk_trouble = trouble;
        if let Some(activity) = &self.activity {
            activity.set_disk_full(trouble);
        }
    }

    /// Keep pending readings within `SPILL_LIMIT`: drop the oldest routine readings first,
    /// events only when nothing else is left.
    fn enforce_spill_limit(&mut self) {
        while self.pending() > SPILL_LIMIT {
            let victim = self.trusted.iter().position(|r| r.class != Class::Event);
            let dropped = match victim {
                Some(i) => self.trusted.remove(i).fields.len(),
                None if !self.held.is_empty() => self.held.remove(0).fields.len(),
                None => self.trusted.remove(0).fields.len(),
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(dropped);
            *self
                .counters
                .entry(counter::DROPPED_FULL.into())
                .or_default() += 1;
        }
    }

    /// The agent's own health as a reading: queue depth and age, drops by reason, bytes
    /// written to disk. It goes through the queue like any other reading.
    fn add_health_reading(&mut self) {
        let stamp = self.time.stamp();
        let stats = self.queue.stats().unwrap_or_default();
        let counters = self.queue.counters().unwrap_or_default();
        let mut fields: Fields = vec![
            ("queue_depth", Value::Int(stats.depth)),
            ("queue_bytes", Value::Int(stats.bytes as i64)),
            ("held", Value::Int(stats.held)),
            ("dead_letters", Value::Int(stats.dead_letters)),
        ];
        if let Some(oldest) = stats.oldest_ns {
            fields.push((
                "oldest_age_s",
                Value::Float(((stamp.wall_ns - oldest) as f64 / 1e9).max(0.0)),
            ));
        }
        for (name, field) in [
            (counter::SAMPLED, "sampled"),
            (counter::UPLOADED, "uploaded"),
            (counter::EXPIRED, "dropped_expired"),
            (counter::THINNED, "dropped_thinned"),
            (counter::DROPPED_FULL, "dropped_full"),
            (counter::REJECTED, "dropped_rejected"),
            (counter::UNKNOWN_TIME, "dropped_unknown_time"),
        ] {
            fields.push((field, Value::Int(counters.get(name).copied().unwrap_or(0))));
        }
        let sensor_errors: i64 = counters
            .iter()
            .filter(|(k, _)| k.starts_with(counter::SENSOR_ERROR_PREFIX))
            .map(|(_, v)| v)
            .sum();
        fields.push(("sensor_errors", Value::Int(sensor_errors)));
        if let Some(bytes) = disk_write_bytes() {
            fields.push(("disk_write_bytes", Value::Int(bytes as i64)));
        }
        self.add(self.internal_series, Kind::Routine, &fields, stamp);
    }
}

/// A sensor's series ids: its state samples, and one per edge of its events.
struct SensorSeries {
    state: i64,
    events: Vec<(EdgeName, i64)>,
}

impl SensorSeries {
    fn of_plan(queue: &mut Queue, plan: &SeriesPlan) -> Result<Vec<SensorSeries>, QueueError> {
        let mut all = Vec::with_capacity(plan.sensor_keys.len());
        for (i, key) in plan.sensor_keys.iter().enumerate() {
            let state = queue.series_id(key)?;
            let mut events = Vec::new();
            for (edge, key) in plan.event_keys.get(i).into_iter().flatten() {
                events.push((*edge, queue.series_id(key)?));
            }
            all.push(SensorSeries { state, events });
        }
        Ok(all)
    }

    /// Where a reading of this kind goes. An edge the plan does not list (a hand-built plan)
    /// stays in the state series rather than being lost.
    fn of(&self, kind: Kind) -> i64 {
        let Kind::Event(edge) = kind else {
            return self.state;
        };
        let found = self.events.iter().find(|(e, _)| *e == edge);
        found.map_or(self.state, |(_, id)| *id)
    }
}

/// Bytes this process caused to be written to storage, when the kernel says.
pub fn disk_write_bytes() -> Option<u64> {
    crate::os::proc::write_bytes().ok()
}

#[cfg(test)]
mod tests;
