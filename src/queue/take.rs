//! Taking batches: the waiting readings the uploader sends next, oldest first, rendered as
//! line protocol into a `Batch` or straight into the packer's sink. Every read is an index
//! seek or range scan on the row id.

use super::{Batch, LineSink, Queue, QueueError};
use std::collections::hash_map::Entry;

impl Queue {
    /// The oldest waiting readings as plain line protocol, at most `max_lines` lines and
    /// (unless a single line is larger) `max_bytes` bytes: rows first, then the oldest
    /// segments, taken apart into rows. `None` when nothing waits. The uploader sends segments
    /// as they are stored instead (`next_segments`); this is for tools and tests.
    pub fn next_batch(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, QueueError> {
        if self.last_id()?.is_none() && self.unpack_oldest(max_lines)?.is_none() {
            return Ok(None);
        }
        self.batch_where("", max_lines, max_bytes)
    }

    /// Like `next_batch`, but only readings with an id above `after`: the newest-first lane.
    pub fn next_batch_after(
        &mut self,
        after: i64,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, QueueError> {
        self.batch_where(&format!("WHERE id > {after}"), max_lines, max_bytes)
    }

    fn batch_where(
        &mut self,
        filter: &str,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, QueueError> {
        let batch = Batch::with_capacity(max_lines.min(1024), max_bytes.min(64 * 1024));
        let batch = self.render_where(filter, max_lines, max_bytes, batch)?;
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// The readings with ids above `after` (all when `None`), oldest first, rendered into `sink`
    /// up to `max_lines` lines and (unless a single line is larger) `max_bytes` bytes.
    pub fn render_after<S: LineSink>(
        &mut self,
        after: Option<i64>,
        max_lines: usize,
        max_bytes: usize,
        sink: S,
    ) -> Result<S, QueueError> {
        let filter = after
            .map(|id| format!("WHERE id > {id}"))
            .unwrap_or_default();
        self.render_where(&filter, max_lines, max_bytes, sink)
    }

    /// Exactly the rows `first..=last` that are still queued, as a plain batch (to bisect or
    /// dead-letter lines of a batch that was sent compressed).
    pub fn batch_between(&mut self, first: i64, last: i64) -> Result<Batch, QueueError> {
        let filter = format!("WHERE id BETWEEN {first} AND {last}");
        self.render_where(&filter, usize::MAX >> 1, usize::MAX, Batch::default())
    }

    fn render_where<S: LineSink>(
        &mut self,
        filter: &str,
        max_lines: usize,
        max_bytes: usize,
        mut sink: S,
    ) -> Result<S, QueueError> {
        let sql = format!(
            "SELECT id, series, time_ns, fields FROM readings {filter} ORDER BY id LIMIT ?1"
        );
        // Rows are rendered straight from SQLite's buffers; series keys come from the cache.
        let (conn, keys) = (&self.conn, &mut self.series_keys);
        let mut render = || -> rusqlite::Result<()> {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([max_lines.min(i64::MAX as usize) as i64])?;
            while let Some(row) = rows.next()? {
                let series: i64 = row.get(1)?;
                let key = match keys.entry(series) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(conn.query_row(
                        "SELECT key FROM series WHERE id = ?1",
                        [series],
                        |r| r.get(0),
                    )?),
                };
                let time_ns: i64 = row.get(2)?;
                let fields = row.get_ref(3)?.as_str()?;
                let len = crate::line_protocol::line_len(key, fields, time_ns);
                if sink.lines() > 0 && sink.plain_len() + 1 + len > max_bytes {
                    break;
                }
                sink.push(row.get(0)?, key, fields, time_ns);
            }
            Ok(())
        };
        let rendered = render();
        rendered.map_err(|e| self.err(e))?;
        Ok(sink)
    }

    /// Whether any reading waits with an id above `after` (one index seek).
    pub fn has_after(&self, after: i64) -> Result<bool, QueueError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM readings WHERE id > ?1)",
                [after],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The id of the newest waiting reading.
    pub fn last_id(&self) -> Result<Option<i64>, QueueError> {
        self.conn
            .query_row("SELECT max(id) FROM readings", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Where the waiting readings end now (the newest row and the newest stored piece), so a
    /// watcher can tell when what waits now has left; `None` when nothing waits.
    pub fn backlog_mark(&self) -> Result<Option<BacklogMark>, QueueError> {
        let rows = self.last_id()?;
        let pieces = self.last_piece_id()?;
        Ok((rows.is_some() || pieces.is_some()).then_some(BacklogMark {
            rows: rows.unwrap_or(0),
            pieces: pieces.unwrap_or(0),
        }))
    }

    /// How many readings up to `mark` still wait: what is left of a backlog. (Segments taken
    /// apart meanwhile become newer rows, past the mark.)
    pub fn waiting_through(&self, mark: BacklogMark) -> Result<i64, QueueError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM readings WHERE id <= ?1)
                      + (SELECT coalesce(sum(lines), 0) FROM pieces WHERE id <= ?2)",
                [mark.rows, mark.pieces],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

/// The end of the readings waiting at some moment (see [`Queue::backlog_mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogMark {
    rows: i64,
    pieces: i64,
}
