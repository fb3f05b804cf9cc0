//! Readings sampled while the wall clock could not be trusted wait in `held` with their boot id
//! and monotonic time. When the clock becomes trusted in the same boot, they are re-stamped
//! exactly (monotonic time plus the offset between the clocks) and released for upload. Held
//! readings of a boot that ended before any sync cannot be re-stamped: they are uploaded with
//! `time_estimated=true` when that boot's clock looked plausible, else dead-lettered.

use super::{counter, Queue, QueueError, RecordedAt};
use rusqlite::params;

/// What happened to the held readings of past boots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub estimated: usize,
    pub unknown_time: usize,
}

impl Queue {
    /// Re-stamp the held readings of `boot` as `mono_ns + offset_ns` and release them.
    pub fn release_held(&mut self, boot: &str, offset_ns: i64) -> Result<usize, QueueError> {
        self.write(|tx| {
            let moved = tx.execute(
                "INSERT INTO readings(series, time_ns, fields, event)
                 SELECT series, mono_ns + ?2, fields, event FROM held WHERE boot = ?1 ORDER BY id",
                params![boot, offset_ns],
            )?;
            tx.execute("DELETE FROM held WHERE boot = ?1", [boot])?;
            Ok((
                moved,
                vec![
                    (counter::HELD, -(moved as i64)),
                    (counter::QUEUED, moved as i64),
                ],
            ))
        })
    }

    /// Settle the held readings of every boot other than `current_boot`: those whose wall time
    /// is not before `plausible_from_ns` go out marked `time_estimated=true`; the rest become
    /// dead letters with reason `unknown_time`.
    pub fn settle_past_boots(
        &mut self,
        current_boot: &str,
        plausible_from_ns: i64,
        now: RecordedAt,
    ) -> Result<Settled, QueueError> {
        self.write(|tx| {
            let estimated = tx.execute(
                "INSERT INTO readings(series, time_ns, fields, event)
                 SELECT series, wall_ns, fields || ',time_estimated=true', event FROM held
                 WHERE boot != ?1 AND wall_ns >= ?2 ORDER BY id",
                params![current_boot, plausible_from_ns],
            )?;
            let unknown = tx.execute(
                "INSERT INTO dead_letters(line, reason, message, at_ns, at_trusted)
                 SELECT s.key || ' ' || h.fields || ' ' || h.wall_ns, 'unknown_time',
                        'sampled in a boot that ended before the clock was synchronised, and that boot''s clock was not plausible', ?3, ?4
                 FROM held h JOIN series s ON s.id = h.series
                 WHERE h.boot != ?1 AND h.wall_ns < ?2 ORDER BY h.id",
                params![current_boot, plausible_from_ns, now.ns, now.trusted],
            )?;
            tx.execute("DELETE FROM held WHERE boot != ?1", [current_boot])?;
            let counters = vec![
                (counter::HELD, -((estimated + unknown) as i64)),
                (counter::QUEUED, estimated as i64),
                (counter::UNKNOWN_TIME, unknown as i64),
            ];
            Ok((Settled { estimated, unknown_time: unknown }, counters))
        })
    }
}
