//! The retention policy's work on segments: whole segments expire or are dropped with one
//! range delete; a segment is taken apart into rows only where a row must go on its own (the
//! oldest segment when part of it expired, and the segments reaching into the window thinning
//! folds next, never more).
//! The queue's own connection seals what it works on first, so no commit can append to a
//! segment that is going away.

use super::{counter, Queue, QueueError};
use rusqlite::OptionalExtension;

/// The oldest segment: its first and last piece, its readings and their time span.
struct OldestSegment {
    first: i64,
    last: i64,
    lines: i64,
    oldest_ns: i64,
    newest_ns: i64,
}

impl Queue {
    /// Expire segments whose readings are all older than `cutoff_ns`; take apart the oldest
    /// segment if only part of it is, so row expiry removes exactly those. Returns how many
    /// readings were removed here.
    pub(super) fn expire_segments(&mut self, cutoff_ns: i64) -> Result<usize, QueueError> {
        let mut total = 0;
        while let Some(oldest) = self.oldest_segment_before(cutoff_ns)? {
            if oldest.newest_ns >= cutoff_ns {
                self.unpack(oldest.first, oldest.last)?;
                break;
            }
            total += self.delete_segment(&oldest, counter::EXPIRED)?;
        }
        Ok(total)
    }

    /// Take apart, oldest first, every segment holding a reading from before `end_ns` (the
    /// end of the window thinning folds next), so all of that window's readings are rows.
    /// Segments that only hold newer readings stay compressed.
    pub(super) fn unpack_segments_before(&mut self, end_ns: i64) -> Result<(), QueueError> {
        while let Some(oldest) = self.oldest_segment_before(end_ns)? {
            self.unpack(oldest.first, oldest.last)?;
        }
        Ok(())
    }

    /// Drop the oldest segment, counted as `dropped_full`. Returns how many readings.
    pub(super) fn drop_oldest_segment(&mut self) -> Result<usize, QueueError> {
        match self.oldest_segment_before(i64::MAX)? {
            Some(oldest) => self.delete_segment(&oldest, counter::DROPPED_FULL),
            None => Ok(0),
        }
    }

    /// The oldest sampling time of the head piece (pieces are stored in sampling order).
    pub(super) fn head_piece_ns(&self) -> Result<Option<i64>, QueueError> {
        self.piece_time("SELECT oldest_ns FROM pieces ORDER BY id LIMIT 1")
    }

    /// The newest sampling time of the last piece stored.
    pub(super) fn newest_piece_ns(&self) -> Result<Option<i64>, QueueError> {
        self.piece_time("SELECT newest_ns FROM pieces ORDER BY id DESC LIMIT 1")
    }

    fn piece_time(&self, sql: &str) -> Result<Option<i64>, QueueError> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The oldest segment if its oldest reading is before `before_ns`, sealed first.
    fn oldest_segment_before(
        &mut self,
        before_ns: i64,
    ) -> Result<Option<OldestSegment>, QueueError> {
        let head: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT id, oldest_ns FROM pieces ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.err(e))?;
        match head {
            Some((_, oldest_ns)) if oldest_ns < before_ns => {}
            _ => return Ok(None),
        }
        self.seal()?;
        let span = |first: i64| -> rusqlite::Result<OldestSegment> {
            self.conn.query_row(
                "SELECT ?1, max(id), sum(lines), min(oldest_ns), max(newest_ns) FROM pieces
                 WHERE id >= ?1 AND id < coalesce(
                     (SELECT min(id) FROM pieces WHERE id > ?1 AND first = 1), 9223372036854775807)",
                [first],
                |r| {
                    Ok(OldestSegment {
                        first: r.get(0)?,
                        last: r.get(1)?,
                        lines: r.get(2)?,
                        oldest_ns: r.get(3)?,
                        newest_ns: r.get(4)?,
                    })
                },
            )
        };
        let first: i64 = self
            .conn
            .query_row("SELECT min(id) FROM pieces", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let segment = span(first).map_err(|e| self.err(e))?;
        Ok((segment.oldest_ns < before_ns).then_some(segment))
    }

    fn delete_segment(
        &mut self,
        segment: &OldestSegment,
        reason: &'static str,
    ) -> Result<usize, QueueError> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM pieces WHERE id BETWEEN ?1 AND ?2",
                [segment.first, segment.last],
            )?;
            // Lines only count when the pieces were still there to delete.
            let lines = if n > 0 { segment.lines } else { 0 };
            Ok((
                lines as usize,
                vec![(reason, lines), (counter::QUEUED, -lines)],
            ))
        })
    }
}
