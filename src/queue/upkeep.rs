//! The WAL's size: checkpointed at a size fit for the budget, and, while a long drain deletes,
//! every so many deleted rows at a moment the caller knows no read is open, so it starts over
//! instead of growing.

use super::{Queue, QueueError};

/// The WAL is copied into the database once it holds about this much: the pages a commit
/// rewrites every time (the header, the pieces' interior page) reach the database file once
/// per checkpoint, so rarer checkpoints write less.
const WAL_CHECKPOINT_BYTES: u64 = 1000 * 1024;

/// Deleted rows between WAL checkpoints while a backlog drains: about 2,000 WAL pages of
/// 512 bytes, so the WAL stays within its first 32 KiB of shared-memory index.
pub const CHECKPOINT_ROWS: usize = 16 * 1024;

impl Queue {
    /// Count `deleted` rows and checkpoint the WAL once `CHECKPOINT_ROWS` have gone. Call it
    /// where no read is open on any connection to this queue: otherwise a reader busy nearly
    /// all of a drain keeps the WAL from starting over, and it (and SQLite's shared-memory
    /// index of it, counted in RSS) grows without bound.
    pub fn checkpoint_after_deletes(&mut self, deleted: usize) {
        self.deleted_since_checkpoint += deleted;
        if self.deleted_since_checkpoint < CHECKPOINT_ROWS {
            return;
        }
        self.deleted_since_checkpoint = 0;
        if let Err(e) = self.checkpoint() {
            log::warn!("{e}");
        }
    }

    /// Copy what the WAL holds into the database file, without waiting for anyone. Done while
    /// no read is open on this queue, it lets the next write start the WAL over from its
    /// beginning; otherwise a reader that is always busy keeps it growing.
    pub fn checkpoint(&mut self) -> Result<(), QueueError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    /// Size the WAL to the budget: checkpoint at a quarter of `max_bytes` (at most about 1 MiB,
    /// SQLite's default of 1000 pages of 1 KiB) and truncate the WAL file back to that after
    /// checkpoints, so the queue's files stay near `max_bytes` in total.
    pub fn set_budget(&mut self, max_bytes: u64) {
        self.budget = Some(max_bytes);
        let quarter = (max_bytes / 4).clamp(64 * 1024, 4 << 20);
        let page_size: u64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap_or(1024);
        let pages = quarter.min(WAL_CHECKPOINT_BYTES) / page_size.max(512);
        let sql =
            format!("PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {quarter};");
        if let Err(e) = self.conn.execute_batch(&sql) {
            log::warn!("queue {}: cannot size the WAL: {e}", self.path.display());
        }
    }
}
