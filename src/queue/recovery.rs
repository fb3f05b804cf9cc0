//! A queue that turns corrupt while the agent runs: the connection that meets SQLITE_CORRUPT
//! or SQLITE_NOTADB moves the file aside, salvages it into a fresh queue and carries on there;
//! the agent's other connections notice that the path names another file and follow. What the
//! recorder holds in memory is untouched: its commit failed, so it commits again, to the fresh
//! file.
//!
//! Two rules make this safe while other threads still have the old file open:
//! - Writes and the move aside exclude each other (`REPLACING`): a write checks that its file
//!   is still the queue's and commits before the move can happen, so nothing is written into
//!   a file that was already set aside.
//! - Old connections are never closed. SQLite's last connection to a WAL database deletes its
//!   `-wal` and `-shm` files *by name*, and after a move those names belong to the fresh
//!   queue; keeping the old connections open (a few per recovery, for the process's life) means
//!   none of them is ever the last.

use super::{Queue, QueueError};
use rusqlite::Connection;
use std::sync::{Mutex, RwLock, RwLockReadGuard};

/// Held for reading by every write, for writing while a file is moved aside and salvaged.
static REPLACING: RwLock<()> = RwLock::new(());
/// Connections to files that were moved aside, kept open on purpose (see the module doc).
static KEPT_OPEN: Mutex<Vec<Connection>> = Mutex::new(Vec::new());

impl QueueError {
    /// SQLite found the file damaged (SQLITE_CORRUPT) or not a database (SQLITE_NOTADB).
    pub fn is_corruption(&self) -> bool {
        matches!(self, QueueError::Sqlite { source, .. } if super::is_corruption(source))
    }
}

/// The identity of a file: device and inode.
pub(super) fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Queue {
    /// Whether the queue's path now names another file than this connection's (it was moved
    /// aside, by this process or another).
    pub fn replaced(&self) -> bool {
        self.file.is_some() && file_id(&self.path) != self.file
    }

    /// Open the file the queue's path names now, keeping this connection's settings and series.
    pub fn reconnect(&mut self) -> Result<(), QueueError> {
        let fresh = Self::connect(&self.path)?;
        self.take_over(fresh)
    }

    /// After `cause` (a corruption error) on this connection: move the file aside, salvage it
    /// into a fresh queue and continue there; if another connection did so already, follow it.
    pub fn recover(&mut self, cause: &QueueError) -> Result<(), QueueError> {
        let _only_us = REPLACING.write().unwrap_or_else(|e| e.into_inner());
        if self.replaced() {
            return self.reconnect();
        }
        let fresh = Self::start_over(&self.path, cause)?;
        self.take_over(fresh)
    }

    /// Become `fresh`, keeping the old connection open and this one's series, budget, segment
    /// bounds and durability setting; series ids stay the same in the fresh file.
    fn take_over(&mut self, mut fresh: Queue) -> Result<(), QueueError> {
        if let Some(max_bytes) = self.budget {
            fresh.set_budget(max_bytes);
        }
        if self.lazy {
            fresh.commit_lazily();
        }
        fresh.series_keys = std::mem::take(&mut self.series_keys);
        fresh.segment_bounds = self.segment_bounds;
        let old = std::mem::replace(self, fresh);
        KEPT_OPEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(old.into_connection());
        let keys: Vec<(i64, String)> = self
            .series_keys
            .iter()
            .map(|(id, key)| (*id, key.clone()))
            .collect();
        self.write_unguarded(|tx| {
            let mut insert = tx.prepare("INSERT OR IGNORE INTO series(id, key) VALUES (?1, ?2)")?;
            for (id, key) in &keys {
                insert.execute(rusqlite::params![id, key])?;
            }
            Ok(((), Vec::new()))
        })
    }

    /// Every write runs under this guard, after following a move made meanwhile.
    pub(super) fn guard_write(&mut self) -> Result<RwLockReadGuard<'static, ()>, QueueError> {
        let guard = REPLACING.read().unwrap_or_else(|e| e.into_inner());
        if self.replaced() {
            self.reconnect()?;
        }
        Ok(guard)
    }
}
