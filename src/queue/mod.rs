//! The store-and-forward queue: a SQLite file in WAL mode on the SD card.
//!
//! Rules it keeps: a reading leaves `readings` only when the server acknowledged it, or when a
//! stated policy removes it (then it is counted by reason); writes are grouped into one
//! transaction per commit window; every hot-path statement is an index seek, so pushing and
//! taking a batch cost the same with ten rows queued as with ten million. Each thread that
//! touches the queue opens its own `Queue` (its own connection).

mod batch;
mod dead_letters;
mod files;
mod held;
mod retention;
mod schema;
mod upkeep;

pub use batch::{Batch, LineSink};
pub use dead_letters::{split_line, DeadLetter, RecordedAt, Selection};
pub use held::Settled;
pub use retention::{Enforced, Policy};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
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
    /// Any other SQLite failure, with the file it happened on.
    #[error("queue {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// A reading with a trusted timestamp, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub series: i64,
    pub time_ns: i64,
    pub fields: String,
    pub event: bool,
}

/// A reading taken while the wall clock was not trusted: stored with its boot and monotonic time.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldReading {
    pub series: i64,
    pub boot: String,
    pub mono_ns: i64,
    pub wall_ns: i64,
    pub fields: String,
    pub event: bool,
}

/// Everything one commit window writes, in one transaction.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    pub trusted: &'a [NewReading],
    pub held: &'a [HeldReading],
    pub counters: &'a [(&'a str, i64)],
    pub meta: &'a [(&'a str, String)],
}

/// What `status` shows about the queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Readings waiting for upload.
    pub depth: i64,
    /// Sampling time of the oldest waiting reading.
    pub oldest_ns: Option<i64>,
    /// Readings held back until the clock is trusted.
    pub held: i64,
    pub oldest_held_wall_ns: Option<i64>,
    pub dead_letters: i64,
    /// Bytes the live pages of the file take (the file minus its free pages).
    pub bytes: u64,
}

/// Counter names, so every place that counts uses the same words.
pub mod counter {
    /// Readings accepted into the queue.
    pub const SAMPLED: &str = "sampled";
    /// Readings the server acknowledged.
    pub const UPLOADED: &str = "uploaded";
    /// Routine readings older than `max_age`, removed.
    pub const EXPIRED: &str = "dropped.expired";
    /// Routine readings folded into window aggregates when the queue was full.
    pub const THINNED: &str = "dropped.thinned";
    /// Readings removed because the queue was full even after thinning.
    pub const DROPPED_FULL: &str = "dropped.dropped_full";
    /// Lines the server rejected, moved to the dead-letter table.
    pub const REJECTED: &str = "dropped.rejected";
    /// Readings whose time could not be known, moved to the dead-letter table.
    pub const UNKNOWN_TIME: &str = "dropped.unknown_time";
    /// Aggregate readings created by thinning (they are uploaded like any other).
    pub const AGGREGATES: &str = "aggregates";
    /// Fields left out of a line because line protocol cannot carry them (NaN, infinity).
    pub const FIELDS_NONFINITE: &str = "fields_dropped.nonfinite";
    /// Times a corrupt queue file was moved aside and a fresh one started.
    pub const CORRUPT_RECOVERED: &str = "queue.corrupt_recovered";
    /// Gauge, not a counter: readings currently waiting (kept exact so status needs no COUNT).
    pub const QUEUED: &str = "queued";
    /// Gauge: readings currently held for an untrusted clock.
    pub const HELD: &str = "held";
    /// Prefix of per-sensor error counters: `sensor_error.<sensor id>.<reason>`.
    pub const SENSOR_ERROR_PREFIX: &str = "sensor_error.";
}

pub struct Queue {
    conn: Connection,
    path: PathBuf,
    series_keys: HashMap<i64, String>,
    /// `max_bytes` the WAL is sized for, passed on to `reopen`ed connections.
    budget: Option<u64>,
    /// Rows deleted on this connection since its last WAL checkpoint (see `upkeep`).
    deleted_since_checkpoint: usize,
}

impl Queue {
    /// Open (or create) the queue at `path`. A file SQLite cannot read as a database is moved
    /// aside as `<path>.corrupt-<unix time>` and a fresh queue is started, so a damaged SD card
    /// never turns into a crash loop.
    pub fn open(path: &Path) -> Result<Queue, QueueError> {
        files::ensure_directory(path)?;
        match Self::open_checked(path) {
            Ok(queue) => Ok(queue),
            Err(QueueError::Sqlite { source, .. }) if is_corruption(&source) => {
                let aside = files::move_aside(path)?;
                log::error!(
                    "queue {} is corrupt ({source}); moved it to {} and started a fresh queue",
                    path.display(),
                    aside.display()
                );
                let mut queue = Self::open_checked(path)?;
                queue.add_counters(&[(counter::CORRUPT_RECOVERED, 1)])?;
                Ok(queue)
            }
            Err(other) => Err(other),
        }
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
        queue.conn.execute_batch(schema::SCHEMA).map_err(err)?;
        schema::add_missing_columns(&queue.conn).map_err(err)?;
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
        // Small pages: a commit of a few dozen readings rewrites a few 1 KiB pages instead of
        // a few 4 KiB ones, which is most of the SD-card writes. A 128 KiB page cache per connection keeps RSS
        // small. WAL lets the uploader read while the recorder writes; FULL makes each grouped
        // commit durable, so the loss window on power cut is exactly the commit window.
        conn.execute_batch(
            "PRAGMA page_size = 1024;
             PRAGMA cache_size = -128;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA journal_size_limit = 4194304;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(err)?;
        Ok(Queue {
            conn,
            path: path.to_path_buf(),
            series_keys: HashMap::new(),
            budget: None,
            deleted_since_checkpoint: 0,
        })
    }

    /// Commit without waiting for the disk (WAL `synchronous = NORMAL`). For the uploader's
    /// connection: its writes are deletes of acknowledged rows, and losing one to a power cut
    /// only means those rows are sent again, with the same timestamps. Never for the recorder.
    pub fn commit_lazily(&mut self) {
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

    /// Copy what the WAL holds into the database file, without waiting for anyone. Done while
    /// no read is open on this queue, it lets the next write start the WAL over from its
    /// beginning; otherwise a reader that is always busy keeps it growing.
    pub fn checkpoint(&mut self) -> Result<(), QueueError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    /// Size the WAL to the budget: checkpoint at a quarter of `max_bytes` (at most the SQLite
    /// default of 1000 pages) and truncate the WAL file back to that after checkpoints, so the
    /// queue's files stay near `max_bytes` in total.
    pub fn set_budget(&mut self, max_bytes: u64) {
        self.budget = Some(max_bytes);
        let quarter = (max_bytes / 4).clamp(64 * 1024, 4 << 20);
        let pages = (quarter / 1024).min(1000);
        let sql =
            format!("PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {quarter};");
        if let Err(e) = self.conn.execute_batch(&sql) {
            log::warn!("queue {}: cannot size the WAL: {e}", self.path.display());
        }
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
    pub fn commit(&mut self, commit: &Commit) -> Result<(), QueueError> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO readings(series, time_ns, fields, event) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in commit.trusted {
                insert.execute(params![r.series, r.time_ns, r.fields, r.event])?;
            }
            let mut hold = tx.prepare_cached(
                "INSERT INTO held(series, boot, mono_ns, wall_ns, fields, event) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in commit.held {
                hold.execute(params![r.series, r.boot, r.mono_ns, r.wall_ns, r.fields, r.event])?;
            }
            for (key, value) in commit.meta {
                set_meta(tx, key, value)?;
            }
            let mut counters: Vec<(&str, i64)> = commit.counters.to_vec();
            counters.push((counter::SAMPLED, (commit.trusted.len() + commit.held.len()) as i64));
            counters.push((counter::QUEUED, commit.trusted.len() as i64));
            counters.push((counter::HELD, commit.held.len() as i64));
            Ok(((), counters))
        })
    }

    /// The oldest waiting readings as line protocol, at most `max_lines` lines and (unless a
    /// single line is larger) `max_bytes` bytes. `None` when nothing waits.
    pub fn next_batch(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, QueueError> {
        self.batch_where("", max_lines, max_bytes)
    }

    /// Like `next_batch`, but only readings with an id above `after`: the newest-first lane.
    pub fn next_batch_after(
        &mut self,
        after: i64,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, QueueError> {
        self.batch_where(&format!("WHERE id > {after}"), max_lines, max_bytes)
    }

    fn batch_where(
        &mut self,
        filter: &str,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, QueueError> {
        let batch = Batch::with_capacity(max_lines.min(1024), max_bytes.min(64 * 1024));
        let batch = self.render_where(filter, max_lines, max_bytes, batch)?;
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// The readings with ids above `after` (all when `None`), oldest first, rendered into `sink`
    /// up to `max_lines` lines and (unless a single line is larger) `max_bytes` bytes.
    pub fn render_after<S: LineSink>(
        &mut self,
        after: Option<i64>,
        max_lines: usize,
        max_bytes: usize,
        sink: S,
    ) -> Result<S, QueueError> {
        let filter = after
            .map(|id| format!("WHERE id > {id}"))
            .unwrap_or_default();
        self.render_where(&filter, max_lines, max_bytes, sink)
    }

    /// Exactly the rows `first..=last` that are still queued, as a plain batch (to bisect or
    /// dead-letter lines of a batch that was sent compressed).
    pub fn batch_between(&mut self, first: i64, last: i64) -> Result<Batch, QueueError> {
        let filter = format!("WHERE id BETWEEN {first} AND {last}");
        self.render_where(&filter, usize::MAX >> 1, usize::MAX, Batch::default())
    }

    fn render_where<S: LineSink>(
        &mut self,
        filter: &str,
        max_lines: usize,
        max_bytes: usize,
        mut sink: S,
    ) -> Result<S, QueueError> {
        let sql = format!(
            "SELECT id, series, time_ns, fields FROM readings {filter} ORDER BY id LIMIT ?1"
        );
        // Rows are rendered straight from SQLite's buffers; series keys come from the cache.
        let (conn, keys) = (&self.conn, &mut self.series_keys);
        let mut render = || -> rusqlite::Result<()> {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([max_lines.min(i64::MAX as usize) as i64])?;
            while let Some(row) = rows.next()? {
                let series: i64 = row.get(1)?;
                let key = match keys.entry(series) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(conn.query_row(
                        "SELECT key FROM series WHERE id = ?1",
                        [series],
                        |r| r.get(0),
                    )?),
                };
                let time_ns: i64 = row.get(2)?;
                let fields = row.get_ref(3)?.as_str()?;
                let len = crate::line_protocol::line_len(key, fields, time_ns);
                if sink.lines() > 0 && sink.plain_len() + 1 + len > max_bytes {
                    break;
                }
                sink.push(row.get(0)?, key, fields, time_ns);
            }
            Ok(())
        };
        let rendered = render();
        rendered.map_err(|e| self.err(e))?;
        Ok(sink)
    }

    /// Whether any reading waits with an id above `after` (one index seek).
    pub fn has_after(&self, after: i64) -> Result<bool, QueueError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM readings WHERE id > ?1)",
                [after],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The id of the newest waiting reading.
    pub fn last_id(&self) -> Result<Option<i64>, QueueError> {
        self.conn
            .query_row("SELECT max(id) FROM readings", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

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

    /// Add to counters outside any other write (sensor errors, recoveries).
    pub fn add_counters(&mut self, counters: &[(&str, i64)]) -> Result<(), QueueError> {
        self.write(|_| Ok(((), counters.to_vec())))
    }

    /// Every counter and gauge, by name.
    pub fn counters(&self) -> Result<BTreeMap<String, i64>, QueueError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM counters")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, QueueError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), QueueError> {
        set_meta(&self.conn, key, value).map_err(|e| self.err(e))
    }

    /// Depth, ages and size, all from counters, index ends and page counts: no table scans.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let c = self.counters()?;
        let one = |sql: &str| -> Result<Option<i64>, QueueError> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))
        };
        Ok(QueueStats {
            depth: c.get(counter::QUEUED).copied().unwrap_or(0),
            oldest_ns: one("SELECT time_ns FROM readings ORDER BY id LIMIT 1")?,
            held: c.get(counter::HELD).copied().unwrap_or(0),
            oldest_held_wall_ns: one("SELECT wall_ns FROM held ORDER BY id LIMIT 1")?,
            // Dead letters are few (an operator clears them), so counting them is cheap.
            dead_letters: one("SELECT count(*) FROM dead_letters")?.unwrap_or(0),
            bytes: self.live_bytes()?,
        })
    }

    /// Bytes the live pages of the file take (the file minus its free pages): three header
    /// reads, cheap enough to check after every commit.
    pub fn live_bytes(&self) -> Result<u64, QueueError> {
        let pragma = |name: &str| -> Result<i64, QueueError> {
            self.conn
                .pragma_query_value(None, name, |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let live = (pragma("page_count")? - pragma("freelist_count")?).max(0);
        Ok((live * pragma("page_size")?) as u64)
    }

    /// The connection, for the modules that own other parts of the schema (retention, dead
    /// letters, held readings).
    #[cfg(test)]
    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Every write goes through here: one IMMEDIATE transaction (so the recorder's and the
    /// uploader's connections queue for the write lock instead of failing to upgrade a read),
    /// the counters the work returns bumped inside it, and errors given the file's path.
    pub(crate) fn write<'a, T>(
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
            bump(&tx, &counters)?;
            tx.commit()?;
            Ok(value)
        });
        result.map_err(|e| self.err(e))
    }
}

/// Below this much free space the queue's next commits are likely to fail with SQLITE_FULL.
pub const DISK_NEARLY_FULL: u64 = 1 << 20;

/// Free bytes (for an unprivileged writer) on the file system holding `path`, so `status` can
/// say "disk full" even though the agent cannot write that down while it is full.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    crate::os::fs::available_bytes(dir).ok()
}

fn delete_each(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM readings WHERE id = ?1")?;
    for id in ids {
        delete.execute([id])?;
    }
    Ok(())
}

fn bump(conn: &Connection, counters: &[(&str, i64)]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO counters(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    )?;
    for (name, delta) in counters {
        if *delta != 0 {
            stmt.execute(params![name, delta])?;
        }
    }
    Ok(())
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
}

fn is_corruption(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
}

#[cfg(test)]
mod tests;
