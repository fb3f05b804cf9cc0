//! Keeping the queue within its budget when the network is gone for longer than planned.
//!
//! The policy, in order: readings older than `max_age` expire. When the file's live bytes pass
//! `max_bytes`: (a) the oldest routine readings are thinned, whether they wait as rows or in
//! compressed segments (by sampling time, not by where they are stored): each `window` of a
//! series becomes one aggregate reading with the names edge aggregates use (Telegraf
//! basicstats: `<field>_mean`, `_min`, `_max`, `_count`, `_last`; a boolean's `_mean` is its
//! share of true), so one query reads thinned history and edge aggregates alike; (b) when
//! nothing is left to thin, the oldest routine readings and aggregates are dropped; (c) events
//! (door, motion edges) go last. Every reading removed is counted by reason.

mod routine_windows;

use super::{counter, Queue, QueueError};
use crate::aggregate::BasicStats;
use crate::line_protocol;
use routine_windows::RoutineWindows;
use rusqlite::params;
use std::collections::BTreeMap;
use std::time::Duration;

/// `readings.event` values.
pub const ROUTINE: i64 = super::Class::Routine.column();
pub const AGGREGATE: i64 = super::Class::Aggregate.column();

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
        let window = i64::try_from(policy.window.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut rows = RoutineWindows::scan(&self.conn, window).map_err(|e| self.err(e))?;
        let mut passes = 0;
        while self.live_bytes()? > target && passes < 10_000 {
            passes += 1;
            if let Some((removed, created)) = self.thin_oldest_window(&mut rows)? {
                done.thinned += removed;
                done.aggregates += created;
                continue;
            }
            let dropped = self.drop_oldest_first(rows.oldest())?;
            if dropped == 0 {
                break;
            }
            done.dropped_full += dropped;
        }
        Ok(())
    }

    /// Fold the oldest window of routine readings, rows or pieces, into one aggregate per
    /// series: the segments reaching into that window are taken apart first, and only those,
    /// so a pass never unpacks more than it thins. Returns (readings removed, aggregates
    /// created), `None` when no window can be thinned: no routine reading waits, or they all
    /// sit in the window still filling (a later pass would give it a second aggregate with the
    /// same series and timestamp, and InfluxDB keeps only one of them).
    fn thin_oldest_window(
        &mut self,
        rows: &mut RoutineWindows,
    ) -> Result<Option<(usize, usize)>, QueueError> {
        rows.catch_up(&self.conn).map_err(|e| self.err(e))?;
        let head_piece = self.head_piece_ns()?.map(|t| rows.start_of(t));
        let Some(start) = rows.oldest().into_iter().chain(head_piece).min() else {
            return Ok(None);
        };
        let end = start.saturating_add(rows.window_ns());
        let newer_row = rows.newest().is_some_and(|newest| newest > start);
        let newer_piece = self.newest_piece_ns()?.is_some_and(|newest| newest >= end);
        if !newer_row && !newer_piece {
            return Ok(None);
        }
        self.unpack_segments_before(end)?;
        rows.catch_up(&self.conn).map_err(|e| self.err(e))?;
        // Gone meanwhile (acknowledged, or lost to damage): the next pass looks again.
        let Some(ids) = rows.take(start) else {
            return Ok(Some((0, 0)));
        };
        self.fold_window(start, end, ids).map(Some)
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
                Ok((
                    n,
                    vec![(counter::EXPIRED, n as i64), (counter::QUEUED, -(n as i64))],
                ))
            })?;
            total += n;
            if n < DROP_CHUNK as usize {
                return Ok(total);
            }
        }
    }

    /// Fold the routine rows of the window `start..end`, ids `first..=last`, into one
    /// aggregate per series. Returns (readings removed, aggregates created).
    fn fold_window(
        &mut self,
        start: i64,
        end: i64,
        (first, last): (i64, i64),
    ) -> Result<(usize, usize), QueueError> {
        self.write(|tx| {
            let mut groups: BTreeMap<i64, BasicStats> = BTreeMap::new();
            let mut ids = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, series, fields FROM readings
                     WHERE id BETWEEN ?1 AND ?2 AND event = ?3 AND time_ns >= ?4 AND time_ns < ?5",
                )?;
                let rows = stmt.query_map(params![first, last, ROUTINE, start, end], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
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

    /// Drop what thinning cannot shrink, oldest first and events last: the rows older than
    /// every routine reading (aggregates of thinned windows), then the oldest segment, then
    /// the other routine rows and aggregates, then events. `oldest_routine_row` is the start
    /// of the oldest window with routine rows. Returns how many readings were dropped.
    fn drop_oldest_first(&mut self, oldest_routine_row: Option<i64>) -> Result<usize, QueueError> {
        let head_piece = self.head_piece_ns()?;
        let routine_from = oldest_routine_row.into_iter().chain(head_piece).min();
        if let Some(from) = routine_from {
            let n = self.drop_oldest_rows(false, from)?;
            if n > 0 {
                return Ok(n);
            }
        }
        match self.drop_oldest_segment()? {
            0 => {}
            n => return Ok(n),
        }
        match self.drop_oldest_rows(false, i64::MAX)? {
            0 => self.drop_oldest_rows(true, i64::MAX),
            n => Ok(n),
        }
    }

    /// Drop the oldest rows by id sampled before `before_ns`: routine ones and aggregates,
    /// or (when `events`) anything.
    fn drop_oldest_rows(&mut self, events: bool, before_ns: i64) -> Result<usize, QueueError> {
        let sql = if events {
            "DELETE FROM readings WHERE id IN
             (SELECT id FROM readings WHERE time_ns < ?2 ORDER BY id LIMIT ?1)"
        } else {
            // 1: events
            "DELETE FROM readings WHERE id IN
             (SELECT id FROM readings WHERE event != 1 AND time_ns < ?2 ORDER BY id LIMIT ?1)"
        };
        self.write(|tx| {
            let n = tx.execute(sql, [DROP_CHUNK, before_ns])?;
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

#[cfg(test)]
mod tests;
