//! Small facts the queue keeps beside the readings (last upload result, last trusted time,
//! the sealed mark of segments), one row each in `meta`.

use super::{Queue, QueueError};
use rusqlite::{params, Connection, OptionalExtension};

impl Queue {
    pub fn meta(&self, key: &str) -> Result<Option<String>, QueueError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), QueueError> {
        set_meta(&self.conn, key, value).map_err(|e| self.err(e))
    }
}

pub(super) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
}
