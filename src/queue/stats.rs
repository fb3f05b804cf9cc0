//! What the queue knows about itself: counters by name (drops by reason, uploads) and the
//! figures `status` shows, all from counters, index ends and page counts, never table scans.

use super::{Queue, QueueError};
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;

/// What `status` shows about the queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Readings waiting for upload.
    pub depth: i64,
    /// Sampling time of the oldest waiting reading.
    pub oldest_ns: Option<i64>,
    /// Readings held back until the clock is trusted.
    pub held: i64,
    pub oldest_held_wall_ns: Option<i64>,
    pub dead_letters: i64,
    /// Bytes the live pages of the file take (the file minus its free pages).
    pub bytes: u64,
}

/// Counter names, so every place that counts uses the same words.
pub mod counter {
    /// Readings accepted into the queue.
    pub const SAMPLED: &str = "sampled";
    /// Readings the server acknowledged.
    pub const UPLOADED: &str = "uploaded";
    /// Routine readings older than `max_age`, removed.
    pub const EXPIRED: &str = "dropped.expired";
    /// Routine readings folded into window aggregates when the queue was full.
    pub const THINNED: &str = "dropped.thinned";
    /// Readings removed because the queue was full even after thinning.
    pub const DROPPED_FULL: &str = "dropped.dropped_full";
    /// Lines the server rejected, moved to the dead-letter table.
    pub const REJECTED: &str = "dropped.rejected";
    /// Readings whose time could not be known, moved to the dead-letter table.
    pub const UNKNOWN_TIME: &str = "dropped.unknown_time";
    /// Aggregate readings created by thinning (they are uploaded like any other).
    pub const AGGREGATES: &str = "aggregates";
    /// Fields left out of a line because line protocol cannot carry them (NaN, infinity).
    pub const FIELDS_NONFINITE: &str = "fields_dropped.nonfinite";
    /// Times a corrupt queue file was moved aside and a fresh one started.
    pub const CORRUPT_RECOVERED: &str = "queue.corrupt_recovered";
    /// Readings (waiting or held) copied out of a corrupt file into the fresh queue.
    pub const SALVAGED: &str = "queue.salvaged";
    /// Waiting readings lost to damage: a corrupt file's that could not be read back, or a
    /// compressed segment's that do not decode.
    pub const LOST_CORRUPT: &str = "dropped.corrupt";
    /// Gauge, not a counter: readings currently waiting (kept exact so status needs no COUNT).
    pub const QUEUED: &str = "queued";
    /// Gauge: readings currently held for an untrusted clock.
    pub const HELD: &str = "held";
    /// Prefix of per-sensor error counters: `sensor_error.<sensor id>.<reason>`.
    pub const SENSOR_ERROR_PREFIX: &str = "sensor_error.";
}

impl Queue {
    /// Every counter and gauge, by name.
    pub fn counters(&self) -> Result<BTreeMap<String, i64>, QueueError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM counters")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Depth, ages and size, all from counters, index ends and page counts: no table scans.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let c = self.counters()?;
        let one = |sql: &str| -> Result<Option<i64>, QueueError> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))
        };
        Ok(QueueStats {
            depth: c.get(counter::QUEUED).copied().unwrap_or(0),
            // Pieces keep sampling order, rows do not (events come as they happen, released
            // held readings and taken-apart segments after them): the oldest row is found by
            // time. Rows are few now that routine readings are stored as pieces.
            oldest_ns: [
                self.conn
                    .query_row("SELECT min(time_ns) FROM readings", [], |r| r.get(0))
                    .map_err(|e| self.err(e))?,
                // A file of an older release, looked at read-only, has no `pieces` yet.
                match self.has_pieces_table()? {
                    true => one("SELECT oldest_ns FROM pieces ORDER BY id LIMIT 1")?,
                    false => None,
                },
            ]
            .into_iter()
            .flatten()
            .min(),
            held: c.get(counter::HELD).copied().unwrap_or(0),
            oldest_held_wall_ns: one("SELECT wall_ns FROM held ORDER BY id LIMIT 1")?,
            // Dead letters are few (an operator clears them), so counting them is cheap.
            dead_letters: one("SELECT count(*) FROM dead_letters")?.unwrap_or(0),
            bytes: self.live_bytes()?,
        })
    }

    fn has_pieces_table(&self) -> Result<bool, QueueError> {
        self.conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pieces'")
            .and_then(|mut stmt| stmt.exists([]))
            .map_err(|e| self.err(e))
    }

    /// Bytes the live pages of the file take (the file minus its free pages): three header
    /// reads, cheap enough to check after every commit.
    pub fn live_bytes(&self) -> Result<u64, QueueError> {
        let pragma = |name: &str| -> Result<i64, QueueError> {
            self.conn
                .pragma_query_value(None, name, |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let live = (pragma("page_count")? - pragma("freelist_count")?).max(0);
        Ok((live * pragma("page_size")?) as u64)
    }
}
