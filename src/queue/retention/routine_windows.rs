//! Where the routine rows sit, by thinning window. Rows have no index on time and their ids
//! are not in time order (held readings released late, segments taken apart, dead letters
//! retried), so one scan per enforcement finds them; from then on only rows with higher ids
//! (new ones, whoever made them) are read, and every later step is a seek on an id range.

use super::ROUTINE;
use rusqlite::Connection;
use std::collections::BTreeMap;

pub(super) struct RoutineWindows {
    window_ns: i64,
    /// Window start -> the lowest and highest id of the routine rows in that window.
    windows: BTreeMap<i64, (i64, i64)>,
    /// Every row up to this id has been looked at.
    seen_through: i64,
}

impl RoutineWindows {
    /// Every routine row of the queue on `conn`, by window of `window_ns`.
    pub fn scan(conn: &Connection, window_ns: i64) -> rusqlite::Result<RoutineWindows> {
        let mut found = RoutineWindows {
            window_ns,
            windows: BTreeMap::new(),
            seen_through: i64::MIN,
        };
        found.catch_up(conn)?;
        Ok(found)
    }

    /// Add the routine rows stored since the last look (segments just taken apart, say).
    pub fn catch_up(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let newest: Option<i64> =
            conn.query_row("SELECT max(id) FROM readings", [], |r| r.get(0))?;
        let Some(newest) = newest.filter(|&newest| newest > self.seen_through) else {
            return Ok(());
        };
        let mut stmt = conn.prepare_cached(
            "SELECT id, time_ns FROM readings WHERE id > ?1 AND id <= ?2 AND event = ?3",
        )?;
        let mut rows = stmt.query([self.seen_through, newest, ROUTINE])?;
        while let Some(row) = rows.next()? {
            let (id, time_ns): (i64, i64) = (row.get(0)?, row.get(1)?);
            let ids = self
                .windows
                .entry(self.start_of(time_ns))
                .or_insert((id, id));
            *ids = (ids.0.min(id), ids.1.max(id));
        }
        self.seen_through = newest;
        Ok(())
    }

    pub fn window_ns(&self) -> i64 {
        self.window_ns
    }

    /// The start of the window holding `time_ns`.
    pub fn start_of(&self, time_ns: i64) -> i64 {
        time_ns - time_ns.rem_euclid(self.window_ns)
    }

    /// The start of the oldest window with routine rows.
    pub fn oldest(&self) -> Option<i64> {
        self.windows.keys().next().copied()
    }

    /// The start of the newest window with routine rows.
    pub fn newest(&self) -> Option<i64> {
        self.windows.keys().next_back().copied()
    }

    /// Forget the window starting at `start` (it is being thinned); the id range of its rows.
    pub fn take(&mut self, start: i64) -> Option<(i64, i64)> {
        self.windows.remove(&start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_window_whatever_their_id_order() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::queue::schema::SCHEMA).unwrap();
        for (time_s, event) in [(700, 0), (10, 0), (650, 1), (20, 2), (299, 0), (-1, 0)] {
            conn.execute(
                "INSERT INTO readings(series, time_ns, fields, event) VALUES (1, ?1, 'v=1', ?2)",
                [time_s * 1_000_000_000_i64, event],
            )
            .unwrap();
        }
        let mut found = RoutineWindows::scan(&conn, 300 * 1_000_000_000).unwrap();
        assert_eq!(found.oldest(), Some(-300 * 1_000_000_000));
        assert_eq!(found.newest(), Some(600 * 1_000_000_000));
        assert_eq!(found.take(0), Some((2, 5)), "the rows at 10 s and 299 s");
        assert_eq!(found.take(0), None);
        conn.execute(
            "INSERT INTO readings(series, time_ns, fields, event) VALUES (1, 5, 'v=1', 0)",
            [],
        )
        .unwrap();
        found.catch_up(&conn).unwrap();
        assert_eq!(found.take(0), Some((7, 7)), "a row stored since is found");
    }
}
