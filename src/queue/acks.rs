//! Acknowledgements: what a server's answer removes from the queue. Acked rows are deleted and
//! counted as uploaded; rejected lines move to the dead letters, in the same transaction.

use super::{counter, delete_each, set_meta, Queue, QueueError, RecordedAt};
use rusqlite::params;

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

    /// The server acknowledged runs of consecutive queued rows, each `(first, last)` as one
    /// batch read them (nothing else can sit between those ids: new rows always get higher
    /// ids). One range delete per run replaces thousands of seeks, and one transaction for
    /// several runs saves an fsync per batch. Rows retention removed meanwhile were counted
    /// there, so only what is deleted here counts as uploaded.
    pub fn ack_runs(&mut self, runs: &[(i64, i64)], note: &str) -> Result<usize, QueueError> {
        self.write(|tx| {
            let mut delete =
                tx.prepare_cached("DELETE FROM readings WHERE id BETWEEN ?1 AND ?2")?;
            let mut n = 0;
            for (first, last) in runs {
                n += delete.execute([first, last])?;
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
