//! Acknowledgements: what a server's answer removes from the queue. Acked rows are deleted and
//! counted as uploaded; rejected lines move to the dead letters, in the same transaction.

use super::{counter, delete_each, set_meta, Queue, QueueError, RecordedAt};
use rusqlite::params;

/// A run of consecutive ids one batch read: rows of `readings`, or pieces of whole segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Rows(i64, i64),
    Pieces(i64, i64),
}

impl Run {
    /// The last id of the run, in its own table.
    pub fn last(&self) -> i64 {
        match *self {
            Run::Rows(_, last) | Run::Pieces(_, last) => last,
        }
    }
}

impl Queue {
    /// The server acknowledged exactly these readings: remove them, count them as uploaded.
    pub fn ack(&mut self, ids: &[i64], note: &str) -> Result<usize, QueueError> {
        self.write(|tx| {
            delete_each(tx, ids)?;
            set_meta(tx, "last_upload", note)?;
            let n = ids.len() as i64;
            Ok((
                ids.len(),
                vec![(counter::UPLOADED, n), (counter::QUEUED, -n)],
            ))
        })
    }

    /// The server acknowledged runs of consecutive queued rows or pieces, each as one batch
    /// read them (nothing else can sit between those ids: new rows and pieces always get
    /// higher ids, and a piece run is whole segments). One range delete per run replaces
    /// thousands of seeks, and one transaction for several runs saves an fsync per batch.
    /// Readings retention removed meanwhile were counted there, so only what is deleted here
    /// counts as uploaded.
    pub fn ack_runs(&mut self, runs: &[Run], note: &str) -> Result<usize, QueueError> {
        self.write(|tx| {
            let mut delete_rows =
                tx.prepare_cached("DELETE FROM readings WHERE id BETWEEN ?1 AND ?2")?;
            let mut lines_of_pieces = tx.prepare_cached(
                "SELECT coalesce(sum(lines), 0) FROM pieces WHERE id BETWEEN ?1 AND ?2",
            )?;
            let mut delete_pieces =
                tx.prepare_cached("DELETE FROM pieces WHERE id BETWEEN ?1 AND ?2")?;
            let mut n = 0;
            for run in runs {
                match *run {
                    Run::Rows(first, last) => n += delete_rows.execute([first, last])?,
                    Run::Pieces(first, last) => {
                        let lines: i64 = lines_of_pieces.query_row([first, last], |r| r.get(0))?;
                        delete_pieces.execute([first, last])?;
                        n += lines as usize;
                    }
                }
            }
            set_meta(tx, "last_upload", note)?;
            Ok((
                n,
                vec![
                    (counter::UPLOADED, n as i64),
                    (counter::QUEUED, -(n as i64)),
                ],
            ))
        })
    }

    /// Move rejected lines to the dead-letter table with the server's message, and ack the rest
    /// of a batch, all in one transaction.
    pub fn reject(
        &mut self,
        rejected: &[(i64, String)],
        message: &str,
        acked: &[i64],
        at: RecordedAt,
    ) -> Result<(), QueueError> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO dead_letters(line, reason, message, at_ns, at_trusted)
                 VALUES (?1, 'rejected', ?2, ?3, ?4)",
            )?;
            for (_, line) in rejected {
                insert.execute(params![line, message, at.ns, at.trusted])?;
            }
            let rejected_ids: Vec<i64> = rejected.iter().map(|(id, _)| *id).collect();
            delete_each(tx, &rejected_ids)?;
            delete_each(tx, acked)?;
            let counters = vec![
                (counter::REJECTED, rejected.len() as i64),
                (counter::UPLOADED, acked.len() as i64),
                (counter::QUEUED, -((rejected.len() + acked.len()) as i64)),
            ];
            Ok(((), counters))
        })
    }
}
