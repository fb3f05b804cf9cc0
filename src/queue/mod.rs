//! The store-and-forward queue: a SQLite file in WAL mode on the SD card.
//!
//! Rules it keeps: a reading leaves `readings` only when the server acknowledged it, or when a
//! stated policy removes it (then it is counted by reason); writes are grouped into one
//! transaction per commit window; every hot-path statement is an index seek, so pushing and
//! taking a batch cost the same with ten rows queued as with ten million. Each thread that
//! touches the queue opens its own `Queue` (its own connection).

mod acks;
mod batch;
mod dead_letters;
mod existing;
mod files;
pub mod gzip_member;
mod held;
mod meta;
mod pieces;
mod recovery;
mod retention;
mod retention_pieces;
mod salvage;
mod schema;
pub mod segment;
mod stats;
mod take;
mod totals;
mod unpack;
mod upkeep;

pub use acks::Run;
pub use batch::{Batch, LineSink};
pub use dead_letters::{split_line, DeadLetter, RecordedAt, Selection};
pub use existing::Access;
pub use files::{free_bytes, lock_path, take_writer_lock, WriterLock, DISK_NEARLY_FULL};
pub use held::Settled;
use meta::set_meta;
pub use pieces::Segments;
pub use retention::{Enforced, Policy};
pub use salvage::Salvaged;
pub use stats::{counter, QueueStats};
pub use take::BacklogMark;
pub use unpack::{stored_count, stored_lines};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the queue could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue's directory is missing, and its parent too: a configuration mistake.
    #[error(
        "queue directory {path} does not exist (nor does its parent); create it or set queue.path"
    )]
    NoDirectory { path: PathBuf },
    /// The queue's directory (or a corrupt file in it) could not be created, written or moved.
    #[error("queue directory {path}: {action}")]
    Directory {
        path: PathBuf,
        /// What was being done: "cannot create it", "is not writable", ...
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The disk (or the file system's quota) is full; the caller keeps readings in memory.
    #[error("queue {path}: disk full")]
    DiskFull { path: PathBuf },
    /// A stored segment does not decode: the file is damaged.
    #[error("queue {path}: a stored segment does not decode")]
    Undecodable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Any other SQLite failure, with the file it happened on.
    #[error("queue {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// What a stored reading is, which decides what a full queue does with it: routine samples are
/// thinned into aggregates first, aggregates (thinned or made at the edge) are never folded
/// again, events go last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Routine,
    Event,
    Aggregate,
}

impl Class {
    /// The value of the `event` column.
    pub const fn column(self) -> i64 {
        match self {
            Class::Routine => 0,
            Class::Event => 1,
            Class::Aggregate => 2,
        }
    }
}

/// A reading with a trusted timestamp, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub series: i64,
    pub time_ns: i64,
    pub fields: String,
    pub class: Class,
}

/// A reading taken while the wall clock was not trusted: stored with its boot and monotonic time.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldReading {
    pub series: i64,
    pub boot: String,
    pub mono_ns: i64,
    pub wall_ns: i64,
    pub fields: String,
    pub class: Class,
}

/// Everything one commit window writes, in one transaction.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    pub trusted: &'a [NewReading],
    pub held: &'a [HeldReading],
    pub counters: &'a [(&'a str, i64)],
    pub meta: &'a [(&'a str, String)],
}

pub struct Queue {
    conn: Connection,
    path: PathBuf,
    series_keys: HashMap<i64, String>,
    /// `max_bytes` the WAL is sized for, passed on to `reopen`ed connections.
    budget: Option<u64>,
    /// Rows deleted on this connection since its last WAL checkpoint (see `upkeep`).
    deleted_since_checkpoint: usize,
    /// Device and inode of the file this connection opened, to notice it being moved aside.
    file: Option<(u64, u64)>,
    /// Commits do not wait for the disk (`commit_lazily`), kept across a reconnect.
    lazy: bool,
    /// The segment this connection's commits append routine readings to (the recorder's).
    open_segment: Option<segment::OpenSegment>,
    /// Where the recorder's segments close (see [`Queue::set_segment_bounds`]).
    segment_bounds: segment::SegmentBounds,
}

impl Queue {
    /// Open (or create) the queue at `path`. A file SQLite cannot read as a database is moved
    /// aside as `<path>.corrupt-<unix time>`, a fresh queue is started and every row still
    /// readable in the old file is salvaged into it, so a damaged SD card never turns into a
    /// crash loop, nor costs more than its damaged pages.
    pub fn open(path: &Path) -> Result<Queue, QueueError> {
        files::ensure_directory(path)?;
        files::create_private(path)?;
        match Self::open_checked(path) {
            Ok(queue) => Ok(queue),
            Err(QueueError::Sqlite { source, .. }) if is_corruption(&source) => {
                Self::start_over(path, &source)
            }
            Err(other) => Err(other),
        }
    }

    /// Move the corrupt file at `path` aside, open a fresh queue there and salvage into it.
    fn start_over(path: &Path, cause: &dyn std::fmt::Display) -> Result<Queue, QueueError> {
        let aside = files::move_aside(path)?;
        files::create_private(path)?;
        let mut queue = Self::open_checked(path)?;
        let salvaged = queue.salvage_from(&aside)?;
        queue.write_unguarded(|_| Ok(((), vec![(counter::CORRUPT_RECOVERED, 1)])))?;
        log::error!(
            "queue {} is corrupt ({cause}); salvaged {} waiting and {} held reading(s) and {} dead letter(s) into a fresh queue ({} waiting reading(s) unreadable); the old file is {}",
            path.display(),
            salvaged.readings,
            salvaged.held,
            salvaged.dead_letters,
            salvaged.lost,
            aside.display()
        );
        Ok(queue)
    }

    fn open_checked(path: &Path) -> Result<Queue, QueueError> {
        let queue = Self::connect(path)?;
        let err = |source| QueueError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let check: String = queue
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            )));
        }
        schema::migrate(&queue.conn).map_err(err)?;
        Ok(queue)
    }

    /// A connection with the queue's settings, without checks.
    fn connect(path: &Path) -> Result<Queue, QueueError> {
        let err = |source| QueueError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        // Small pages (for a new file; an existing one keeps its own): every commit appends a
        // frame to the WAL for each page it changes (the header, the pieces' interior page,
        // the new piece's leaf and overflow page), and the disk sees each 4 KiB it touches.
        // 512-byte frames cover a commit's ~1 KiB piece and its bookkeeping in fewer of those
        // than 1 KiB ones, and hold a piece as densely. A 128 KiB page cache per connection
        // keeps RSS small. WAL lets the uploader read while the recorder writes; FULL makes
        // each grouped commit durable, so the loss window on power cut is the commit window.
        conn.execute_batch(
            "PRAGMA page_size = 512;
             PRAGMA cache_size = -128;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA journal_size_limit = 4194304;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(err)?;
        Ok(Queue::on(conn, path, recovery::file_id(path)))
    }

    /// A queue on an open connection, with nothing cached yet. `file` identifies the file the
    /// connection opened, so a writer notices when recovery has moved it aside.
    pub(super) fn on(conn: Connection, path: &Path, file: Option<(u64, u64)>) -> Queue {
        Queue {
            conn,
            path: path.to_path_buf(),
            series_keys: HashMap::new(),
            budget: None,
            deleted_since_checkpoint: 0,
            file,
            lazy: false,
            open_segment: None,
            segment_bounds: segment::SegmentBounds::default(),
        }
    }

    /// The connection, without the queue (a connection to a file set aside is kept open).
    fn into_connection(self) -> Connection {
        self.conn
    }

    /// Commit without waiting for the disk (WAL `synchronous = NORMAL`). For the uploader's
    /// connection: its writes are deletes of acknowledged rows, and losing one to a power cut
    /// only means those rows are sent again, with the same timestamps. Never for the recorder.
    pub fn commit_lazily(&mut self) {
        self.lazy = true;
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous = NORMAL;") {
            log::warn!(
                "queue {}: cannot relax durability of deletes: {e}",
                self.path.display()
            );
        }
    }

    /// Another connection to this queue, for another thread (the uploader): the file was
    /// checked when this one opened it, so it is not read through again.
    pub fn reopen(&self) -> Result<Queue, QueueError> {
        let mut queue = Self::connect(&self.path)?;
        if let Some(max_bytes) = self.budget {
            queue.set_budget(max_bytes);
        }
        Ok(queue)
    }

    /// A connection for scanning batches on another thread (the uploader's packer). A scan
    /// reads each page once, so it gets a tiny page cache: less RSS on a small Pi.
    pub fn reader(&self) -> Result<Queue, QueueError> {
        let queue = Self::connect(&self.path)?;
        queue
            .conn
            .execute_batch("PRAGMA cache_size = -16;")
            .map_err(|e| queue.err(e))?;
        Ok(queue)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> QueueError {
        let full = matches!(&source, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull);
        if full {
            QueueError::DiskFull {
                path: self.path.clone(),
            }
        } else {
            QueueError::Sqlite {
                path: self.path.clone(),
                source,
            }
        }
    }

    /// A segment read from this queue that does not decode.
    pub(crate) fn undecodable(&self, source: std::io::Error) -> QueueError {
        QueueError::Undecodable {
            path: self.path.clone(),
            source,
        }
    }

    /// The id of a series key, created on first use.
    pub fn series_id(&mut self, key: &str) -> Result<i64, QueueError> {
        let found: Option<i64> = self
            .conn
            .query_row("SELECT id FROM series WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let id = match found {
            Some(id) => id,
            None => {
                self.conn
                    .execute("INSERT INTO series(key) VALUES (?1)", [key])
                    .map_err(|e| self.err(e))?;
                self.conn.last_insert_rowid()
            }
        };
        self.series_keys.insert(id, key.to_string());
        Ok(id)
    }

    /// Store readings and bump counters in one transaction: one grouped commit.
    pub fn push(
        &mut self,
        trusted: &[NewReading],
        held: &[HeldReading],
        counters: &[(&str, i64)],
    ) -> Result<(), QueueError> {
        self.commit(&Commit {
            trusted,
            held,
            counters,
            meta: &[],
        })
    }

    /// Write one commit window's worth of readings, counters and facts in one transaction.
    /// Routine readings become one compressed piece; events are kept as rows.
    pub fn commit(&mut self, commit: &Commit) -> Result<(), QueueError> {
        // Inside the guard: once the file was moved aside, the open segment (a deflate stream
        // whose first pieces are in the old file) is gone with it, and a fresh one starts.
        self.guarded(|queue| {
            let mut open = queue.open_segment.take();
            let mut keys = std::mem::take(&mut queue.series_keys);
            let bounds = queue.segment_bounds;
            let written = queue.write_unguarded(|tx| {
                Self::store_commit(tx, commit, (&mut open, bounds), &mut keys)
            });
            queue.series_keys = keys;
            // A failed commit leaves the stream ahead of what is stored: start a fresh segment.
            if written.is_ok() {
                queue.open_segment = open;
            }
            written
        })
    }

    /// Inside the commit's transaction: the routine readings as one piece, the rest as rows,
    /// the counters they move.
    fn store_commit<'c>(
        tx: &rusqlite::Transaction,
        commit: &Commit<'c>,
        (open, bounds): (&mut Option<segment::OpenSegment>, segment::SegmentBounds),
        keys: &mut HashMap<i64, String>,
    ) -> rusqlite::Result<((), Vec<(&'c str, i64)>)> {
        let (routine, rows): (Vec<&NewReading>, Vec<&NewReading>) = commit
            .trusted
            .iter()
            .partition(|r| r.class == Class::Routine);
        Self::store_routine(tx, open, bounds, keys, &routine)?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO readings(series, time_ns, fields, event) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for r in rows {
            insert.execute(params![r.series, r.time_ns, r.fields, r.class.column()])?;
        }
        let mut hold = tx.prepare_cached(
            "INSERT INTO held(series, boot, mono_ns, wall_ns, fields, event) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in commit.held {
            hold.execute(params![
                r.series,
                r.boot,
                r.mono_ns,
                r.wall_ns,
                r.fields,
                r.class.column()
            ])?;
        }
        for (key, value) in commit.meta {
            set_meta(tx, key, value)?;
        }
        let stored = totals::Stored {
            trusted: commit.trusted.len() as i64,
            held: commit.held.len() as i64,
        };
        totals::record(tx, stored, commit.counters)?;
        Ok(((), vec![]))
    }

    /// Add to counters outside any other write (sensor errors, recoveries).
    pub fn add_counters(&mut self, counters: &[(&str, i64)]) -> Result<(), QueueError> {
        self.write(|_| Ok(((), counters.to_vec())))
    }

    /// The connection, for the modules that own other parts of the schema (retention, dead
    /// letters, held readings).
    #[cfg(test)]
    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Every write goes through here: one IMMEDIATE transaction (so the recorder's and the
    /// uploader's connections queue for the write lock instead of failing to upgrade a read),
    /// the counters the work returns bumped inside it, and errors given the file's path. The
    /// file is never moved aside during a write; a corrupt file met here is moved aside and
    /// salvaged (see `recovery`), and the error returned so the caller tries again.
    pub(crate) fn write<'a, T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<(T, Vec<(&'a str, i64)>)>,
    ) -> Result<T, QueueError> {
        self.guarded(|queue| queue.write_unguarded(work))
    }

    /// Run `work` on this queue once it follows any move made meanwhile, with moves excluded
    /// until it returns; a corrupt file met there is set aside and salvaged. For work that
    /// must see the queue as it is after a move (the recorder's open segment belongs to one
    /// file).
    pub(crate) fn guarded<T>(
        &mut self,
        work: impl FnOnce(&mut Queue) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let guard = self.guard_write()?;
        let result = work(self);
        drop(guard);
        if let Err(e) = &result {
            if e.is_corruption() {
                if let Err(failed) = self.recover(e) {
                    log::error!("cannot set the corrupt queue aside: {failed}");
                }
            }
        }
        result
    }

    /// A write without the guard against moves: for the connection doing the move.
    pub(crate) fn write_unguarded<'a, T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<(T, Vec<(&'a str, i64)>)>,
    ) -> Result<T, QueueError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| QueueError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
        let result = work(&tx).and_then(|(value, counters)| {
            totals::bump(&tx, &counters)?;
            tx.commit()?;
            Ok(value)
        });
        result.map_err(|e| self.err(e))
    }
}

fn delete_each(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM readings WHERE id = ?1")?;
    for id in ids {
        delete.execute([id])?;
    }
    Ok(())
}

fn is_corruption(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
}

#[cfg(test)]
mod tests;
