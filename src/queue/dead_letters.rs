//! Dead letters: lines the server refused (or whose time could not be known), kept with the
//! reason and the server's message until an operator retries or purges them. They count
//! against the queue's byte budget like everything else in the file.

use super::{counter, Queue, QueueError};
use rusqlite::params;

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub line: String,
    pub reason: String,
    pub message: String,
    /// When it was recorded; only a lower bound when `at_trusted` is false.
    pub at_ns: i64,
    /// The wall clock was trusted when the letter was recorded.
    pub at_trusted: bool,
}

/// When something was recorded, as far as the device could tell: before the clock is
/// trusted the time is a lower bound (the latest time known to be past), never 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedAt {
    pub ns: i64,
    pub trusted: bool,
}

impl RecordedAt {
    pub fn trusted(ns: i64) -> RecordedAt {
        RecordedAt { ns, trusted: true }
    }

    /// Now: the wall clock when the time keeper trusts it; before that, the latest time known
    /// to be past, marked as such.
    pub fn now(time: &crate::clock::TimeKeeper) -> RecordedAt {
        let stamp = time.stamp();
        if stamp.trusted {
            RecordedAt::trusted(stamp.wall_ns)
        } else {
            RecordedAt {
                ns: time.not_before_ns(),
                trusted: false,
            }
        }
    }
}

/// Which dead letters `retry` moves back into the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    All,
    One(i64),
}

impl Queue {
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        self.select_letters(None, limit)
    }

    /// The oldest `limit` dead letters, or just the one with `id`.
    fn select_letters(&self, id: Option<i64>, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, line, reason, message, at_ns, at_trusted FROM dead_letters
                 WHERE ?1 IS NULL OR id = ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![id, limit as i64], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    line: r.get(1)?,
                    reason: r.get(2)?,
                    message: r.get(3)?,
                    at_ns: r.get(4)?,
                    at_trusted: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Put dead letters back in the queue (after the operator fixed the schema conflict, say).
    /// Returns how many were moved.
    pub fn retry_dead_letters(&mut self, which: Selection) -> Result<usize, QueueError> {
        let id = match which {
            Selection::All => None,
            Selection::One(id) => Some(id),
        };
        let letters = self.select_letters(id, usize::MAX >> 1)?;
        let mut parsed = Vec::with_capacity(letters.len());
        for letter in &letters {
            if let Some((key, fields, time)) = split_line(&letter.line) {
                parsed.push((letter.id, self.series_id(key)?, fields.to_string(), time));
            }
        }
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO readings(series, time_ns, fields, event) VALUES (?1, ?2, ?3, 0)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
            for (id, series, fields, time) in &parsed {
                insert.execute(params![series, time, fields])?;
                delete.execute([id])?;
            }
            Ok((parsed.len(), vec![(counter::QUEUED, parsed.len() as i64)]))
        })
    }

    /// Delete dead letters recorded before `before_ns`. Returns how many.
    pub fn purge_dead_letters(&mut self, before_ns: i64) -> Result<usize, QueueError> {
        self.write(|tx| {
            Ok((
                tx.execute("DELETE FROM dead_letters WHERE at_ns < ?1", [before_ns])?,
                vec![],
            ))
        })
    }
}

/// Split a line we wrote into series key, field set and timestamp. The key ends at the first
/// unescaped space; the timestamp is after the last space.
pub fn split_line(line: &str) -> Option<(&str, &str, i64)> {
    let bytes = line.as_bytes();
    let mut key_end = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b' ' => {
                key_end = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let key_end = key_end?;
    let (rest, time) = line[key_end + 1..].rsplit_once(' ')?;
    Some((&line[..key_end], rest, time.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Class, NewReading};

    #[test]
    fn lines_split_at_the_first_unescaped_space_and_the_last_space() {
        assert_eq!(
            split_line(r#"m\ x,t=a\ b v="s p" 12"#),
            Some((r"m\ x,t=a\ b", r#"v="s p""#, 12))
        );
        assert_eq!(split_line("m v=1"), None);
    }

    #[test]
    fn retried_dead_letters_return_to_the_queue_and_purge_removes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
        let s = q.series_id("m,a=b").unwrap();
        q.push(
            &[NewReading {
                series: s,
                time_ns: 5,
                fields: "v=1".into(),
                class: Class::Routine,
            }],
            &[],
            &[],
        )
        .unwrap();
        let b = q.next_batch(10, 1000).unwrap().unwrap();
        q.reject(
            &[(b.ids()[0], "m,a=b v=1 5".into())],
            "conflict",
            &[],
            RecordedAt::trusted(100),
        )
        .unwrap();
        assert_eq!(q.dead_letters(10).unwrap()[0].message, "conflict");
        assert_eq!(q.retry_dead_letters(Selection::All).unwrap(), 1);
        assert_eq!(
            q.next_batch(10, 1000).unwrap().unwrap().body(),
            b"m,a=b v=1 5"
        );
        assert_eq!(q.stats().unwrap().depth, 1);
        let b = q.next_batch(10, 1000).unwrap().unwrap();
        q.reject(
            &[(b.ids()[0], "m,a=b v=1 5".into())],
            "again",
            &[],
            RecordedAt::trusted(100),
        )
        .unwrap();
        assert_eq!(q.purge_dead_letters(50).unwrap(), 0);
        assert_eq!(q.purge_dead_letters(101).unwrap(), 1);
        assert!(q.dead_letters(10).unwrap().is_empty());
    }
}
