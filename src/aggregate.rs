//! Aggregation windows: many samples of a series folded into one line with Telegraf's
//! basicstats names, so a dashboard reads edge aggregates and the queue's thinned history with
//! one query. Per numeric field: `<field>_mean`, `_min`, `_max`, `_last` (floats) and `_count`
//! (an integer); per boolean field: the share of true samples as `<field>_mean` and `_count`.
//! Strings are not aggregated.
//!
//! [`EdgeWindow`] is the device side (`aggregate = "1m"` on a sensor): windows aligned to the
//! epoch, so a fleet's windows line up, and stamped at their start. A window's stamp is derived
//! from the stamp its samples already carry, so a window sampled on an untrusted clock is held
//! and re-stamped exactly like a raw reading would be. The first window after a start is
//! stamped at its first sample instead: after a restart mid-window, its line must not share a
//! timestamp with the line the previous run wrote for that window, or InfluxDB would keep only
//! one of the two and the other's samples would be lost.

use crate::clock::Stamp;
use crate::line_protocol;
use crate::reading::{Fields, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Running statistics of one field.
#[derive(Debug, Clone, PartialEq)]
enum FieldStats {
    Numeric {
        count: i64,
        sum: f64,
        min: f64,
        max: f64,
        last: f64,
    },
    Boolean {
        count: i64,
        trues: i64,
    },
}

/// Basic statistics of every field of a window, by field name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BasicStats {
    fields: BTreeMap<String, FieldStats>,
}

impl BasicStats {
    /// Fold in one sample's value of `name`. Strings and non-finite numbers are skipped.
    pub fn add(&mut self, name: &str, value: &Value) {
        let number = match value {
            Value::Float(v) => *v,
            Value::Int(v) => *v as f64,
            Value::UInt(v) => *v as f64,
            Value::Bool(b) => {
                let entry = self
                    .fields
                    .entry(name.to_string())
                    .or_insert(FieldStats::Boolean { count: 0, trues: 0 });
                if let FieldStats::Boolean { count, trues } = entry {
                    *count += 1;
                    *trues += i64::from(*b);
                }
                return;
            }
            Value::Str(_) => return,
        };
        if !number.is_finite() {
            return;
        }
        let entry = self
            .fields
            .entry(name.to_string())
            .or_insert(FieldStats::Numeric {
                count: 0,
                sum: 0.0,
                min: number,
                max: number,
                last: number,
            });
        if let FieldStats::Numeric {
            count,
            sum,
            min,
            max,
            last,
        } = entry
        {
            *count += 1;
            *sum += number;
            *min = min.min(number);
            *max = max.max(number);
            *last = number;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The aggregate's field set, fields in name order; `None` when nothing was aggregated.
    pub fn field_set(&self) -> Option<String> {
        let mut out = String::new();
        for (name, stats) in &self.fields {
            let field = |suffix: &str| format!("{name}_{suffix}");
            match *stats {
                FieldStats::Numeric {
                    count,
                    sum,
                    min,
                    max,
                    last,
                } => {
                    let mean = sum / count as f64;
                    for (suffix, v) in [("mean", mean), ("min", min), ("max", max)] {
                        line_protocol::push_field(&mut out, &field(suffix), &Value::Float(v));
                    }
                    line_protocol::push_field(&mut out, &field("count"), &Value::Int(count));
                    line_protocol::push_field(&mut out, &field("last"), &Value::Float(last));
                }
                FieldStats::Boolean { count, trues } => {
                    let share = trues as f64 / count as f64;
                    line_protocol::push_field(&mut out, &field("mean"), &Value::Float(share));
                    line_protocol::push_field(&mut out, &field("count"), &Value::Int(count));
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// A closed window: the line's field set and its stamp (the window's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub stamp: Stamp,
    pub field_set: String,
}

/// The window being filled.
#[derive(Debug, Clone)]
struct Open {
    /// The window's start, on the clocks of the samples' stamps.
    start: Stamp,
    /// The line's stamp: the start, or the first sample of a window joined late.
    stamp: Stamp,
    stats: BasicStats,
}

/// One sensor's aggregation (`aggregate = "1m"`, `aggregate_fields = [...]`).
#[derive(Debug, Clone)]
pub struct EdgeWindow {
    window_ns: i64,
    /// Only these fields, when the board names some.
    only: Option<Vec<String>>,
    open: Option<Open>,
    /// No window was opened yet: the first one may have begun before this run.
    first: bool,
}

impl EdgeWindow {
    pub fn new(window: Duration, only: Option<Vec<String>>) -> EdgeWindow {
        EdgeWindow {
            window_ns: (window.as_nanos() as i64).max(1),
            only,
            open: None,
            first: true,
        }
    }

    /// The start of the epoch-aligned window holding `stamp`, on the same clocks: the wall
    /// time rounded down, and the monotonic time that lies as far before the sample.
    fn window_of(&self, stamp: Stamp) -> Stamp {
        let into = stamp.wall_ns.rem_euclid(self.window_ns);
        Stamp {
            wall_ns: stamp.wall_ns - into,
            mono_ns: stamp.mono_ns - into,
            trusted: stamp.trusted,
        }
    }

    /// Fold in one sample. Returns the previous window when this sample starts a new one (a
    /// later window, or the clock became trusted).
    pub fn add(&mut self, fields: &Fields, stamp: Stamp) -> Option<Closed> {
        let start = self.window_of(stamp);
        let same = |open: &Open| {
            open.start.wall_ns == start.wall_ns && open.start.trusted == start.trusted
        };
        let closed = match &self.open {
            Some(open) if same(open) => None,
            _ => self.close(),
        };
        let late = std::mem::take(&mut self.first);
        let open = self.open.get_or_insert_with(|| Open {
            start,
            stamp: if late { stamp } else { start },
            stats: BasicStats::default(),
        });
        for (name, value) in fields {
            if self
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|f| f == name))
            {
                open.stats.add(name, value);
            }
        }
        closed
    }

    /// Close the open window once the monotonic clock says it has ended, so a window is
    /// written on time even when its sensor stops answering.
    pub fn close_if_ended(&mut self, now_mono_ns: i64) -> Option<Closed> {
        let open = self.open.as_ref()?;
        if now_mono_ns >= open.start.mono_ns + self.window_ns {
            self.close()
        } else {
            None
        }
    }

    /// Close the open window whatever its progress (shutdown): it keeps its real count.
    pub fn close(&mut self) -> Option<Closed> {
        let open = self.open.take()?;
        Some(Closed {
            stamp: open.stamp,
            field_set: open.stats.field_set()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn stamp(wall_s: f64, trusted: bool) -> Stamp {
        let wall_ns = (wall_s * 1e9) as i64;
        Stamp {
            wall_ns,
            mono_ns: wall_ns - 1_000 * S,
            trusted,
        }
    }

    fn climate(t: f64, open: bool) -> Fields {
        vec![
            ("temperature", Value::Float(t)),
            ("battery_level", Value::Int(90)),
            ("door_open", Value::Bool(open)),
            ("note", Value::Str("x".into())),
        ]
    }

    #[test]
    fn a_window_gives_basicstats_names_and_booleans_their_share_of_true() {
        let mut w = EdgeWindow::new(Duration::from_secs(60), None);
        w.add(&climate(0.0, true), stamp(5_999.0, true)); // the first window, joined late
        assert!(w.add(&climate(20.0, true), stamp(6_000.5, true)).is_some());
        assert_eq!(w.add(&climate(22.0, false), stamp(6_030.0, true)), None);
        assert_eq!(w.add(&climate(21.0, false), stamp(6_059.9, true)), None);
        let closed = w.add(&climate(30.0, true), stamp(6_060.0, true)).unwrap();
        assert_eq!(
            closed.field_set,
            "battery_level_mean=90,battery_level_min=90,battery_level_max=90,\
             battery_level_count=3i,battery_level_last=90,\
             door_open_mean=0.3333333333333333,door_open_count=3i,\
             temperature_mean=21,temperature_min=20,temperature_max=22,\
             temperature_count=3i,temperature_last=21"
        );
        assert_eq!(closed.stamp, stamp(6_000.0, true), "stamped at the start");
    }

    #[test]
    fn windows_are_aligned_to_the_epoch_and_their_monotonic_start_follows_the_samples() {
        let mut w = EdgeWindow::new(Duration::from_secs(60), None);
        w.add(&climate(1.0, true), stamp(125.0, false));
        let joined_late = w.add(&climate(1.0, true), stamp(185.0, false)).unwrap();
        assert_eq!(
            joined_late.stamp,
            stamp(125.0, false),
            "at its first sample"
        );
        let closed = w.close().unwrap();
        assert_eq!(closed.stamp.wall_ns, 180 * S);
        assert_eq!(closed.stamp.mono_ns, 180 * S - 1_000 * S);
        assert!(
            !closed.stamp.trusted,
            "held and re-stamped like its samples"
        );
    }

    #[test]
    fn the_clock_becoming_trusted_starts_a_new_window() {
        let mut w = EdgeWindow::new(Duration::from_secs(60), None);
        w.add(&climate(1.0, true), stamp(130.0, false));
        let closed = w.add(&climate(2.0, true), stamp(131.0, true)).unwrap();
        assert!(!closed.stamp.trusted);
        assert!(closed.field_set.contains("temperature_count=1i"));
    }

    #[test]
    fn a_window_closes_on_time_without_another_sample_and_a_cut_one_keeps_its_count() {
        let mut w = EdgeWindow::new(Duration::from_secs(10), None);
        w.add(&climate(1.0, true), stamp(101.0, true));
        w.add(&climate(2.0, true), stamp(102.0, true));
        let start_mono = stamp(100.0, true).mono_ns;
        assert_eq!(w.close_if_ended(start_mono + 9 * S), None);
        let closed = w.close_if_ended(start_mono + 10 * S).unwrap();
        assert!(closed.field_set.contains("temperature_count=2i"));
        w.add(&climate(3.0, true), stamp(111.0, true));
        let cut = w.close().unwrap();
        assert!(cut.field_set.contains("temperature_count=1i"));
        assert_eq!(w.close(), None, "nothing left after closing");
    }

    #[test]
    fn aggregate_fields_picks_a_subset() {
        let only = Some(vec!["temperature".to_string()]);
        let mut w = EdgeWindow::new(Duration::from_secs(60), only);
        w.add(&climate(1.0, true), stamp(1.0, true));
        let closed = w.close().unwrap();
        assert_eq!(
            closed.field_set,
            "temperature_mean=1,temperature_min=1,temperature_max=1,\
             temperature_count=1i,temperature_last=1"
        );
    }
}
