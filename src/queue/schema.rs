//! The queue's tables. Readings store only a series id, the time and the field set: the
//! measurement and tags of a sensor are the same for every reading and live once in `series`.
//! That keeps rows small, which is most of what keeps SD-card writes low. Routine readings,
//! nearly all of them, are not rows at all but compressed `pieces`.

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE            -- escaped measurement and sorted tags
);
-- Readings kept one per row, for the rare cases: events, aggregates, readings released from
-- `held`, retried dead letters, segments taken apart to split or bisect a batch, and rows of
-- queue files written before `pieces` existed. The uploader drains them before segments.
CREATE TABLE IF NOT EXISTS readings (
    id      INTEGER PRIMARY KEY,
    series  INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    fields  TEXT NOT NULL,              -- line-protocol field set
    event   INTEGER NOT NULL DEFAULT 0  -- 1: door/motion edge, kept longest when full
);
-- Routine readings as compressed line protocol: one row (a piece: sync-flushed raw deflate of
-- lines that each end in a newline) per commit. A run of pieces starting with `first = 1` is
-- a segment, one deflate stream; a batch sends whole segments as one gzip member.
CREATE TABLE IF NOT EXISTS pieces (
    id        INTEGER PRIMARY KEY,
    first     INTEGER NOT NULL,         -- 1: starts a segment (a fresh deflate stream)
    lines     INTEGER NOT NULL,
    raw_len   INTEGER NOT NULL,         -- bytes of line protocol
    crc       INTEGER NOT NULL,         -- CRC-32 of those bytes
    oldest_ns INTEGER NOT NULL,
    newest_ns INTEGER NOT NULL,
    data      BLOB NOT NULL
);
-- Readings sampled before the wall clock was trusted: held back until they can be re-stamped
-- from the monotonic clock of their boot.
CREATE TABLE IF NOT EXISTS held (
    id      INTEGER PRIMARY KEY,
    series  INTEGER NOT NULL,
    boot    TEXT NOT NULL,              -- /proc/sys/kernel/random/boot_id
    mono_ns INTEGER NOT NULL,           -- CLOCK_BOOTTIME at sampling
    wall_ns INTEGER NOT NULL,           -- what the untrusted wall clock said
    fields  TEXT NOT NULL,
    event   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS held_by_boot ON held(boot, mono_ns);
-- Lines the server refused (or whose time cannot be known), with its reason and message.
CREATE TABLE IF NOT EXISTS dead_letters (
    id      INTEGER PRIMARY KEY,
    line    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    message TEXT NOT NULL,
    at_ns   INTEGER NOT NULL,
    at_trusted INTEGER NOT NULL DEFAULT 1  -- 0: at_ns is only a lower bound (clock not trusted)
);
-- Monotonic counters (sampled, uploaded, drops by reason, sensor errors); kept across restarts.
-- Readings stored since the totals were last written wait in the header's user_version (see
-- `totals`); read the counters through the `counters` view, which adds them.
CREATE TABLE IF NOT EXISTS counter_totals (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS counters AS
    SELECT name, value + CASE WHEN name IN ('sampled', 'queued')
                              THEN (SELECT user_version FROM pragma_user_version) ELSE 0 END
           AS value
    FROM counter_totals;
-- Small facts: last upload result, last trusted time, boots seen.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Bring a file of any earlier release to this one's schema, in one write transaction, so two
/// processes opening it at once (the agent and `sync`, say) cannot both migrate it.
pub fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = rename_counter_table(conn)
        .and_then(|()| conn.execute_batch(SCHEMA))
        .and_then(|()| add_missing_columns(conn));
    match migrated {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            // The error that matters is the migration's; a failed rollback adds nothing.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Before `SCHEMA` runs on a file of an earlier release: its `counters` table becomes the
/// totals (it had no pending readings), and `SCHEMA` then adds the view in its place.
fn rename_counter_table(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let is_table = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counters'")?
        .exists([])?;
    if is_table {
        conn.execute_batch("ALTER TABLE counters RENAME TO counter_totals")?;
    }
    Ok(())
}

/// Columns added after the first release, for queue files created before them.
fn add_missing_columns(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let has_at_trusted = conn
        .prepare("SELECT 1 FROM pragma_table_info('dead_letters') WHERE name = 'at_trusted'")?
        .exists([])?;
    if !has_at_trusted {
        conn.execute_batch(
            "ALTER TABLE dead_letters ADD COLUMN at_trusted INTEGER NOT NULL DEFAULT 1",
        )?;
    }
    Ok(())
}
