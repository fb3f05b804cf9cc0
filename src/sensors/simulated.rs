//! Simulated sensors: plausible, seedable data for every kind, so the agent runs without
//! hardware and tests get reproducible input.
//!
//! Periodic values (temperature, humidity, battery, signal) advance one step per `read`, so a
//! seed fixes the sequence regardless of timing. Edges of the event sensors follow a script
//! laid out in time from when the sensor was created: `read` reports the state at the current
//! moment and `next_event` sleeps until the next scripted edge is due.

use super::{EventSensor, Sensor, SensorError};
use crate::reading::{Fields, Value};
use crate::rng::Rng;
use std::time::{Duration, Instant};

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A battery that drains a percent now and then and is swapped when nearly empty, so a
/// simulated fleet left running for months still shows a plausible sawtooth.
#[derive(Debug, Clone)]
struct Battery {
    level: i64,
}

impl Battery {
    /// Chance per read of losing one percent: about 1 % per 2000 reads.
    const DRAIN_CHANCE: f64 = 1.0 / 2000.0;
    const REPLACED_AT: i64 = 5;

    fn new(rng: &mut Rng) -> Self {
        Battery {
            level: 95 + (rng.next_u64() % 6) as i64,
        }
    }

    fn step(&mut self, rng: &mut Rng) -> i64 {
        if rng.chance(Self::DRAIN_CHANCE) {
            self.level -= 1;
            if self.level <= Self::REPLACED_AT {
                self.level = 100;
            }
        }
        self.level
    }
}

/// Temperature, humidity, battery and radio signal of a battery-powered climate sensor.
#[derive(Debug, Clone)]
pub struct SimulatedClimate {
    rng: Rng,
    /// The room's own temperature; readings wander around it and are pulled back.
    centre: f64,
    temperature: f64,
    humidity: f64,
    battery: Battery,
    signal: f64,
}

impl SimulatedClimate {
    /// How far the temperature may drift from the room's centre, in °C.
    const MAX_DRIFT: f64 = 8.0;
    const HUMIDITY: std::ops::RangeInclusive<f64> = 30.0..=70.0;
    const SIGNAL_CENTRE: f64 = -60.0;

    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let centre = rng.range(18.0, 22.0);
        let humidity = rng.range(40.0, 60.0);
        let battery = Battery::new(&mut rng);
        SimulatedClimate {
            rng,
            centre,
            temperature: centre,
            humidity,
            battery,
            signal: Self::SIGNAL_CENTRE,
        }
    }

    fn step(&mut self) -> Fields {
        let rng = &mut self.rng;
        self.temperature += rng.range(-0.15, 0.15) + 0.02 * (self.centre - self.temperature);
        self.temperature = self
            .temperature
            .clamp(self.centre - Self::MAX_DRIFT, self.centre + Self::MAX_DRIFT);
        self.humidity += rng.range(-0.8, 0.8) + 0.01 * (50.0 - self.humidity);
        self.humidity = self
            .humidity
            .clamp(*Self::HUMIDITY.start(), *Self::HUMIDITY.end());
        self.signal += rng.range(-0.5, 0.5) + 0.05 * (Self::SIGNAL_CENTRE - self.signal);
        self.signal = self.signal.clamp(-75.0, -45.0);
        let signal = (self.signal + rng.range(-3.0, 3.0)).round() as i64;
        let battery = self.battery.step(rng);
        vec![
            ("temperature", Value::Float(round2(self.temperature))),
            ("humidity", Value::Float(round2(self.humidity))),
            ("battery_level", Value::Int(battery)),
            ("signal_strength", Value::Int(signal)),
        ]
    }
}

impl Sensor for SimulatedClimate {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(self.step())
    }
}

/// One scripted change, at an offset from when the sensor was created.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScriptEdge {
    at: Duration,
    active: bool,
}

/// An endless, seeded sequence of alternating edges starting from inactive.
trait Script: Clone {
    fn next_edge(&mut self) -> ScriptEdge;
}

/// Motion comes in bursts: quiet spells between bursts are a Poisson process, and a burst is a
/// few detections, each holding the PIR output high for a few seconds.
#[derive(Debug, Clone)]
struct MotionScript {
    rng: Rng,
    seconds: f64,
    active: bool,
    pulses_left: u32,
}

impl MotionScript {
    const MEAN_QUIET: f64 = 90.0;
    const MEAN_GAP_IN_BURST: f64 = 4.0;
    const MIN_HOLD: f64 = 2.0;
    const MEAN_EXTRA_HOLD: f64 = 3.0;
    const MAX_PULSES: u32 = 8;

    fn new(rng: Rng) -> Self {
        MotionScript {
            rng,
            seconds: 0.0,
            active: false,
            pulses_left: 0,
        }
    }
}

impl Script for MotionScript {
    fn next_edge(&mut self) -> ScriptEdge {
        let rng = &mut self.rng;
        if self.active {
            self.seconds += Self::MIN_HOLD + rng.exponential(Self::MEAN_EXTRA_HOLD);
        } else if self.pulses_left == 0 {
            self.seconds += rng.exponential(Self::MEAN_QUIET);
            // Geometric burst length: most bursts are one or two detections.
            self.pulses_left = 1;
            while self.pulses_left < Self::MAX_PULSES && rng.chance(0.4) {
                self.pulses_left += 1;
            }
        } else {
            self.seconds += rng.exponential(Self::MEAN_GAP_IN_BURST);
        }
        if !self.active {
            self.pulses_left -= 1;
        }
        self.active = !self.active;
        ScriptEdge {
            at: Duration::from_secs_f64(self.seconds),
            active: self.active,
        }
    }
}

/// Doors open rarely and stay open a while; now and then one is propped open for minutes.
#[derive(Debug, Clone)]
struct DoorScript {
    rng: Rng,
    seconds: f64,
    open: bool,
}

impl DoorScript {
    const MEAN_CLOSED: f64 = 600.0;
    const MIN_OPEN: f64 = 5.0;
    const MEAN_OPEN: f64 = 40.0;
    const PROPPED_CHANCE: f64 = 0.05;

    fn new(rng: Rng) -> Self {
        DoorScript {
            rng,
            seconds: 0.0,
            open: false,
        }
    }
}

impl Script for DoorScript {
    fn next_edge(&mut self) -> ScriptEdge {
        let rng = &mut self.rng;
        self.seconds += if self.open {
            if rng.chance(Self::PROPPED_CHANCE) {
                rng.range(300.0, 1800.0)
            } else {
                Self::MIN_OPEN + rng.exponential(Self::MEAN_OPEN)
            }
        } else {
            rng.exponential(Self::MEAN_CLOSED)
        };
        self.open = !self.open;
        ScriptEdge {
            at: Duration::from_secs_f64(self.seconds),
            active: self.open,
        }
    }
}

/// A script being played: the next edge due and the level so far. The state seen by `read`
/// and the events seen by `next_event` each play their own copy, so neither consumes the other.
#[derive(Debug, Clone)]
struct Timeline<S> {
    script: S,
    next: ScriptEdge,
    level: bool,
    /// Edges to active played so far (door openings).
    activations: i64,
    /// When the last edge to active was due (when the door opened).
    activated_at: Duration,
}

impl<S: Script> Timeline<S> {
    fn new(mut script: S) -> Self {
        let next = script.next_edge();
        Timeline {
            script,
            next,
            level: false,
            activations: 0,
            activated_at: Duration::ZERO,
        }
    }

    fn pop(&mut self) -> ScriptEdge {
        let edge = self.next;
        self.level = edge.active;
        if edge.active {
            self.activations += 1;
            self.activated_at = edge.at;
        }
        self.next = self.script.next_edge();
        edge
    }

    /// Play every edge due by `now`.
    fn advance_to(&mut self, now: Duration) {
        while self.next.at <= now {
            self.pop();
        }
    }

    /// The next edge once it is due, sleeping at most `timeout` for it. Edges already past
    /// (the caller was busy) come at once, one per call.
    fn wait(&mut self, now: Duration, timeout: Duration) -> Option<ScriptEdge> {
        let until = self.next.at.saturating_sub(now);
        if until > timeout {
            std::thread::sleep(timeout);
            return None;
        }
        if !until.is_zero() {
            std::thread::sleep(until);
        }
        Some(self.pop())
    }
}

/// Where a simulated event sensor is in its script.
#[derive(Debug, Clone)]
struct ScriptClock {
    start: Instant,
    /// Added to the time since `start`; lets tests jump ahead without sleeping.
    skip: Duration,
}

impl ScriptClock {
    fn new() -> Self {
        ScriptClock {
            start: Instant::now(),
            skip: Duration::ZERO,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed() + self.skip
    }
}

/// A battery PIR sensor: motion in Poisson bursts, with its sensitivity setting and battery.
#[derive(Debug, Clone)]
pub struct SimulatedMotion {
    rng: Rng,
    clock: ScriptClock,
    state: Timeline<MotionScript>,
    events: Timeline<MotionScript>,
    sensitivity: i64,
    battery: Battery,
}

impl SimulatedMotion {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let script = MotionScript::new(rng.fork());
        let sensitivity = 50 + (rng.next_u64() % 51) as i64;
        let battery = Battery::new(&mut rng);
        SimulatedMotion {
            rng,
            clock: ScriptClock::new(),
            state: Timeline::new(script.clone()),
            events: Timeline::new(script),
            sensitivity,
            battery,
        }
    }

    fn fields_at(&mut self, now: Duration) -> Fields {
        self.state.advance_to(now);
        vec![
            ("motion_detected", Value::Bool(self.state.level)),
            ("sensitivity", Value::Int(self.sensitivity)),
            (
                "battery_level",
                Value::Int(self.battery.step(&mut self.rng)),
            ),
        ]
    }
}

impl Sensor for SimulatedMotion {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(self.fields_at(self.clock.now()))
    }
}

impl EventSensor for SimulatedMotion {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Fields>, SensorError> {
        let edge = self.events.wait(self.clock.now(), timeout);
        Ok(edge.map(|edge| vec![("motion_detected", Value::Bool(edge.active))]))
    }
}

/// A battery door contact: rare openings, an open count that only grows, and events shaped
/// like the real reed switch's (`open_count` on open, `open_seconds` on close).
#[derive(Debug, Clone)]
pub struct SimulatedDoor {
    rng: Rng,
    clock: ScriptClock,
    state: Timeline<DoorScript>,
    events: Timeline<DoorScript>,
    battery: Battery,
}

impl SimulatedDoor {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let script = DoorScript::new(rng.fork());
        let battery = Battery::new(&mut rng);
        SimulatedDoor {
            rng,
            clock: ScriptClock::new(),
            state: Timeline::new(script.clone()),
            events: Timeline::new(script),
            battery,
        }
    }

    fn fields_at(&mut self, now: Duration) -> Fields {
        self.state.advance_to(now);
        vec![
            ("door_open", Value::Bool(self.state.level)),
            ("open_count", Value::Int(self.state.activations)),
            (
                "battery_level",
                Value::Int(self.battery.step(&mut self.rng)),
            ),
        ]
    }

    fn event_fields(&self, edge: ScriptEdge) -> Fields {
        if edge.active {
            vec![
                ("door_open", Value::Bool(true)),
                ("open_count", Value::Int(self.events.activations)),
            ]
        } else {
            let open = edge.at.saturating_sub(self.events.activated_at);
            vec![
                ("door_open", Value::Bool(false)),
                ("open_seconds", Value::Float(round2(open.as_secs_f64()))),
            ]
        }
    }
}

impl Sensor for SimulatedDoor {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(self.fields_at(self.clock.now()))
    }
}

impl EventSensor for SimulatedDoor {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Fields>, SensorError> {
        let edge = self.events.wait(self.clock.now(), timeout);
        Ok(edge.map(|edge| self.event_fields(edge)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: usize = 100_000;
    /// The agent's default interval: 100k steps cover about 11½ days of script.
    const INTERVAL: Duration = Duration::from_secs(10);

    fn float(fields: &Fields, name: &str) -> f64 {
        match fields.iter().find(|(n, _)| *n == name) {
            Some((_, Value::Float(v))) => *v,
            other => panic!("{name}: expected a float, got {other:?}"),
        }
    }

    fn int(fields: &Fields, name: &str) -> i64 {
        match fields.iter().find(|(n, _)| *n == name) {
            Some((_, Value::Int(v))) => *v,
            other => panic!("{name}: expected Value::Int, got {other:?}"),
        }
    }

    fn boolean(fields: &Fields, name: &str) -> bool {
        match fields.iter().find(|(n, _)| *n == name) {
            Some((_, Value::Bool(v))) => *v,
            other => panic!("{name}: expected a bool, got {other:?}"),
        }
    }

    /// The events already due (tests move the clock ahead first), without sleeping.
    fn due_events<S: EventSensor>(sensor: &mut S, count: usize) -> Vec<Fields> {
        (0..count)
            .filter_map(|_| sensor.next_event(Duration::ZERO).unwrap())
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_climate_sequence() {
        let mut a = SimulatedClimate::new(7);
        let mut b = SimulatedClimate::new(7);
        let mut c = SimulatedClimate::new(8);
        let a: Vec<_> = (0..1000).map(|_| a.read().unwrap()).collect();
        let b: Vec<_> = (0..1000).map(|_| b.read().unwrap()).collect();
        let c: Vec<_> = (0..1000).map(|_| c.read().unwrap()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn climate_values_stay_plausible_over_a_hundred_thousand_reads() {
        for seed in [0, 1, u64::MAX] {
            let mut sensor = SimulatedClimate::new(seed);
            let mut battery_changes = 0;
            let mut last_battery = None;
            for _ in 0..STEPS {
                let fields = sensor.read().unwrap();
                let t = float(&fields, "temperature");
                let h = float(&fields, "humidity");
                let battery = int(&fields, "battery_level");
                let signal = int(&fields, "signal_strength");
                assert!((10.0..=30.0).contains(&t), "temperature {t}");
                assert!((30.0..=70.0).contains(&h), "humidity {h}");
                assert!((0..=100).contains(&battery), "battery {battery}");
                assert!((-90..=-30).contains(&signal), "signal {signal}");
                if last_battery.is_some_and(|b| b != battery) {
                    battery_changes += 1;
                }
                last_battery = Some(battery);
            }
            assert!(battery_changes > 0, "the battery never drained");
        }
    }

    #[test]
    fn the_temperature_wanders_rather_than_standing_still() {
        let mut sensor = SimulatedClimate::new(3);
        let temps: Vec<f64> = (0..1000)
            .map(|_| float(&sensor.read().unwrap(), "temperature"))
            .collect();
        let low = temps.iter().cloned().fold(f64::MAX, f64::min);
        let high = temps.iter().cloned().fold(f64::MIN, f64::max);
        assert!(high - low > 0.5, "range {low}..{high}");
    }

    #[test]
    fn the_same_seed_gives_the_same_motion_and_door_scripts() {
        let mut a = SimulatedMotion::new(11);
        let mut b = SimulatedMotion::new(11);
        a.clock.skip = Duration::from_secs(86_400);
        b.clock.skip = Duration::from_secs(86_400);
        assert_eq!(due_events(&mut a, 500), due_events(&mut b, 500));

        let mut a = SimulatedDoor::new(11);
        let mut b = SimulatedDoor::new(11);
        let times = (0..500).map(|i| INTERVAL * i);
        for now in times {
            assert_eq!(a.fields_at(now), b.fields_at(now));
        }
    }

    #[test]
    fn motion_comes_and_goes_in_plausible_fields() {
        let mut sensor = SimulatedMotion::new(5);
        let mut seen_motion = 0;
        let mut sensitivity = None;
        for i in 0..STEPS {
            let fields = sensor.fields_at(INTERVAL * i as u32);
            if boolean(&fields, "motion_detected") {
                seen_motion += 1;
            }
            let s = int(&fields, "sensitivity");
            assert!((50..=100).contains(&s));
            assert_eq!(*sensitivity.get_or_insert(s), s);
            assert!((0..=100).contains(&int(&fields, "battery_level")));
        }
        // Motion is the exception, not the rule, but it does happen.
        assert!(
            seen_motion > 100 && seen_motion < STEPS / 4,
            "{seen_motion}"
        );
    }

    #[test]
    fn motion_events_alternate_and_never_go_back_in_time() {
        let mut script = MotionScript::new(Rng::new(9));
        let mut previous = ScriptEdge {
            at: Duration::ZERO,
            active: false,
        };
        for _ in 0..STEPS {
            let edge = script.next_edge();
            assert_ne!(edge.active, previous.active);
            assert!(edge.at > previous.at);
            previous = edge;
        }
    }

    #[test]
    fn the_door_open_count_never_decreases_and_doors_rarely_stand_open() {
        let mut sensor = SimulatedDoor::new(21);
        let mut last_count = 0;
        let mut open_reads = 0;
        for i in 0..STEPS {
            let fields = sensor.fields_at(INTERVAL * i as u32);
            let count = int(&fields, "open_count");
            assert!(count >= last_count, "{count} after {last_count}");
            last_count = count;
            if boolean(&fields, "door_open") {
                open_reads += 1;
            }
            assert!((0..=100).contains(&int(&fields, "battery_level")));
        }
        assert!(last_count > 100, "only {last_count} openings in 11 days");
        assert!(open_reads < STEPS / 5, "open {open_reads} of {STEPS} reads");
    }

    #[test]
    fn door_events_count_openings_and_time_them_on_close() {
        let mut sensor = SimulatedDoor::new(4);
        sensor.clock.skip = Duration::from_secs(30 * 86_400);
        let events = due_events(&mut sensor, 1000);
        assert_eq!(events.len(), 1000);
        for (i, event) in events.iter().enumerate() {
            if i % 2 == 0 {
                assert!(boolean(event, "door_open"));
                assert_eq!(int(event, "open_count"), i as i64 / 2 + 1);
            } else {
                assert!(!boolean(event, "door_open"));
                assert!(float(event, "open_seconds") >= DoorScript::MIN_OPEN);
            }
        }
        // The state seen by `read` at the same moment agrees with the events.
        let fields = sensor.fields_at(sensor.events.next.at - Duration::from_nanos(1));
        assert_eq!(int(&fields, "open_count"), 500);
    }

    #[test]
    fn next_event_waits_no_longer_than_its_timeout() {
        let mut sensor = SimulatedDoor::new(1);
        // Push the next opening far away.
        sensor.events.next.at = Duration::from_secs(3600);
        let started = Instant::now();
        assert_eq!(sensor.next_event(Duration::from_millis(20)).unwrap(), None);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(20) && waited < Duration::from_secs(1));
    }

    #[test]
    fn next_event_sleeps_until_an_edge_that_is_due_soon() {
        let mut sensor = SimulatedMotion::new(1);
        sensor.events.next.at = sensor.clock.now() + Duration::from_millis(30);
        let started = Instant::now();
        let event = sensor.next_event(Duration::from_secs(5)).unwrap();
        assert_eq!(event, Some(vec![("motion_detected", Value::Bool(true))]));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(25) && waited < Duration::from_secs(2));
    }
}
