//! Magnetic door contact. Wired between the GPIO and ground with a pull-up, the line is low
//! while the magnet holds the contact closed and goes high when the door opens, so "active"
//! means open (set `active_low` for the opposite wiring). Each opening is counted, and the
//! count lives in a small state file so it survives restarts and power cuts.

use super::{Debouncer, EdgeSource};
use crate::reading::{EdgeName, Event, Fields, Value};
use crate::sensors::{EventSensor, Sensor, SensorError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Reed contacts bounce for a few milliseconds; no door opens and closes again within 50 ms.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

pub struct ReedSwitch<S> {
    source: S,
    debouncer: Debouncer,
    count: OpenCount,
    /// When the door opened, if this instance saw it open; unknown when it was already open
    /// at start.
    opened_at: Option<Duration>,
}

impl<S: EdgeSource> ReedSwitch<S> {
    /// `state_path` keeps the open count (the agent passes `<queue dir>/<sensor id>.state`).
    pub fn new(
        mut source: S,
        debounce: Duration,
        state_path: PathBuf,
    ) -> Result<Self, SensorError> {
        let initial = source.level()?;
        Ok(ReedSwitch {
            source,
            debouncer: Debouncer::new(initial, debounce),
            count: OpenCount::load(state_path)?,
            opened_at: None,
        })
    }

    /// How often the door has opened, over all runs sharing this state file.
    pub fn open_count(&self) -> i64 {
        self.count.value
    }

    /// Give the line back.
    pub fn destroy(self) -> S {
        self.source
    }
}

impl<S: EdgeSource> Sensor for ReedSwitch<S> {
    fn read(&mut self) -> Result<Fields, SensorError> {
        Ok(vec![
            ("door_open", Value::Bool(self.source.level()?)),
            ("open_count", Value::Int(self.count.value)),
        ])
    }
}

impl<S: EdgeSource> EventSensor for ReedSwitch<S> {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, SensorError> {
        let Some(change) = self.debouncer.next_change(&mut self.source, timeout)? else {
            return Ok(None);
        };
        let mut fields = vec![("door_open", Value::Bool(change.active))];
        let edge = if change.active {
            self.opened_at = Some(change.at);
            fields.push(("open_count", Value::Int(self.count.increment())));
            EdgeName::Open
        } else {
            if let Some(opened) = self.opened_at.take() {
                let seconds = change.at.saturating_sub(opened).as_secs_f64();
                fields.push(("open_seconds", Value::Float(seconds)));
            }
            EdgeName::Close
        };
        Ok(Some(Event { edge, fields }))
    }
}

/// The persisted open count.
#[derive(Debug)]
struct OpenCount {
    path: PathBuf,
    value: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    open_count: i64,
}

impl OpenCount {
    /// A missing file starts at zero. An unreadable one is an error (a permission problem is
    /// fixable and should not silently reset the count); a corrupt one is moved aside with a
    /// warning so the agent starts rather than failing on every restart.
    fn load(path: PathBuf) -> Result<Self, SensorError> {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(OpenCount { path, value: 0 })
            }
            Err(source) => {
                return Err(SensorError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(state) => Ok(OpenCount {
                path,
                value: state.open_count,
            }),
            Err(err) => {
                let aside = with_suffix(&path, ".corrupt");
                log::warn!(
                    "{}: unreadable state ({err}); moved to {} and counting from 0",
                    path.display(),
                    aside.display()
                );
                if let Err(err) = std::fs::rename(&path, &aside) {
                    log::warn!("{}: cannot move aside: {err}", path.display());
                }
                Ok(OpenCount { path, value: 0 })
            }
        }
    }

    /// Count one opening and persist it. A failed write is logged, not returned: the event
    /// matters more than the file, and the next opening writes again.
    fn increment(&mut self) -> i64 {
        self.value += 1;
        if let Err(err) = self.save() {
            log::warn!("{}: cannot save open count: {err}", self.path.display());
        }
        self.value
    }

    /// Write a temp file, sync it, rename it over the old one: after a power cut the file
    /// holds either the old count or the new one, never a torn write.
    fn save(&self) -> std::io::Result<()> {
        let tmp = with_suffix(&self.path, ".tmp");
        let mut file = std::fs::File::create(&tmp)?;
        let text = serde_json::to_string(&StateFile {
            open_count: self.value,
        })?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        // Make the rename itself durable; not every filesystem lets a directory be synced.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::gpio::script::ScriptedSource;
    use tempfile::TempDir;

    const SECOND: Duration = Duration::from_secs(1);

    fn door(dir: &TempDir, initial: bool, edges: &[(u64, bool)]) -> ReedSwitch<ScriptedSource> {
        let source = ScriptedSource::new(initial, edges);
        ReedSwitch::new(source, DEFAULT_DEBOUNCE, dir.path().join("door.state")).unwrap()
    }

    /// The fields of every event until the script runs out and settles.
    fn events(door: &mut ReedSwitch<ScriptedSource>) -> Vec<Fields> {
        edges_and_events(door).into_iter().map(|(_, f)| f).collect()
    }

    fn edges_and_events(door: &mut ReedSwitch<ScriptedSource>) -> Vec<(EdgeName, Fields)> {
        let mut out = Vec::new();
        for _ in 0..100 {
            if let Some(event) = door.next_event(SECOND).unwrap() {
                out.push((event.edge, event.fields));
            }
        }
        out
    }

    #[test]
    fn openings_are_open_events_and_closings_close_events_even_with_bounce() {
        let dir = tempfile::tempdir().unwrap();
        let edges = [
            (1000, true),
            (1004, false),
            (1008, true),
            (3000, false),
            (3003, true),
            (3006, false),
            (6000, true),
            (9000, false),
        ];
        let mut door = door(&dir, false, &edges);
        let names: Vec<EdgeName> = edges_and_events(&mut door)
            .into_iter()
            .map(|(edge, _)| edge)
            .collect();
        use EdgeName::{Close, Open};
        assert_eq!(names, [Open, Close, Open, Close]);
    }

    #[test]
    fn opening_counts_and_closing_says_how_long_it_was_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door(&dir, false, &[(1000, true), (13_500, false)]);
        assert_eq!(
            events(&mut door),
            vec![
                vec![
                    ("door_open", Value::Bool(true)),
                    ("open_count", Value::Int(1))
                ],
                vec![
                    ("door_open", Value::Bool(false)),
                    ("open_seconds", Value::Float(12.5))
                ],
            ]
        );
    }

    #[test]
    fn a_bounce_shorter_than_the_debounce_time_is_not_an_opening() {
        let dir = tempfile::tempdir().unwrap();
        let edges = [
            (1000, true),
            (1020, false),
            (5000, true),
            (5004, false),
            (5007, true),
        ];
        let mut door = door(&dir, false, &edges);
        let events = events(&mut door);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(door.open_count(), 1);
    }

    #[test]
    fn the_open_count_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = door(&dir, false, &[(1000, true), (2000, false), (3000, true)]);
        events(&mut first);
        assert_eq!(first.open_count(), 2);
        drop(first);

        let mut second = door(&dir, true, &[(1000, false), (2000, true)]);
        assert_eq!(second.open_count(), 2);
        let events = events(&mut second);
        assert_eq!(events[1][1], ("open_count", Value::Int(3)));
        assert_eq!(door(&dir, true, &[]).open_count(), 3);
    }

    #[test]
    fn a_door_already_open_at_start_closes_without_a_duration() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door(&dir, true, &[(1000, false)]);
        assert_eq!(
            events(&mut door),
            vec![vec![("door_open", Value::Bool(false))]]
        );
        assert_eq!(door.open_count(), 0);
    }

    #[test]
    fn a_read_reports_the_current_state_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door(&dir, false, &[(1000, true)]);
        events(&mut door);
        assert_eq!(
            door.read().unwrap(),
            vec![
                ("door_open", Value::Bool(true)),
                ("open_count", Value::Int(1))
            ]
        );
    }

    #[test]
    fn the_state_file_is_replaced_whole_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door(&dir, false, &[(1000, true)]);
        events(&mut door);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["door.state"]);
        let text = std::fs::read_to_string(dir.path().join("door.state")).unwrap();
        assert_eq!(text, "{\"open_count\":1}\n");
    }

    #[test]
    fn a_corrupt_state_file_is_moved_aside_and_counting_restarts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("door.state"), "{\"open_co").unwrap();
        assert_eq!(door(&dir, false, &[]).open_count(), 0);
        assert!(dir.path().join("door.state.corrupt").exists());
    }

    #[test]
    fn an_unreadable_state_file_stops_the_sensor_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("door.state")).unwrap();
        let source = ScriptedSource::new(false, &[]);
        let err = ReedSwitch::new(source, DEFAULT_DEBOUNCE, dir.path().join("door.state"))
            .err()
            .unwrap();
        assert_eq!(err.reason(), "io");
    }
}
