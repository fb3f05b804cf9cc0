//! Where the counters are kept: totals in `counter_totals`, and the readings the recorder
//! stored since those were last written in the database header's `user_version`.
//!
//! A commit that only stores readings adds the same number to `sampled` and `queued`.
//! Rewriting the totals' page for that is a WAL frame per commit; the header page is
//! rewritten by such a commit anyway (storing a piece grows the file), so the number rides
//! there, in the same transaction, and stays exact across a crash. The next write that changes
//! a counter folds it into the totals. The `counters` view adds it back, so every reader
//! (`counters()`, the `sqlite3` shell, a salvage of the file) sees the true values.

use super::counter;
use rusqlite::{params, Connection};

/// Most readings left pending before they are folded into the totals: well inside the
/// header field's signed 32 bits.
const MOST_PENDING: i64 = 1 << 30;

/// What a commit that stores readings adds to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stored {
    pub trusted: i64,
    pub held: i64,
}

/// Count `stored` readings and add `others` to their counters: as pending readings when that
/// is all the commit changes, otherwise folded with the rest into the totals.
pub(super) fn record(
    conn: &Connection,
    stored: Stored,
    others: &[(&str, i64)],
) -> rusqlite::Result<()> {
    let only_trusted = stored.held == 0 && others.iter().all(|(_, delta)| *delta == 0);
    if only_trusted && stored.trusted > 0 {
        let pending = pending(conn)?;
        if pending + stored.trusted <= MOST_PENDING {
            ensure_rows(conn)?;
            return set_pending(conn, pending + stored.trusted);
        }
    }
    let mut all = others.to_vec();
    all.extend([
        (counter::SAMPLED, stored.trusted + stored.held),
        (counter::QUEUED, stored.trusted),
        (counter::HELD, stored.held),
    ]);
    bump(conn, &all)
}

/// Add to counters (a no-op when every delta is zero), folding the pending readings in.
pub(super) fn bump(conn: &Connection, counters: &[(&str, i64)]) -> rusqlite::Result<()> {
    if counters.iter().all(|(_, delta)| *delta == 0) {
        return Ok(());
    }
    fold(conn)?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO counter_totals(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    )?;
    for (name, delta) in counters {
        if *delta != 0 {
            stmt.execute(params![name, delta])?;
        }
    }
    Ok(())
}

/// Move the pending readings into the totals, so a total can be set outright.
pub(super) fn fold(conn: &Connection) -> rusqlite::Result<()> {
    let pending = pending(conn)?;
    if pending == 0 {
        return Ok(());
    }
    let mut stmt =
        conn.prepare_cached("UPDATE counter_totals SET value = value + ?1 WHERE name IN (?2, ?3)")?;
    stmt.execute(params![pending, counter::SAMPLED, counter::QUEUED])?;
    set_pending(conn, 0)
}

fn pending(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn set_pending(conn: &Connection, readings: i64) -> rusqlite::Result<()> {
    conn.pragma_update(None, "user_version", readings)
}

/// The totals the pending readings are added to must exist for the view to show them.
fn ensure_rows(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO counter_totals(name, value) VALUES (?1, 0), (?2, 0)",
    )?;
    stmt.execute(params![counter::SAMPLED, counter::QUEUED])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_file() -> (tempfile::TempDir, super::super::Queue) {
        let dir = tempfile::tempdir().unwrap();
        let queue = super::super::Queue::open(&dir.path().join("q.db")).unwrap();
        (dir, queue)
    }

    fn total(conn: &Connection, name: &str) -> i64 {
        conn.query_row(
            "SELECT value FROM counter_totals WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn readings_alone_stay_pending_and_the_counters_view_shows_them() {
        let (_dir, mut q) = queue_file();
        let conn = q.conn();
        let stored = Stored {
            trusted: 80,
            held: 0,
        };
        record(conn, stored, &[]).unwrap();
        record(conn, stored, &[]).unwrap();
        assert_eq!(pending(conn).unwrap(), 160);
        assert_eq!(total(conn, counter::SAMPLED), 0);
        let c = q.counters().unwrap();
        assert_eq!((c["sampled"], c["queued"]), (160, 160));
    }

    #[test]
    fn any_other_counter_folds_the_pending_readings_into_the_totals() {
        let (_dir, mut q) = queue_file();
        let conn = q.conn();
        let stored = Stored {
            trusted: 80,
            held: 0,
        };
        record(conn, stored, &[]).unwrap();
        bump(conn, &[(counter::UPLOADED, 30), (counter::QUEUED, -30)]).unwrap();
        assert_eq!(pending(conn).unwrap(), 0);
        assert_eq!(total(conn, counter::QUEUED), 50);
        record(
            conn,
            Stored {
                trusted: 5,
                held: 2,
            },
            &[],
        )
        .unwrap();
        let c = q.counters().unwrap();
        assert_eq!(
            (c["sampled"], c["queued"], c["held"], c["uploaded"]),
            (87, 55, 2, 30)
        );
    }

    #[test]
    fn the_pending_readings_are_folded_before_they_outgrow_the_header_field() {
        let (_dir, mut q) = queue_file();
        let conn = q.conn();
        set_pending(conn, MOST_PENDING - 10).unwrap();
        ensure_rows(conn).unwrap();
        record(
            conn,
            Stored {
                trusted: 11,
                held: 0,
            },
            &[],
        )
        .unwrap();
        assert_eq!(pending(conn).unwrap(), 0);
        assert_eq!(total(conn, counter::SAMPLED), MOST_PENDING + 1);
    }

    #[test]
    fn the_counters_table_of_an_earlier_release_becomes_the_totals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO counters VALUES ('sampled', 7), ('queued', 4), ('uploaded', 3);",
            )
            .unwrap();
        let mut q = super::super::Queue::open(&path).unwrap();
        record(
            q.conn(),
            Stored {
                trusted: 10,
                held: 0,
            },
            &[],
        )
        .unwrap();
        let c = q.counters().unwrap();
        assert_eq!((c["sampled"], c["queued"], c["uploaded"]), (17, 14, 3));
        assert_eq!(total(q.conn(), counter::SAMPLED), 7);
    }

    #[test]
    fn a_salvage_carries_the_pending_readings_over_with_the_totals() {
        let (dir, mut old) = queue_file();
        let series = old.series_id("m").unwrap();
        let readings: Vec<super::super::NewReading> = (0..10)
            .map(|t| super::super::NewReading {
                series,
                time_ns: t,
                fields: format!("v={t}i"),
                class: super::super::Class::Routine,
            })
            .collect();
        old.push(&readings, &[], &[]).unwrap();
        assert_eq!(pending(old.conn()).unwrap(), 10);
        drop(old);
        let mut fresh = super::super::Queue::open(&dir.path().join("fresh.db")).unwrap();
        fresh.salvage_from(&dir.path().join("q.db")).unwrap();
        let c = fresh.counters().unwrap();
        assert_eq!((c["sampled"], c["queued"]), (10, 10));
    }

    #[test]
    fn a_rolled_back_commit_leaves_nothing_pending() {
        let (_dir, mut q) = queue_file();
        let conn = q.conn();
        let tx = conn.transaction().unwrap();
        record(
            &tx,
            Stored {
                trusted: 9,
                held: 0,
            },
            &[],
        )
        .unwrap();
        drop(tx);
        assert_eq!(pending(conn).unwrap(), 0);
        assert_eq!(
            q.counters().unwrap().get("sampled").copied().unwrap_or(0),
            0
        );
    }
}
