//! Housekeeping a long drain needs: the WAL is checkpointed every so many deleted rows, at a
//! moment the caller knows no read is open, so it starts over instead of growing.

use super::Queue;

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
}
