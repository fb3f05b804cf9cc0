//! Taking segments apart, on the rare paths only: a batch the server did not simply accept
//! (split on 413, bisect on 400/422), a segment larger than the batch size the server taught
//! us, and thinning when the queue is full. The segments' lines become rows of `readings`, in
//! the same order and in one transaction with the deletion of the pieces, so no reading is
//! lost or doubled whatever happens meanwhile.

use super::dead_letters::split_line;
use super::{counter, segment, Queue, QueueError};
use rusqlite::{params, Connection, Transaction};
use std::collections::HashMap;

impl Queue {
    /// Turn the pieces `first..=last` (whole sealed segments) into rows. Returns the run of
    /// new row ids, `None` if those pieces are gone (acknowledged or removed meanwhile).
    pub fn unpack(&mut self, first: i64, last: i64) -> Result<Option<(i64, i64)>, QueueError> {
        self.write(|tx| {
            let done = unpack_in(tx, first, last)?;
            let lost = done.lost as i64;
            Ok((
                done.rows,
                vec![(counter::LOST_CORRUPT, lost), (counter::QUEUED, -lost)],
            ))
        })
    }

    /// Unpack the oldest sealed segments, up to `max_lines` (at least one segment). Returns
    /// the run of new rows, `None` when no segment waits.
    pub(super) fn unpack_oldest(
        &mut self,
        max_lines: usize,
    ) -> Result<Option<(i64, i64)>, QueueError> {
        let Some(taken) = self.next_segments(None, max_lines, usize::MAX)? else {
            return Ok(None);
        };
        self.unpack(taken.run.0, taken.run.1)
    }
}

impl Queue {
    /// After a salvage: take apart every segment that is not sound (a piece garbled, or lost
    /// with its page, breaks the ones after it), keeping the readings before the damage; the
    /// rest are counted lost and noted as a dead letter. Sound segments stay as stored, so the
    /// uploader never meets this damage again. Returns the readings lost. Runs without the
    /// guard against moves: the salvaging connection holds it.
    pub(super) fn heal_segments(&mut self) -> Result<i64, QueueError> {
        let damaged = damaged_segments(&self.conn).map_err(|e| self.err(e))?;
        let mut lost = 0;
        for (first, last) in damaged {
            lost += self.write_unguarded(|tx| {
                let lost = unpack_in(tx, first, last)?.lost as i64;
                Ok((
                    lost,
                    vec![(counter::LOST_CORRUPT, lost), (counter::QUEUED, -lost)],
                ))
            })?;
        }
        Ok(lost)
    }
}

/// The piece runs (first, last id) of the segments that do not decode to their CRC-32s.
fn damaged_segments(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare("SELECT id, first, crc, data FROM pieces ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut damaged = Vec::new();
    let mut check = |segment: Vec<(i64, u32, Vec<u8>)>| {
        let pieces = segment.iter().map(|(_, crc, data)| (&data[..], *crc));
        if segment::first_damage(pieces).is_some() {
            damaged.push((segment[0].0, segment[segment.len() - 1].0));
        }
    };
    let mut runs = segment::SegmentRuns::default();
    while let Some(row) = rows.next()? {
        let piece = (row.get(0)?, row.get::<_, i64>(2)? as u32, row.get(3)?);
        if let Some(whole) = runs.push(row.get(1)?, piece) {
            check(whole);
        }
    }
    if let Some(last) = runs.finish() {
        check(last);
    }
    Ok(damaged)
}

impl Queue {
    /// Every waiting reading as a line of line protocol: rows, then segments, each oldest
    /// first. For tools and tests; it reads the whole queue.
    pub fn waiting_lines(&self) -> Result<Vec<String>, QueueError> {
        stored_lines(&self.conn).map_err(|e| self.err(e))
    }
}

/// Every reading stored in the queue file open on `conn`, as the line the uploader sends for
/// it: rows, then segments, each oldest first. For tools and tests (on a read-only
/// connection, say); it reads the whole queue.
pub fn stored_lines(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut rows = conn.prepare(
        "SELECT s.key, r.fields, r.time_ns FROM readings r JOIN series s ON s.id = r.series
         ORDER BY r.id",
    )?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let mut line = Vec::new();
        let (key, fields) = (row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?);
        crate::line_protocol::push_line(&mut line, key, fields, row.get(2)?);
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    let mut pieces = conn.prepare("SELECT first, data FROM pieces ORDER BY id")?;
    let mut pieces = pieces.query([])?;
    let decode_into = |segment: Vec<Vec<u8>>, lines: &mut Vec<String>| {
        let text = segment::decode(&segment).map_err(segment::corrupt)?;
        lines.extend(String::from_utf8_lossy(&text).lines().map(str::to_string));
        Ok::<(), rusqlite::Error>(())
    };
    let mut runs = segment::SegmentRuns::default();
    while let Some(row) = pieces.next()? {
        if let Some(whole) = runs.push(row.get(0)?, row.get(1)?) {
            decode_into(whole, &mut lines)?;
        }
    }
    if let Some(last) = runs.finish() {
        decode_into(last, &mut lines)?;
    }
    Ok(lines)
}

/// How many readings the queue file open on `conn` stores (rows and lines of pieces), counted
/// rather than taken from the `queued` gauge: for checks of that gauge.
pub fn stored_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM readings) + (SELECT coalesce(sum(lines), 0) FROM pieces)",
        [],
        |r| r.get(0),
    )
}

/// What taking segments apart made: the run of new rows, and the lines lost to damage.
#[derive(Default)]
pub(super) struct Unpacked {
    pub rows: Option<(i64, i64)>,
    pub lost: u64,
}

/// A segment's pieces with the id of its first piece.
fn with_first_id(pieces: Vec<(i64, segment::StoredPiece)>) -> (i64, Vec<segment::StoredPiece>) {
    let first = pieces.first().map_or(0, |(id, _)| *id);
    (first, pieces.into_iter().map(|(_, piece)| piece).collect())
}

/// Inside a write transaction: decode the segments of pieces `first..=last`, insert their
/// lines as routine rows and delete the pieces. A damaged segment keeps the lines before the
/// damage; the rest are counted lost and noted as one dead letter, so the queue heals.
pub(super) fn unpack_in(tx: &Transaction, first: i64, last: i64) -> rusqlite::Result<Unpacked> {
    let mut segments: Vec<(i64, Vec<segment::StoredPiece>)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT id, first, data, crc, lines FROM pieces WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query([first, last])?;
        let mut runs = segment::SegmentRuns::default();
        while let Some(row) = rows.next()? {
            let piece = (
                row.get::<_, i64>(0)?,
                segment::StoredPiece {
                    data: row.get(2)?,
                    crc: row.get::<_, i64>(3)? as u32,
                    lines: row.get::<_, i64>(4)? as u64,
                },
            );
            segments.extend(runs.push(row.get(1)?, piece).map(with_first_id));
        }
        segments.extend(runs.finish().map(with_first_id));
    }
    let mut done = Unpacked::default();
    let mut series: HashMap<String, i64> = HashMap::new();
    for (id, pieces) in &segments {
        let salvaged = segment::salvage(pieces);
        let text = String::from_utf8_lossy(&salvaged.text);
        for line in text.lines().filter(|l| !l.is_empty()) {
            match split_line(line) {
                Some((key, fields, time_ns)) => {
                    let series = series_id(tx, &mut series, key)?;
                    let row = insert_row(tx, series, time_ns, fields)?;
                    done.rows = Some((done.rows.map_or(row, |(f, _)| f), row));
                }
                None => done.lost += 1,
            }
        }
        if let Some(damage) = salvaged.damage {
            done.lost += salvaged.lost_lines;
            note_damage(tx, *id, salvaged.lost_lines, &damage)?;
        }
    }
    tx.execute(
        "DELETE FROM pieces WHERE id BETWEEN ?1 AND ?2",
        [first, last],
    )?;
    Ok(done)
}

fn insert_row(tx: &Transaction, series: i64, time_ns: i64, fields: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO readings(series, time_ns, fields, event) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        series,
        time_ns,
        fields,
        super::Class::Routine.column()
    ])?;
    Ok(tx.last_insert_rowid())
}

/// One dead letter for the lines a damaged segment lost, so an operator sees it happened.
fn note_damage(tx: &Transaction, segment: i64, lines: u64, damage: &str) -> rusqlite::Result<()> {
    log::error!("queue: a stored segment is damaged ({damage}); {lines} reading(s) lost");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    tx.execute(
        "INSERT INTO dead_letters(line, reason, message, at_ns, at_trusted) VALUES (?1, 'corrupt', ?2, ?3, 0)",
        params![
            // Not a line of line protocol, so a retry of dead letters leaves it where it is.
            format!("# {lines} reading(s) of the segment starting at piece {segment}: lost"),
            damage,
            now
        ],
    )?;
    Ok(())
}

fn series_id(
    tx: &Transaction,
    known: &mut HashMap<String, i64>,
    key: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = known.get(key) {
        return Ok(*id);
    }
    tx.execute("INSERT OR IGNORE INTO series(key) VALUES (?1)", [key])?;
    let id: i64 = tx.query_row("SELECT id FROM series WHERE key = ?1", [key], |r| r.get(0))?;
    known.insert(key.to_string(), id);
    Ok(id)
}
