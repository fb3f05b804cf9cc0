//! GPIO edge sensors: a PIR motion detector and a reed-switch door contact. Both read one input
//! line through the `EdgeSource` trait, so their logic (debounce, open counting) is tested with
//! a script of edges; `cdev` is the thin real implementation on the GPIO character device.

pub mod cdev;
pub mod pir;
pub mod reed_switch;

pub use pir::Pir;
pub use reed_switch::ReedSwitch;

use super::{EventSensor, SensorError};
use crate::config::{GpioKind, GpioSettings};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One change of an input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The line became active; `active_low` is already applied.
    pub active: bool,
    /// When it happened on a monotonic clock with an arbitrary origin (the kernel's
    /// CLOCK_MONOTONIC for cdev). Only differences between edges mean anything.
    pub at: Duration,
}

/// One input line with edge detection: the only thing the sensors need from the hardware.
pub trait EdgeSource: Send {
    /// Wait up to `timeout` for the next edge; `Ok(None)` when none came.
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, SensorError>;
    /// The line's current logical level (true = active).
    fn level(&mut self) -> Result<bool, SensorError>;
}

/// Open the GPIO sensor of `kind` on its character device. `state_dir` holds small per-sensor
/// state files (the reed switch's open count), normally the queue's directory.
pub fn open(
    id: &str,
    kind: GpioKind,
    settings: &GpioSettings,
    state_dir: &Path,
) -> Result<Box<dyn EventSensor>, SensorError> {
    let line = cdev::CdevLine::open(id, settings)?;
    match kind {
        GpioKind::Pir => Ok(Box::new(Pir::new(
            line,
            settings.debounce.unwrap_or_default(),
        )?)),
        GpioKind::ReedSwitch => {
            let debounce = settings.debounce.unwrap_or(reed_switch::DEFAULT_DEBOUNCE);
            let state = state_path(state_dir, id);
            Ok(Box::new(ReedSwitch::new(line, debounce, state)?))
        }
    }
}

/// `<state_dir>/<sensor id>.state`, with characters a file name should not carry replaced.
pub fn state_path(state_dir: &Path, sensor_id: &str) -> PathBuf {
    let name: String = sensor_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join(format!("{name}.state"))
}

/// Turns raw edges into changes that held for at least `min_hold`. Contacts bounce for a few
/// milliseconds and the kernel's debounce is not available on every chip, so a change is only
/// reported once the line has stayed at its new level that long; a change that reverts sooner
/// is dropped as a bounce.
#[derive(Debug)]
pub(crate) struct Debouncer {
    min_hold: Duration,
    /// The last reported level.
    state: bool,
    /// A change that has not yet held for `min_hold`.
    pending: Option<Edge>,
}

impl Debouncer {
    pub(crate) fn new(initial: bool, min_hold: Duration) -> Self {
        Debouncer {
            min_hold,
            state: initial,
            pending: None,
        }
    }

    /// The next change that held, or `None` when nothing did within `timeout`. The returned
    /// edge carries the time the change began. Waiting out a pending change may add up to
    /// `min_hold` to `timeout`.
    pub(crate) fn next_change<S: EdgeSource + ?Sized>(
        &mut self,
        source: &mut S,
        timeout: Duration,
    ) -> Result<Option<Edge>, SensorError> {
        loop {
            let Some(pending) = self.pending else {
                match source.wait_edge(timeout)? {
                    None => return Ok(None),
                    // A repeat of the level we already reported: nothing changed.
                    Some(edge) if edge.active == self.state => return Ok(None),
                    Some(edge) if self.min_hold.is_zero() => {
                        self.state = edge.active;
                        return Ok(Some(edge));
                    }
                    Some(edge) => {
                        self.pending = Some(edge);
                        continue;
                    }
                }
            };
            match source.wait_edge(self.min_hold)? {
                // Quiet for `min_hold` after the change: it held.
                None => return Ok(Some(self.commit(pending))),
                Some(edge) if edge.at.saturating_sub(pending.at) >= self.min_hold => {
                    let change = self.commit(pending);
                    if edge.active != self.state {
                        self.pending = Some(edge);
                    }
                    return Ok(Some(change));
                }
                // Back to the reported level too soon: a bounce, drop both edges.
                Some(edge) if edge.active == self.state => {
                    self.pending = None;
                    return Ok(None);
                }
                // The same new level again (an edge in between was lost): keep waiting from
                // when the change began.
                Some(_) => continue,
            }
        }
    }

    fn commit(&mut self, change: Edge) -> Edge {
        self.state = change.active;
        self.pending = None;
        change
    }
}

#[cfg(test)]
pub(crate) mod script {
    //! A scripted line on a virtual clock: waiting advances the clock instead of sleeping.

    use super::{Edge, EdgeSource};
    use crate::sensors::SensorError;
    use std::collections::VecDeque;
    use std::time::Duration;

    pub(crate) struct ScriptedSource {
        edges: VecDeque<Edge>,
        now: Duration,
        level: bool,
    }

    impl ScriptedSource {
        /// A line at `initial` level followed by `(milliseconds, active)` edges.
        pub(crate) fn new(initial: bool, edges: &[(u64, bool)]) -> Self {
            ScriptedSource {
                edges: edges
                    .iter()
                    .map(|&(ms, active)| Edge {
                        active,
                        at: Duration::from_millis(ms),
                    })
                    .collect(),
                now: Duration::ZERO,
                level: initial,
            }
        }

        /// Edges not yet delivered.
        pub(crate) fn remaining(&self) -> usize {
            self.edges.len()
        }
    }

    impl EdgeSource for ScriptedSource {
        fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, SensorError> {
            match self.edges.front().copied() {
                Some(edge) if edge.at <= self.now + timeout => {
                    self.edges.pop_front();
                    self.now = self.now.max(edge.at);
                    self.level = edge.active;
                    Ok(Some(edge))
                }
                _ => {
                    self.now += timeout;
                    Ok(None)
                }
            }
        }

        fn level(&mut self) -> Result<bool, SensorError> {
            Ok(self.level)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::script::ScriptedSource;
    use super::*;

    const MS_50: Duration = Duration::from_millis(50);
    const SECOND: Duration = Duration::from_secs(1);

    fn changes(source: &mut ScriptedSource, debouncer: &mut Debouncer) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        while source.remaining() > 0 {
            if let Some(edge) = debouncer.next_change(source, SECOND).unwrap() {
                out.push((edge.at.as_millis() as u64, edge.active));
            }
        }
        // Let a last pending change settle.
        while let Some(edge) = debouncer.next_change(source, SECOND).unwrap() {
            out.push((edge.at.as_millis() as u64, edge.active));
        }
        out
    }

    #[test]
    fn a_change_that_reverts_within_the_debounce_time_is_dropped() {
        let mut source = ScriptedSource::new(false, &[(1000, true), (1010, false)]);
        let mut debouncer = Debouncer::new(false, MS_50);
        assert_eq!(changes(&mut source, &mut debouncer), vec![]);
    }

    #[test]
    fn a_bouncing_contact_reports_one_change_from_its_first_edge() {
        let edges = [
            (1000, true),
            (1003, false),
            (1005, true),
            (1009, false),
            (1012, true),
        ];
        let mut source = ScriptedSource::new(false, &edges);
        let mut debouncer = Debouncer::new(false, MS_50);
        assert_eq!(changes(&mut source, &mut debouncer), vec![(1012, true)]);
    }

    #[test]
    fn changes_further_apart_than_the_debounce_time_are_all_reported() {
        let edges = [(1000, true), (1060, false), (3000, true)];
        let mut source = ScriptedSource::new(false, &edges);
        let mut debouncer = Debouncer::new(false, MS_50);
        assert_eq!(
            changes(&mut source, &mut debouncer),
            vec![(1000, true), (1060, false), (3000, true)]
        );
    }

    #[test]
    fn without_a_debounce_time_every_change_is_reported_at_once() {
        let edges = [(1000, true), (1001, false)];
        let mut source = ScriptedSource::new(false, &edges);
        let mut debouncer = Debouncer::new(false, Duration::ZERO);
        assert_eq!(
            changes(&mut source, &mut debouncer),
            vec![(1000, true), (1001, false)]
        );
    }

    #[test]
    fn a_repeated_level_is_not_a_change() {
        let mut source = ScriptedSource::new(true, &[(1000, true)]);
        let mut debouncer = Debouncer::new(true, MS_50);
        assert_eq!(changes(&mut source, &mut debouncer), vec![]);
    }

    #[test]
    fn state_files_are_named_after_the_sensor_id_made_safe() {
        assert_eq!(
            state_path(Path::new("/var/lib/fieldlink"), "door/1 back"),
            Path::new("/var/lib/fieldlink/door_1_back.state")
        );
    }
}
