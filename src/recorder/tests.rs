//! The recorder's windows, early commits and disk-full spill, on a manual clock.

use super::*;
use crate::clock::{build_time_ns, Clock, ManualClock};

fn reading(n: i64, kind: Kind, time: &TimeKeeper) -> Message {
    Message::Reading(crate::reading::Reading {
        sensor: 0,
        kind,
        fields: vec![("n", Value::Int(n))],
        stamp: time.stamp(),
    })
}

#[test]
fn a_full_disk_keeps_a_bounded_spill_in_memory_drops_routine_first_and_writes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db")).unwrap();
    let clock = Arc::new(ManualClock::new(build_time_ns() + 1, true, "b"));
    let time = Arc::new(TimeKeeper::new(clock, false, 0));
    let plan = SeriesPlan {
        sensor_keys: vec!["m".into()],
        event_keys: Vec::new(),
        sensor_ids: vec!["S".into()],
        internal_key: "i".into(),
    };
    let mut rec = Recorder::new(
        queue,
        &plan,
        time.clone(),
        Duration::from_secs(5),
        Duration::from_secs(3600),
    )
    .unwrap();
    // SQLite answers SQLITE_FULL once the file would pass this many pages: a full disk.
    let pages: i64 = rec
        .queue()
        .conn()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    rec.queue()
        .conn()
        .execute_batch(&format!("PRAGMA max_page_count = {pages};"))
        .unwrap();
    rec.accept(reading(-1, Kind::Event(EdgeName::Open), &time));
    for n in 0..(SPILL_LIMIT as i64 + 100) {
        rec.accept(reading(n, Kind::Routine, &time));
    }
    rec.commit(); // fails: nothing more is lost, nothing grows past the bound
    rec.accept(reading(-2, Kind::Routine, &time));
    rec.commit();
    assert!(rec.disk_trouble);
    assert_eq!(rec.trusted.len(), SPILL_LIMIT);
    assert!(
        rec.trusted.iter().any(|r| r.class == Class::Event),
        "the event survives the spill limit"
    );
    rec.queue()
        .conn()
        .execute_batch("PRAGMA max_page_count = 1073741823;")
        .unwrap();
    rec.commit();
    assert!(!rec.disk_trouble);
    let c = rec.queue().counters().unwrap();
    assert_eq!(
        (c["queued"], c["dropped.dropped_full"]),
        (SPILL_LIMIT as i64, 102)
    );
    let events: i64 = rec
        .queue()
        .conn()
        .query_row("SELECT count(*) FROM readings WHERE event = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(events, 1);
}

#[test]
fn commits_once_per_window_and_adds_health_once_per_interval_on_the_agents_clock() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db")).unwrap();
    let clock = Arc::new(ManualClock::new(build_time_ns() + 1, true, "b"));
    let time = Arc::new(TimeKeeper::new(clock.clone(), false, 0));
    let plan = SeriesPlan {
        sensor_keys: vec!["m".into()],
        event_keys: Vec::new(),
        sensor_ids: vec!["S".into()],
        internal_key: "i".into(),
    };
    let (window, metrics) = (Duration::from_secs(5), Duration::from_secs(60));
    let mut rec = Recorder::new(queue, &plan, time.clone(), window, metrics).unwrap();
    let mut depths = Vec::new();
    for n in 1..=600 {
        rec.accept(reading(n, Kind::Routine, &time));
        clock.advance(Duration::from_secs(1));
        let left = rec.close_due_windows();
        assert_eq!(left, Duration::from_secs(5 - n as u64 % 5), "second {n}");
        if n <= 12 {
            depths.push(rec.queue().stats().unwrap().depth);
        }
    }
    // Nothing reaches the disk inside a window; each window ends in one commit.
    assert_eq!(depths, [0, 0, 0, 0, 5, 5, 5, 5, 5, 10, 10, 10]);
    let lines = rec.queue().waiting_lines().unwrap();
    let per_series = |series: &str| -> usize {
        let prefix = format!("{series} ");
        lines.iter().filter(|l| l.starts_with(&prefix)).count()
    };
    assert_eq!(per_series("m"), 600);
    assert_eq!(
        per_series("i"),
        10,
        "one health reading per minute for ten minutes"
    );
}

#[test]
fn ten_thousand_readings_a_second_for_a_minute_are_all_queued_and_pending_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db")).unwrap();
    let clock = Arc::new(ManualClock::new(build_time_ns() + 1, true, "b"));
    let time = Arc::new(TimeKeeper::new(clock.clone(), false, 0));
    let sensors = 100;
    let plan = SeriesPlan {
        sensor_keys: (0..sensors).map(|i| format!("m,s={i}")).collect(),
        event_keys: Vec::new(),
        sensor_ids: (0..sensors).map(|i| format!("S{i}")).collect(),
        internal_key: "i".into(),
    };
    let mut rec = Recorder::new(
        queue,
        &plan,
        time.clone(),
        Duration::from_secs(10),
        Duration::from_secs(3600),
    )
    .unwrap();
    let mut most_pending = 0;
    // 100 sensors every 10 ms: 10,000 readings a second, for 60 seconds.
    for tick in 0..6_000i64 {
        for sensor in 0..sensors {
            rec.accept(Message::Reading(crate::reading::Reading {
                sensor,
                kind: Kind::Routine,
                fields: vec![("n", Value::Int(tick))],
                stamp: time.stamp(),
            }));
            most_pending = most_pending.max(rec.pending());
        }
        clock.advance(Duration::from_millis(10));
        rec.close_due_windows();
    }
    rec.commit();
    assert!(
        most_pending <= COMMIT_BATCH,
        "pending reached {most_pending}"
    );
    let c = rec.queue().counters().unwrap();
    assert_eq!(c.get("dropped.dropped_full"), None, "{c:?}");
    assert_eq!(rec.queue().stats().unwrap().depth, 600_000);
}

#[test]
fn event_readings_go_to_their_edges_series_and_state_samples_to_the_sensors_own() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db")).unwrap();
    let clock = Arc::new(ManualClock::new(build_time_ns() + 1, true, "b"));
    let time = Arc::new(TimeKeeper::new(clock, false, 0));
    let plan = SeriesPlan {
        sensor_keys: vec!["m,sensor_id=D".into()],
        event_keys: vec![vec![
            (EdgeName::Open, "m,event=open,sensor_id=D".into()),
            (EdgeName::Close, "m,event=close,sensor_id=D".into()),
        ]],
        sensor_ids: vec!["D".into()],
        internal_key: "i".into(),
    };
    let (window, metrics) = (Duration::from_secs(5), Duration::from_secs(3600));
    let mut rec = Recorder::new(queue, &plan, time.clone(), window, metrics).unwrap();
    for kind in [
        Kind::Routine,
        Kind::Event(EdgeName::Open),
        Kind::Routine,
        Kind::Event(EdgeName::Close),
        Kind::Event(EdgeName::Open),
    ] {
        rec.accept(reading(1, kind, &time));
    }
    rec.commit();
    // Readings per series (routine ones are stored compressed), and how many of them are
    // stored as events (rows marked `event`).
    let lines = rec.queue().waiting_lines().unwrap();
    let mut events_of = rec
        .queue()
        .conn()
        .prepare(
            "SELECT count(*) FROM readings JOIN series ON series.id = readings.series \
             WHERE series.key = ?1 AND event = 1",
        )
        .unwrap();
    let mut keys: Vec<&str> = lines.iter().map(|l| l.split_once(' ').unwrap().0).collect();
    keys.sort();
    keys.dedup();
    let rows: Vec<(String, i64, i64)> = keys
        .iter()
        .map(|key| {
            let count = lines
                .iter()
                .filter(|l| l.starts_with(&format!("{key} ")))
                .count();
            let events: i64 = events_of.query_row([key], |r| r.get(0)).unwrap();
            (key.to_string(), count as i64, events)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("m,event=close,sensor_id=D".to_string(), 1, 1),
            ("m,event=open,sensor_id=D".to_string(), 2, 2),
            ("m,sensor_id=D".to_string(), 2, 0),
        ]
    );
}

/// A recorder of one sensor (`m`) aggregated in one-minute windows, on a manual clock.
fn aggregating(
    dir: &tempfile::TempDir,
    synced: bool,
) -> (Arc<ManualClock>, Arc<TimeKeeper>, Recorder) {
    let queue = Queue::open(&dir.path().join("q.db")).unwrap();
    // Ten seconds into a minute, so the first window is cut short at the start too.
    let wall = (build_time_ns() / 60_000_000_000 + 1) * 60_000_000_000 + 10_000_000_000;
    let clock = Arc::new(ManualClock::new(wall, synced, "b"));
    let time = Arc::new(TimeKeeper::new(clock.clone(), true, 0));
    let plan = SeriesPlan {
        sensor_keys: vec!["m".into()],
        event_keys: Vec::new(),
        sensor_ids: vec!["S".into()],
        internal_key: "i".into(),
    };
    let aggregation = crate::config::Aggregation {
        window: Duration::from_secs(60),
        fields: None,
        keep_raw: false,
    };
    let (window, metrics) = (Duration::from_secs(5), Duration::from_secs(3600));
    let rec = Recorder::new(queue, &plan, time.clone(), window, metrics)
        .unwrap()
        .with_aggregation(&[Some(aggregation)]);
    (clock, time, rec)
}

fn rows(rec: &mut Recorder) -> Vec<(i64, String)> {
    let mut stmt = rec
        .queue()
        .conn()
        .prepare("SELECT time_ns, fields FROM readings JOIN series ON series.id = readings.series WHERE series.key = 'm' ORDER BY time_ns")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn an_aggregated_sensor_gives_one_line_per_epoch_aligned_window_and_the_cut_window_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, time, mut rec) = aggregating(&dir, true);
    let start = clock.wall_ns();
    for n in 0..140 {
        rec.accept(reading(n, Kind::Routine, &time));
        clock.advance(Duration::from_secs(1));
        rec.close_due_windows();
    }
    rec.close_aggregates(None); // what a stopping recorder does before its last commit
    rec.commit();
    let minute = 60_000_000_000;
    let first = start - 10_000_000_000;
    let counts: Vec<(i64, bool)> = rows(&mut rec)
        .into_iter()
        .map(|(t, fields)| (t - first, fields.contains("n_min=")))
        .collect();
    // The first window was joined 10 s late: stamped at its first sample, so a restart
    // mid-window never overwrites the line the previous run wrote for it.
    assert_eq!(
        counts,
        [(start - first, true), (minute, true), (2 * minute, true)]
    );
    let fields: Vec<String> = rows(&mut rec).into_iter().map(|(_, f)| f).collect();
    assert!(fields[0].contains("n_count=50i") && fields[0].contains("n_min=0,n_max=49"));
    assert!(fields[1].contains("n_count=60i") && fields[1].contains("n_mean=79.5"));
    assert!(
        fields[2].contains("n_count=30i"),
        "the cut window keeps its real count"
    );
}

#[test]
fn edge_aggregates_are_stored_as_aggregates_so_a_full_queue_never_folds_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, time, mut rec) = aggregating(&dir, true);
    for n in 0..130 {
        rec.accept(reading(n, Kind::Routine, &time));
        clock.advance(Duration::from_secs(1));
        rec.close_due_windows();
    }
    rec.close_aggregates(None);
    rec.commit();
    let classes: Vec<i64> = rec
        .queue()
        .conn()
        .prepare("SELECT event FROM readings ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(classes, vec![Class::Aggregate.column(); 3]);
    // A queue over its budget thins routine readings only: it drops the windows when it must,
    // but never folds them into `n_mean_mean`.
    let policy = crate::queue::Policy {
        max_bytes: 1,
        max_age: Duration::from_secs(1 << 30),
        window: Duration::from_secs(60),
    };
    let done = rec.queue().enforce(&policy, clock.wall_ns()).unwrap();
    assert_eq!((done.thinned, done.aggregates), (0, 0), "{done:?}");
    assert_eq!(done.dropped_full, 3, "{done:?}");
}

#[test]
fn a_window_sampled_on_an_untrusted_clock_is_held_then_restamped_like_raw_readings() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, time, mut rec) = aggregating(&dir, false);
    let first_sample = clock.wall_ns();
    for n in 0..70 {
        rec.accept(reading(n, Kind::Routine, &time));
        clock.advance(Duration::from_secs(1));
        rec.close_due_windows();
    }
    assert_eq!(
        rec.queue().stats().unwrap().held,
        1,
        "the first window waits"
    );
    assert!(rows(&mut rec).is_empty());
    // NTP steps the wall clock 5 s forward and says it is synchronised.
    clock.set_wall(clock.wall_ns() + 5_000_000_000);
    clock.set_synced(true);
    rec.accept(reading(99, Kind::Routine, &time));
    rec.close_aggregates(None);
    rec.commit();
    let times: Vec<i64> = rows(&mut rec).into_iter().map(|(t, _)| t).collect();
    assert_eq!(rec.queue().stats().unwrap().held, 0);
    assert_eq!(times.len(), 3, "{times:?}");
    assert_eq!(
        times[0],
        first_sample + 5_000_000_000,
        "re-stamped by the clock's step"
    );
}
