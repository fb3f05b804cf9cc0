//! Routine readings stored as compressed pieces (see `segment`): the recorder appends one
//! piece per commit; the uploader takes whole segments, oldest first, as one gzip member.
//!
//! A segment is a run of piece rows that starts with `first = 1`. The recorder keeps its
//! segment's deflate stream open between commits; once the uploader wants to send it, it
//! seals it (`sealed_through`, in the same write lock the recorder's commits take), and the
//! recorder's next commit starts a fresh segment. Only sealed segments are read, so an
//! acknowledged segment can never leave a piece behind that needs it to decode. After a crash
//! the recorder simply starts a new segment: every stored piece of the old one still decodes.

use super::gzip_member::GzipMember;
use super::segment::{self, OpenSegment, Piece, SegmentBounds};
use super::{NewReading, Queue, QueueError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// The meta key holding the id of the last piece of a closed segment: every piece up to it
/// belongs to a segment no commit will append to.
const SEALED_THROUGH: &str = "sealed_through";

/// Whole segments taken for one request.
#[derive(Debug)]
pub struct Segments {
    /// First and last piece id: a run of whole segments.
    pub run: (i64, i64),
    pub lines: usize,
    /// Bytes of line protocol (every line ends in `\n`): what size limits apply to.
    pub raw_len: usize,
    /// One gzip member holding the segments' text.
    pub gzip: Vec<u8>,
    /// The deflate pieces, for outputs that want the plain text (`Segments::text`).
    pieces: Vec<Vec<u8>>,
    /// Where each segment starts in `pieces`.
    starts: Vec<usize>,
}

impl Segments {
    /// The plain line protocol, for outputs that do not gzip: lines joined by `\n`.
    pub fn text(&self) -> Result<Vec<u8>, std::io::Error> {
        let mut text = Vec::with_capacity(self.raw_len);
        for (i, &start) in self.starts.iter().enumerate() {
            let end = self.starts.get(i + 1).copied().unwrap_or(self.pieces.len());
            text.extend_from_slice(&segment::decode(&self.pieces[start..end])?);
        }
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        Ok(text)
    }
}

/// One stored piece as read back.
struct StoredPiece {
    id: i64,
    lines: usize,
    raw_len: usize,
    crc: u32,
    data: Vec<u8>,
}

impl Queue {
    /// Append `routine` readings to the open segment as one piece (several when they fill
    /// it), inside the commit's transaction. A sealed or full segment is closed first.
    pub(super) fn store_routine(
        tx: &Transaction,
        open: &mut Option<OpenSegment>,
        bounds: SegmentBounds,
        keys: &mut HashMap<i64, String>,
        routine: &[&NewReading],
    ) -> rusqlite::Result<()> {
        let mut rest = routine;
        while !rest.is_empty() {
            let segment = open_for_append(tx, open, bounds)?;
            let (room_lines, room_bytes) = segment.room();
            let mut text = Vec::with_capacity(rest.len().min(room_lines as usize) * 200);
            let (mut oldest, mut newest, mut taken) = (i64::MAX, i64::MIN, 0);
            for r in rest {
                if taken > 0 && (taken >= room_lines || text.len() as u64 >= room_bytes) {
                    break;
                }
                let key = series_key(tx, keys, r.series)?;
                crate::line_protocol::push_line(&mut text, key, &r.fields, r.time_ns);
                text.push(b'\n');
                oldest = oldest.min(r.time_ns);
                newest = newest.max(r.time_ns);
                taken += 1;
            }
            let piece = segment
                .append(&text, taken, oldest, newest)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let id = insert_piece(tx, segment.first_id.is_none(), &piece)?;
            segment.first_id.get_or_insert(id);
            segment.last_id = Some(id);
            rest = &rest[taken as usize..];
        }
        Ok(())
    }

    /// Close segments at half a batch of the output's size, so batches send whole segments
    /// (the default segments are for the default batch size).
    pub fn set_segment_bounds(&mut self, bounds: SegmentBounds) {
        self.segment_bounds = bounds;
    }

    /// Close the open segment, whoever holds it, so every piece stored so far can be sent and
    /// deleted. Returns the sealed mark: every piece stored from now on gets a higher id
    /// (`None` while no piece was ever stored).
    pub fn seal(&mut self) -> Result<Option<i64>, QueueError> {
        self.write(|tx| {
            let last: Option<i64> = tx.query_row("SELECT max(id) FROM pieces", [], |r| r.get(0))?;
            let sealed = sealed_through(tx)?;
            match last {
                Some(last) if last > sealed => {
                    set_sealed_through(tx, last)?;
                    Ok((Some(last), vec![]))
                }
                _ => Ok(((sealed != i64::MIN).then_some(sealed), vec![])),
            }
        })
    }

    /// Whole sealed segments after piece `after` (from the oldest when `None`), as many as fit
    /// `max_lines` and `max_bytes` of line protocol but at least one (a segment larger than
    /// the bounds is for the caller to split). The open segment is sealed if the batch would
    /// otherwise not be full. `None` when nothing waits.
    pub fn next_segments(
        &mut self,
        after: Option<i64>,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Segments>, QueueError> {
        let sealed = sealed_through(&self.conn).map_err(|e| self.err(e))?;
        let taken = self.segments_between(after, sealed, max_lines, max_bytes)?;
        let full = taken
            .as_ref()
            .is_some_and(|s| s.lines >= max_lines / 2 || s.raw_len >= max_bytes / 2);
        if full || self.last_piece_id()?.is_none_or(|last| last <= sealed) {
            return Ok(taken);
        }
        match self.seal()? {
            Some(now_sealed) => self.segments_between(after, now_sealed, max_lines, max_bytes),
            None => Ok(taken),
        }
    }

    fn segments_between(
        &self,
        after: Option<i64>,
        sealed: i64,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Segments>, QueueError> {
        let read = || -> rusqlite::Result<Option<Segments>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, first, lines, raw_len, crc, data FROM pieces
                 WHERE id > ?1 AND id <= ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![after.unwrap_or(i64::MIN), sealed])?;
            let mut taken = Taking::new(max_lines, max_bytes);
            let mut runs = segment::SegmentRuns::default();
            while let Some(row) = rows.next()? {
                let piece = StoredPiece {
                    id: row.get(0)?,
                    lines: row.get::<_, i64>(2)? as usize,
                    raw_len: row.get::<_, i64>(3)? as usize,
                    crc: row.get::<_, i64>(4)? as u32,
                    data: row.get(5)?,
                };
                if let Some(whole) = runs.push(row.get(1)?, piece) {
                    if !taken.add(whole)? {
                        return Ok(taken.finish());
                    }
                }
            }
            if let Some(last) = runs.finish() {
                taken.add(last)?;
            }
            Ok(taken.finish())
        };
        read().map_err(|e| self.err(e))
    }

    /// The id of the newest stored piece.
    pub fn last_piece_id(&self) -> Result<Option<i64>, QueueError> {
        self.conn
            .query_row("SELECT max(id) FROM pieces", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Whether any piece waits with an id above `after` (one index seek).
    pub fn has_pieces_after(&self, after: i64) -> Result<bool, QueueError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pieces WHERE id > ?1)",
                [after],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

/// The open segment, or a fresh one when it is sealed (by the uploader) or full (then this
/// commit seals it, so the uploader can take it).
fn open_for_append<'s>(
    tx: &Transaction,
    open: &'s mut Option<OpenSegment>,
    bounds: SegmentBounds,
) -> rusqlite::Result<&'s mut OpenSegment> {
    let sealed = sealed_through(tx)?;
    let keep = open
        .as_ref()
        .is_some_and(|s| !s.is_full() && s.first_id.is_none_or(|first| first > sealed));
    if !keep {
        if let Some(last) = open.as_ref().and_then(|s| s.last_id) {
            if last > sealed {
                set_sealed_through(tx, last)?;
            }
        }
        *open = Some(OpenSegment::new(bounds));
    }
    Ok(open.get_or_insert_with(|| OpenSegment::new(bounds)))
}

/// Segments being gathered into one batch.
struct Taking {
    max_lines: usize,
    max_bytes: usize,
    member: Option<GzipMember>,
    run: Option<(i64, i64)>,
    lines: usize,
    pieces: Vec<Vec<u8>>,
    starts: Vec<usize>,
}

impl Taking {
    fn new(max_lines: usize, max_bytes: usize) -> Taking {
        Taking {
            max_lines,
            max_bytes,
            member: None,
            run: None,
            lines: 0,
            pieces: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Take a whole segment if it fits (the first always does). Returns whether it did. Its
    /// pieces are checked first: stored bytes the card garbled are never sent, they fail as
    /// damage to the file, which is then set aside and salvaged (see `recovery`).
    fn add(&mut self, segment: Vec<StoredPiece>) -> rusqlite::Result<bool> {
        let lines: usize = segment.iter().map(|p| p.lines).sum();
        let raw: usize = segment.iter().map(|p| p.raw_len).sum();
        let member = self
            .member
            .get_or_insert_with(|| GzipMember::with_capacity(64 * 1024));
        let fits = self.lines + lines <= self.max_lines
            && member.raw_len() as usize + raw <= self.max_bytes;
        if self.run.is_some() && !fits {
            return Ok(false);
        }
        if let Some(damage) = segment::first_damage(segment.iter().map(|p| (&p.data[..], p.crc))) {
            let at = segment.get(damage.piece).map_or(0, |p| p.id);
            return Err(segment::corrupt(format!("piece {at}: {}", damage.why)));
        }
        self.starts.push(self.pieces.len());
        for piece in segment {
            member.push(&piece.data, piece.crc, piece.raw_len as u64);
            self.run = Some((self.run.map_or(piece.id, |(f, _)| f), piece.id));
            self.pieces.push(piece.data);
        }
        self.lines += lines;
        Ok(true)
    }

    fn finish(self) -> Option<Segments> {
        let (run, member) = (self.run?, self.member?);
        let raw_len = member.raw_len() as usize;
        Some(Segments {
            run,
            lines: self.lines,
            raw_len,
            gzip: member.finish(),
            pieces: self.pieces,
            starts: self.starts,
        })
    }
}

/// Store a piece with an id above every piece stored or sealed before, even once all were
/// deleted: marks and cursors never see an id come back.
fn insert_piece(tx: &Transaction, first: bool, piece: &Piece) -> rusqlite::Result<i64> {
    let floor = sealed_through(tx)?.max(0);
    let mut insert = tx.prepare_cached(
        "INSERT INTO pieces(id, first, lines, raw_len, crc, oldest_ns, newest_ns, data)
         VALUES (max(coalesce((SELECT max(id) FROM pieces), 0), ?8) + 1,
                 ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    insert.execute(params![
        first,
        piece.lines as i64,
        piece.raw_len as i64,
        i64::from(piece.crc),
        piece.oldest_ns,
        piece.newest_ns,
        piece.data,
        floor
    ])?;
    Ok(tx.last_insert_rowid())
}

fn series_key<'k>(
    conn: &Connection,
    keys: &'k mut HashMap<i64, String>,
    series: i64,
) -> rusqlite::Result<&'k str> {
    match keys.entry(series) {
        Entry::Occupied(known) => Ok(known.into_mut()),
        Entry::Vacant(slot) => {
            let key: String =
                conn.query_row("SELECT key FROM series WHERE id = ?1", [series], |r| {
                    r.get(0)
                })?;
            Ok(slot.insert(key))
        }
    }
}

pub(super) fn sealed_through(conn: &Connection) -> rusqlite::Result<i64> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [SEALED_THROUGH],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(i64::MIN))
}

fn set_sealed_through(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    super::set_meta(conn, SEALED_THROUGH, &id.to_string())
}
