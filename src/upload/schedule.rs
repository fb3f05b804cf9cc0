//! What goes next, and when. Two lanes: after an outage, readings sampled from the recovery on
//! go first, so dashboards are current at once, and the backlog drains behind them, oldest
//! first. Pacing keeps sends to `max_points_per_second`, so a fleet's backlog drains steadily
//! instead of stampeding the server. Times are the monotonic clock's nanoseconds.

use std::time::Duration;

/// Where the next batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// Read rows with an id above this (`None`: from the oldest row).
    pub after: Option<i64>,
    /// Commit the deferred deletes before reading: the batch switches lanes.
    pub flush_first: bool,
}

pub struct Schedule {
    /// Readings with an id above this were sampled after the last outage: they go first.
    fresh_after: Option<i64>,
    pacer: Pacer,
}

impl Schedule {
    pub fn new(max_points_per_second: u32) -> Schedule {
        Schedule {
            fresh_after: None,
            pacer: Pacer::new(max_points_per_second),
        }
    }

    /// Uploads recovered while `last_id` was the newest row: it and everything older is the
    /// backlog, which waits behind what is sampled from now on.
    pub fn recovered(&mut self, last_id: Option<i64>) {
        self.fresh_after = last_id;
    }

    /// Where the next batch starts: fresh readings first (ids above the mark set after an
    /// outage), then the backlog, each lane read past `cursor`, the last row acknowledged but
    /// not yet deleted. `has_after(id)`: whether the queue holds a row above `id`.
    pub fn next<E>(
        &self,
        cursor: Option<i64>,
        has_after: impl FnOnce(i64) -> Result<bool, E>,
    ) -> Result<Next, E> {
        let stay = |after| Next {
            after,
            flush_first: false,
        };
        let Some(mark) = self.fresh_after else {
            return Ok(stay(cursor));
        };
        // Fresh rows have ids above the mark, so deferred fresh runs move the cursor past it.
        let from = cursor.filter(|c| *c > mark).unwrap_or(mark);
        if has_after(from)? {
            return Ok(Next {
                after: Some(from),
                // Leaving the backlog lane.
                flush_first: cursor.is_some_and(|c| c <= mark),
            });
        }
        if cursor.is_some_and(|c| c > mark) {
            // The fresh lane is done: back to the oldest backlog.
            return Ok(Next {
                after: None,
                flush_first: true,
            });
        }
        Ok(stay(cursor))
    }

    /// Readings with an id above this were sampled after the last outage (`None`: no outage).
    pub fn fresh_mark(&self) -> Option<i64> {
        self.fresh_after
    }

    /// `points` were sent at `now_ns`.
    pub fn spent(&mut self, points: usize, now_ns: i64) {
        self.pacer.spend(points, now_ns);
    }

    /// How long to wait at `now_ns` before the next send.
    pub fn pace_delay(&self, now_ns: i64) -> Duration {
        self.pacer.delay(now_ns)
    }
}

/// Paces sends to a number of points per second (0: no limit).
struct Pacer {
    per_second: u32,
    /// Monotonic time before which the next send would run ahead of the rate.
    next_ns: Option<i64>,
}

impl Pacer {
    fn new(per_second: u32) -> Pacer {
        Pacer {
            per_second,
            next_ns: None,
        }
    }

    fn spend(&mut self, points: usize, now_ns: i64) {
        if self.per_second == 0 {
            return;
        }
        let start = self.next_ns.map_or(now_ns, |n| n.max(now_ns));
        let cost = Duration::from_secs_f64(points as f64 / f64::from(self.per_second));
        let cost_ns = i64::try_from(cost.as_nanos()).unwrap_or(i64::MAX);
        self.next_ns = Some(start.saturating_add(cost_ns));
    }

    fn delay(&self, now_ns: i64) -> Duration {
        let ahead = self.next_ns.map_or(0, |n| n.saturating_sub(now_ns));
        Duration::from_nanos(u64::try_from(ahead).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    const SECOND: i64 = 1_000_000_000;

    fn next(s: &Schedule, cursor: Option<i64>, has_after: bool) -> Next {
        s.next(cursor, |_| Ok::<_, Infallible>(has_after))
            .unwrap_or_else(|e| match e {})
    }

    #[test]
    fn pacing_spreads_points_over_time_and_idle_time_is_not_banked() {
        let mut s = Schedule::new(100);
        s.spent(50, 10 * SECOND);
        assert_eq!(s.pace_delay(10 * SECOND), Duration::from_millis(500));
        s.spent(100, 10 * SECOND);
        assert_eq!(
            s.pace_delay(10 * SECOND + SECOND / 2),
            Duration::from_secs(1)
        );
        // A minute idle: the next batch goes at once, and is paced from then, not from before.
        assert_eq!(s.pace_delay(70 * SECOND), Duration::ZERO);
        s.spent(10, 70 * SECOND);
        assert_eq!(s.pace_delay(70 * SECOND), Duration::from_millis(100));
    }

    #[test]
    fn no_rate_means_no_waiting() {
        let mut s = Schedule::new(0);
        s.spent(1_000_000, 0);
        assert_eq!(s.pace_delay(0), Duration::ZERO);
    }

    #[test]
    fn before_any_outage_batches_follow_the_cursor() {
        let s = Schedule::new(0);
        let expect = |after| Next {
            after,
            flush_first: false,
        };
        assert_eq!(next(&s, None, true), expect(None));
        assert_eq!(next(&s, Some(7), true), expect(Some(7)));
    }

    #[test]
    fn after_an_outage_the_fresh_lane_goes_first_then_the_backlog_from_its_start() {
        let mut s = Schedule::new(0);
        s.recovered(Some(100));
        // Backlog runs acked up to 40 and not yet deleted; fresh rows wait above 100.
        assert_eq!(
            next(&s, Some(40), true),
            Next {
                after: Some(100),
                flush_first: true
            }
        );
        // Inside the fresh lane: keep reading past the cursor.
        assert_eq!(
            next(&s, Some(120), true),
            Next {
                after: Some(120),
                flush_first: false
            }
        );
        // The fresh lane is empty: commit its deletes and start over at the oldest backlog.
        assert_eq!(
            next(&s, Some(130), false),
            Next {
                after: None,
                flush_first: true
            }
        );
        // Draining the backlog with nothing fresh: follow the cursor.
        assert_eq!(
            next(&s, Some(50), false),
            Next {
                after: Some(50),
                flush_first: false
            }
        );
    }
}
