//! Salvage: when a corrupt queue file is set aside, every row SQLite can still read is copied
//! into the fresh queue first, so a few garbled pages cost the readings on those pages, not
//! the whole file.
//!
//! Rowid tables are read in id order; when a read fails, the scan probes further ids
//! (doubling the step, then bisecting back) for the first id a seek can reach again, and
//! goes on from there. Ids are kept, so the uploader's acknowledgements still name the same
//! rows and the order of readings is the same.

use super::{counter, Queue, QueueError};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::path::Path;

/// Rows copied into one transaction of the fresh queue.
const CHUNK: usize = 10_000;

/// What was recovered from a corrupt file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Salvaged {
    pub readings: i64,
    pub held: i64,
    pub dead_letters: i64,
    /// Readings the old file counted as waiting that could not be read (when it could say).
    pub lost: i64,
}

/// A rowid table and the columns copied from it (the first is the row id).
struct Table {
    name: &'static str,
    columns: &'static str,
}

const ROWID_TABLES: [Table; 5] = [
    Table {
        name: "series",
        columns: "id, key",
    },
    Table {
        name: "readings",
        columns: "id, series, time_ns, fields, event",
    },
    // Pieces keep their ids and segment marks; a segment that lost or garbled a piece is
    // taken apart after the copy, keeping what decodes before the damage.
    Table {
        name: "pieces",
        columns: "id, first, lines, raw_len, crc, oldest_ns, newest_ns, data",
    },
    Table {
        name: "held",
        columns: "id, series, boot, mono_ns, wall_ns, fields, event",
    },
    Table {
        name: "dead_letters",
        columns: "id, line, reason, message, at_ns, at_trusted",
    },
];

impl Queue {
    /// Copy every readable row of the corrupt file at `aside` into this fresh queue. Rows
    /// that cannot be read are skipped; readings whose series was lost are dropped (they
    /// could not be written as lines). Gauges are recounted; counters carry over.
    pub(super) fn salvage_from(&mut self, aside: &Path) -> Result<Salvaged, QueueError> {
        let source = match Connection::open(aside) {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("cannot open {} to salvage it: {e}", aside.display());
                return Ok(Salvaged::default());
            }
        };
        for table in &ROWID_TABLES {
            let mut scan = Scan::new(&source, table);
            loop {
                let rows = scan.next_chunk(CHUNK);
                if rows.is_empty() {
                    break;
                }
                self.insert_rows(table, &rows)?;
            }
        }
        // The view adds the readings pending in the header; without it, the totals plus what
        // the header still says.
        let mut old_counters = read_pairs(&source, "SELECT name, value FROM counters");
        if old_counters.is_empty() {
            old_counters = read_pairs(
                &source,
                "SELECT name, value + CASE WHEN name IN ('sampled', 'queued')
                     THEN coalesce((SELECT user_version FROM pragma_user_version), 0) ELSE 0 END
                 FROM counter_totals",
            );
        }
        let old_meta = read_pairs(&source, "SELECT key, value FROM meta");
        let salvaged = self.finish_salvage(old_counters, old_meta)?;
        // Pieces were copied as stored: a segment garbled or missing a piece keeps what
        // decodes before the damage.
        let lost_in_segments = self.heal_segments()?;
        Ok(Salvaged {
            readings: salvaged.readings - lost_in_segments,
            lost: salvaged.lost + lost_in_segments,
            ..salvaged
        })
    }

    fn insert_rows(&mut self, table: &Table, rows: &[Vec<Value>]) -> Result<(), QueueError> {
        let marks = vec!["?"; table.columns.split(',').count()].join(", ");
        let sql = format!(
            "INSERT OR IGNORE INTO {}({}) VALUES ({marks})",
            table.name, table.columns
        );
        self.write_unguarded(|tx| {
            let mut insert = tx.prepare(&sql)?;
            for row in rows {
                insert.execute(rusqlite::params_from_iter(row))?;
            }
            Ok(((), Vec::new()))
        })
    }

    /// Drop orphans, carry counters and facts over, recount the gauges.
    fn finish_salvage(
        &mut self,
        old_counters: Vec<(String, Value)>,
        old_meta: Vec<(String, Value)>,
    ) -> Result<Salvaged, QueueError> {
        self.write_unguarded(|tx| {
            for table in ["readings", "held"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE series NOT IN (SELECT id FROM series)"),
                    [],
                )?;
            }
            let count = |table: &str| -> rusqlite::Result<i64> {
                tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            };
            let lines_in_pieces: i64 =
                tx.query_row("SELECT coalesce(sum(lines), 0) FROM pieces", [], |r| {
                    r.get(0)
                })?;
            let salvaged = Salvaged {
                readings: count("readings")? + lines_in_pieces,
                held: count("held")?,
                dead_letters: count("dead_letters")?,
                lost: 0,
            };
            let mut old_queued = None;
            for (name, value) in &old_counters {
                let Value::Integer(value) = value else {
                    continue;
                };
                if name == counter::QUEUED {
                    old_queued = Some(*value);
                } else if name != counter::HELD {
                    super::totals::bump(tx, &[(name.as_str(), *value)])?;
                }
            }
            for (key, value) in &old_meta {
                if let Value::Text(value) = value {
                    super::set_meta(tx, key, value)?;
                }
            }
            let lost = old_queued.map_or(0, |q| (q - salvaged.readings).max(0));
            super::totals::fold(tx)?;
            tx.execute(
                "INSERT INTO counter_totals(name, value) VALUES (?1, ?2), (?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                rusqlite::params![
                    counter::QUEUED,
                    salvaged.readings,
                    counter::HELD,
                    salvaged.held
                ],
            )?;
            let counters = vec![
                (counter::SALVAGED, salvaged.readings + salvaged.held),
                (counter::LOST_CORRUPT, lost),
            ];
            Ok((Salvaged { lost, ..salvaged }, counters))
        })
    }
}

/// Name/value rows of a small keyed table, as far as they can be read.
fn read_pairs(source: &Connection, sql: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Ok(mut stmt) = source.prepare(sql) else {
        return out;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return out;
    };
    while let Ok(Some(row)) = rows.next() {
        if let (Ok(name), Ok(value)) = (row.get::<_, String>(0), row.get::<_, Value>(1)) {
            out.push((name, value));
        }
    }
    out
}

/// Reads one rowid table of a damaged file in id order, stepping over what cannot be read.
struct Scan<'a> {
    source: &'a Connection,
    select: String,
    width: usize,
    /// Rows with ids below this one were read or given up on.
    from: i64,
    done: bool,
}

/// What one attempt to read on from an id gave.
enum Read {
    /// Rows up to the chunk's size; the table goes on.
    More,
    /// The end of the table.
    End,
    /// A read failed after the rows gathered so far.
    Failed,
}

impl<'a> Scan<'a> {
    fn new(source: &'a Connection, table: &Table) -> Scan<'a> {
        Scan {
            source,
            select: format!(
                "SELECT {} FROM {} WHERE id >= ?1 ORDER BY id",
                table.columns, table.name
            ),
            width: table.columns.split(',').count(),
            from: i64::MIN,
            done: false,
        }
    }

    /// Up to `max` readable rows after the last one returned; empty at the end.
    fn next_chunk(&mut self, max: usize) -> Vec<Vec<Value>> {
        let mut rows = Vec::new();
        while !self.done && rows.len() < max {
            match self.read_from(&mut rows, max) {
                Read::More => {}
                Read::End => self.done = true,
                Read::Failed => self.skip_damage(),
            }
        }
        rows
    }

    fn read_from(&mut self, rows: &mut Vec<Vec<Value>>, max: usize) -> Read {
        let Ok(mut stmt) = self.source.prepare(&self.select) else {
            return Read::End; // no such table (or its schema is unreadable)
        };
        let Ok(mut cursor) = stmt.query([self.from]) else {
            return Read::Failed;
        };
        while rows.len() < max {
            match cursor.next() {
                Ok(Some(row)) => {
                    let values: rusqlite::Result<Vec<Value>> =
                        (0..self.width).map(|i| row.get(i)).collect();
                    let (Ok(values), Ok(id)) = (values, row.get::<_, i64>(0)) else {
                        return Read::Failed;
                    };
                    self.from = id.saturating_add(1);
                    rows.push(values);
                }
                Ok(None) => return Read::End,
                Err(_) => return Read::Failed,
            }
        }
        Read::More
    }

    /// Reading on from `from` fails: find the smallest id from which it works again. The
    /// arithmetic is wider than an id, so probes from the very first id (i64::MIN, when the
    /// table's first page is the damaged one) still reach the end of the id range.
    fn skip_damage(&mut self) {
        let bad = i128::from(self.from);
        let end = i128::from(i64::MAX);
        let mut step: i128 = 1;
        let good = loop {
            let probe = (bad + step).min(end);
            if self.readable_from(probe as i64) {
                break probe;
            }
            if probe == end {
                self.done = true;
                return;
            }
            step *= 2;
        };
        // Bisect between the last failing probe and `good` for the first working start.
        let (mut low, mut high) = (if step == 1 { bad } else { bad + step / 2 }, good);
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if self.readable_from(mid as i64) {
                high = mid;
            } else {
                low = mid;
            }
        }
        self.from = high as i64;
    }

    /// Whether the first row from `id` on (or the end of the table) can be read.
    fn readable_from(&self, id: i64) -> bool {
        let Ok(mut stmt) = self.source.prepare(&format!("{} LIMIT 1", self.select)) else {
            return false;
        };
        let Ok(mut cursor) = stmt.query([id]) else {
            return false;
        };
        match cursor.next() {
            Ok(Some(row)) => (0..self.width).all(|i| row.get::<_, Value>(i).is_ok()),
            Ok(None) => true,
            Err(_) => false,
        }
    }
}
