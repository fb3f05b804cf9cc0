//! PIR motion sensor (HC-SR501 and the like). The module does its own signal conditioning and
//! holds its output high for a few seconds after motion, so each edge is worth an event as it
//! comes; a debounce time is optional.

use super::{Debouncer, EdgeSource};
use crate::reading::{EdgeName, Event, Fields, Value};
use crate::sensors::{EventSensor, Sensor, SensorError};
use std::time::Duration;

pub struct Pir<S> {
    source: S,
    debouncer: Debouncer,
}

impl<S: EdgeSource> Pir<S> {
    /// `debounce` of zero reports every edge.
    pub fn new(mut source: S, debounce: Duration) -> Result<Self, SensorError> {
        let initial = source.level()?;
        Ok(Pir {
            source,
            debouncer: Debouncer::new(initial, debounce),
        })
    }

    /// Give the line back.
    pub fn destroy(self) -> S {
        self.source
    }
}

impl<S: EdgeSource> Sensor for Pir<S> {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(vec![("motion_detected", Value::Bool(self.source.level()?))])
    }
}

impl<S: EdgeSource> EventSensor for Pir<S> {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, SensorError> {
        let change = self.debouncer.next_change(&mut self.source, timeout)?;
        Ok(change.map(|edge| motion_event(edge.active)))
    }
}

/// A motion edge as every motion sensor reports it: `event=motion` or `event=clear`.
pub fn motion_event(active: bool) -> Event {
    Event {
        edge: if active {
            EdgeName::Motion
        } else {
            EdgeName::Clear
        },
        fields: vec![("motion_detected", Value::Bool(active))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::gpio::script::ScriptedSource;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn each_edge_becomes_one_motion_event() {
        let source = ScriptedSource::new(false, &[(500, true), (4500, false)]);
        let mut pir = Pir::new(source, Duration::ZERO).unwrap();
        let motion = |v| {
            Some(Event {
                edge: if v { EdgeName::Motion } else { EdgeName::Clear },
                fields: vec![("motion_detected", Value::Bool(v))],
            })
        };
        assert_eq!(pir.next_event(SECOND).unwrap(), motion(true));
        assert_eq!(pir.next_event(SECOND).unwrap(), None);
        assert_eq!(pir.next_event(SECOND * 5).unwrap(), motion(false));
        assert_eq!(pir.next_event(SECOND).unwrap(), None);
    }

    #[test]
    fn a_read_reports_the_current_level() {
        let source = ScriptedSource::new(true, &[(500, false)]);
        let mut pir = Pir::new(source, Duration::ZERO).unwrap();
        assert_eq!(
            pir.read().unwrap(),
            vec![("motion_detected", Value::Bool(true))]
        );
        pir.next_event(SECOND).unwrap();
        assert_eq!(
            pir.read().unwrap(),
            vec![("motion_detected", Value::Bool(false))]
        );
    }
}
