//! Simulated sensors: plausible, seedable data for every kind, so the agent runs without
//! hardware and tests get reproducible input.
//!
//! Periodic values (temperature, humidity, battery, signal) advance one step per `read`, so a
//! seed fixes the sequence regardless of timing. Edges of the event sensors follow a script
//! laid out in time from when the sensor was created: `read` reports the state at the current
//! moment and `next_event` sleeps until the next scripted edge is due.

use super::gpio::pir::motion_event;
use super::{EventSensor, Sensor, SensorError};
use crate::reading::{EdgeName, Event, Fields, Value};
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
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, SensorError> {
        let edge = self.events.wait(self.clock.now(), timeout);
        Ok(edge.map(|edge| motion_event(edge.active)))
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

    fn event(&self, edge: ScriptEdge) -> Event {
        if edge.active {
            let fields = vec![
                ("door_open", Value::Bool(true)),
                ("open_count", Value::Int(self.events.activations)),
            ];
            Event {
                edge: EdgeName::Open,
                fields,
            }
        } else {
            let open = edge.at.saturating_sub(self.events.activated_at);
            let fields = vec![
                ("door_open", Value::Bool(false)),
                ("open_seconds", Value::Float(round2(open.as_secs_f64()))),
            ];
            Event {
                edge: EdgeName::Close,
                fields,
            }
        }
    }
}

impl Sensor for SimulatedDoor {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(self.fields_at(self.clock.now()))
    }
}

impl EventSensor for SimulatedDoor {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, SensorError> {
        let edge = self.events.wait(self.clock.now(), timeout);
        Ok(edge.map(|edge| self.event(edge)))
    }
}

#[cfg(test)]
mod tests;
