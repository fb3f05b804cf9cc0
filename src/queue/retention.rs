//! Keeping the queue within its budget when the network is gone for longer than planned.
//!
//! The policy, in order: readings older than `max_age` expire. When the file's live bytes pass
//! `max_bytes`: (a) the oldest routine readings are thinned: each `window` of a series becomes
//! one aggregate reading with the names edge aggregates use (Telegraf basicstats:
//! `<field>_mean`, `_min`, `_max`, `_count`, `_last`; a boolean's `_mean` is its share of true),
//! so one query reads thinned history and edge aggregates alike; (b) when nothing is left to thin, the oldest routine readings and aggregates are
//! dropped; (c) events (door, motion edges) go last. Every reading removed is counted by reason.

use super::{counter, Queue, QueueError};
use crate::aggregate::BasicStats;
use crate::line_protocol;
use rusqlite::params;
use std::collections::BTreeMap;
use std::time::Duration;

/// `readings.event` values.
pub const ROUTINE: i64 = super::Class::Routine.column();
pub const AGGREGATE: i64 = super::Class::Aggregate.column();

/// How many rows one thinning pass looks at: bounds the work done at once.
const THIN_SCAN: i64 = 100_000;
const DROP_CHUNK: i64 = 2_000;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_bytes: u64,
    pub max_age: Duration,
    pub window: Duration,
}

/// What one enforcement pass removed, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Enforced {
    pub expired: usize,
    pub thinned: usize,
    pub aggregates: usize,
    pub dropped_full: usize,
}

impl Queue {
    /// Bring the queue within `policy` at wall time `now_ns`. Cheap when nothing is over.
    pub fn enforce(&mut self, policy: &Policy, now_ns: i64) -> Result<Enforced, QueueError> {
        let max_age_ns = i64::try_from(policy.max_age.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = now_ns.saturating_sub(max_age_ns);
        let mut done = Enforced {
            expired: self.expire_segments(cutoff)? + self.expire(cutoff)?,
            ..Enforced::default()
        };
        if self.live_bytes()? > policy.max_bytes {
            self.make_room(policy, &mut done)?;
        }
        if done != Enforced::default() {
            log::warn!(
                "queue over its budget: expired {}, thinned {} into {} aggregates, dropped {} (oldest first)",
                done.expired,
                done.thinned,
                done.aggregates,
                done.dropped_full
            );
        }
        Ok(done)
    }

    /// Thin, then drop, oldest first and events last, until the live bytes are a little under
    /// `max_bytes` (so the next commits do not trigger another pass at once).
    fn make_room(&mut self, policy: &Policy, done: &mut Enforced) -> Result<(), QueueError> {
        let target = policy.max_bytes - policy.max_bytes / 10;
        let window = policy.window.as_nanos().max(1) as i64;
        let mut passes = 0;
        while self.live_bytes()? > target && passes < 10_000 {
            passes += 1;
            // Thinning folds rows: first bring every reading of the oldest window into rows.
            if self.unpack_for_thinning(self.oldest_routine_window_end(window)?)? {
                continue;
            }
            let (removed, created) = self.thin_oldest_window(window)?;
            if removed > 0 {
                done.thinned += removed;
                done.aggregates += created;
                continue;
            }
            let dropped = match self.drop_oldest(false)? {
                0 => self.drop_oldest_segment()?,
                n => n,
            };
            let dropped = match dropped {
                0 => self.drop_oldest(true)?,
                n => n,
            };
            if dropped == 0 {
                break;
            }
            done.dropped_full += dropped;
        }
        Ok(())
    }

    /// The end of the window holding the oldest routine row, `None` when there is none.
    fn oldest_routine_window_end(&self, window_ns: i64) -> Result<Option<i64>, QueueError> {
        let t0: Option<i64> = self
            .conn
            .query_row(
                "SELECT time_ns FROM readings WHERE event = ?1 ORDER BY id LIMIT 1",
                [ROUTINE],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.err(e))?;
        Ok(t0.map(|t| t - t.rem_euclid(window_ns) + window_ns))
    }

    /// Remove readings sampled before `cutoff_ns`, oldest first.
    fn expire(&mut self, cutoff_ns: i64) -> Result<usize, QueueError> {
        let mut total = 0;
        loop {
            let n = self.write(|tx| {
                let n = tx.execute(
                    "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?1) AND time_ns < ?2",
                    params![DROP_CHUNK, cutoff_ns],
                )?;
                Ok((n, vec![(counter::EXPIRED, n as i64), (counter::QUEUED, -(n as i64))]))
            })?;
            total += n;
            if n < DROP_CHUNK as usize {
                return Ok(total);
            }
        }
    }

    /// Fold the routine readings of the oldest window into one aggregate per series.
    /// Returns (readings removed, aggregates created).
    fn thin_oldest_window(&mut self, window_ns: i64) -> Result<(usize, usize), QueueError> {
        let newest_piece = self.newest_piece_ns()?.unwrap_or(i64::MIN);
        self.write(|tx| {
            let Some((first_id, start, end)) = oldest_complete_window(tx, window_ns, newest_piece)?
            else {
                return Ok(((0, 0), vec![]));
            };
            let mut groups: BTreeMap<i64, BasicStats> = BTreeMap::new();
            let mut ids = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, series, fields FROM readings
                     WHERE id >= ?1 AND id < ?2 AND event = ?3 AND time_ns >= ?4 AND time_ns < ?5",
                )?;
                let rows = stmt.query_map(
                    params![first_id, first_id + THIN_SCAN, ROUTINE, start, end],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )?;
                for row in rows {
                    let (id, series, fields) = row?;
                    let stats = groups.entry(series).or_default();
                    for (name, value) in line_protocol::parse_field_set(&fields) {
                        stats.add(&name, &value);
                    }
                    ids.push(id);
                }
            }
            {
                let mut delete = tx.prepare_cached("DELETE FROM readings WHERE id = ?1")?;
                for id in &ids {
                    delete.execute([id])?;
                }
                let mut insert = tx.prepare_cached(
                    "INSERT INTO readings(series, time_ns, fields, event) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (series, stats) in &groups {
                    // A series of strings only has nothing to aggregate.
                    if let Some(fields) = stats.field_set() {
                        insert.execute(params![series, start, fields, AGGREGATE])?;
                    }
                }
            }
            let created = groups.values().filter(|s| !s.is_empty()).count();
            let removed = ids.len();
            let counters = vec![
                (counter::THINNED, removed as i64),
                (counter::AGGREGATES, created as i64),
                (counter::QUEUED, created as i64 - removed as i64),
            ];
            Ok(((removed, created), counters))
        })
    }

    /// Drop the oldest readings: routine ones and aggregates, or (when `events`) anything.
    fn drop_oldest(&mut self, events: bool) -> Result<usize, QueueError> {
        let sql = if events {
            "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?1)"
        } else {
            "DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE event != 1 ORDER BY id LIMIT ?1)"
            // 1: events
        };
        self.write(|tx| {
            let n = tx.execute(sql, [DROP_CHUNK])?;
            Ok((
                n,
                vec![
                    (counter::DROPPED_FULL, n as i64),
                    (counter::QUEUED, -(n as i64)),
                ],
            ))
        })
    }
}

/// The oldest window of routine rows that has ended (a newer routine row or piece exists), as
/// (first row id, window start, window end). Never the window that is still filling: a later
/// pass would give it a second aggregate with the same series and timestamp, and InfluxDB
/// keeps only one of them.
fn oldest_complete_window(
    tx: &rusqlite::Transaction,
    window_ns: i64,
    newest_piece_ns: i64,
) -> rusqlite::Result<Option<(i64, i64, i64)>> {
    let first: Option<(i64, i64)> = tx
        .query_row(
            "SELECT id, time_ns FROM readings WHERE event = ?1 ORDER BY id LIMIT 1",
            [ROUTINE],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(Some)
        .or_else(|e| {
            if e == rusqlite::Error::QueryReturnedNoRows {
                Ok(None)
            } else {
                Err(e)
            }
        })?;
    let Some((first_id, t0)) = first else {
        return Ok(None);
    };
    let start = t0 - t0.rem_euclid(window_ns);
    let end = start + window_ns;
    let newest: i64 = tx.query_row(
        "SELECT time_ns FROM readings WHERE event = ?1 ORDER BY id DESC LIMIT 1",
        [ROUTINE],
        |r| r.get(0),
    )?;
    if newest.max(newest_piece_ns) < end {
        return Ok(None);
    }
    Ok(Some((first_id, start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Class, NewReading};

    const S: i64 = 1_000_000_000;

    fn fill(q: &mut Queue, seconds: i64, start: i64) {
        let s1 = q.series_id("m,sensor_id=a").unwrap();
        let s2 = q.series_id("m,sensor_id=b").unwrap();
        let mut rows = Vec::new();
        for t in 0..seconds {
            for (s, base) in [(s1, 20.0), (s2, 5.0)] {
                rows.push(NewReading {
                    series: s,
                    time_ns: start + t * S,
                    fields: format!(
                        "temperature={},humidity={}i,door_open={}",
                        base + (t % 10) as f64,
                        40 + t % 3,
                        t % 2 == 0
                    ),
                    class: if t % 1000 == 0 && s == s2 {
                        Class::Event
                    } else {
                        Class::Routine
                    },
                });
            }
        }
        q.push(&rows, &[], &[]).unwrap();
    }

    #[test]
    fn old_readings_expire_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
        fill(&mut q, 100, 0);
        let policy = Policy {
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(50),
            window: Duration::from_secs(10),
        };
        let done = q.enforce(&policy, 100 * S).unwrap();
        assert_eq!(done.expired, 100);
        assert_eq!(q.counters().unwrap()["dropped.expired"], 100);
        assert_eq!(q.stats().unwrap().depth, 100);
    }

    #[test]
    fn a_full_queue_thins_the_oldest_windows_into_aggregates_and_keeps_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
        fill(&mut q, 20_000, 0);
        let before = q.stats().unwrap().bytes;
        // Stored compressed, a reading takes a few bytes; as an aggregate row it takes a
        // window's share of ~200 bytes, and the window still filling cannot be thinned. So a
        // quarter off is what thinning alone can reach here.
        let policy = Policy {
            max_bytes: before * 3 / 4,
            max_age: Duration::from_secs(1 << 40),
            window: Duration::from_secs(300),
        };
        let done = q.enforce(&policy, 0).unwrap();
        assert!(
            done.thinned > 0 && done.aggregates > 0 && done.dropped_full == 0,
            "{done:?}"
        );
        assert!(q.stats().unwrap().bytes <= policy.max_bytes);
        let events: i64 = q
            .conn()
            .query_row("SELECT count(*) FROM readings WHERE event = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(events, 20, "events are never thinned");
        let (fields, time): (String, i64) = q
            .conn()
            .query_row(
                "SELECT fields, time_ns FROM readings WHERE event = 2 ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            time % (300 * S),
            0,
            "aggregates are stamped at their window's start"
        );
        assert!(
            fields.contains("temperature_mean=")
                && fields.contains("humidity_max=")
                && fields.contains("door_open_mean="),
            "{fields}"
        );
        assert!(
            fields.contains("temperature_count=300i") || fields.contains("temperature_count=299i"),
            "{fields}"
        );
        let c = q.counters().unwrap();
        assert_eq!(
            c["sampled"] + c["aggregates"] - c["dropped.thinned"],
            c["queued"]
        );
    }

    #[test]
    fn when_nothing_is_left_to_thin_the_oldest_are_dropped_and_events_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
        fill(&mut q, 20_000, 0);
        let policy = Policy {
            max_bytes: 64 * 1024,
            max_age: Duration::from_secs(1 << 40),
            window: Duration::from_secs(60),
        };
        let done = q.enforce(&policy, 0).unwrap();
        assert!(done.dropped_full > 0, "{done:?}");
        assert!(q.stats().unwrap().bytes <= policy.max_bytes);
        let c = q.counters().unwrap();
        assert_eq!(
            c["sampled"] + c["aggregates"] - c["dropped.thinned"] - c["dropped.dropped_full"],
            c["queued"]
        );
    }
}
