use super::*;
use crate::queue::{Class, HeldReading, NewReading};

const S: i64 = 1_000_000_000;

fn fill(q: &mut Queue, seconds: i64, start: i64) {
    let s1 = q.series_id("m,sensor_id=a").unwrap();
    let s2 = q.series_id("m,sensor_id=b").unwrap();
    let mut rows = Vec::new();
    for t in 0..seconds {
        for (s, base) in [(s1, 20.0), (s2, 5.0)] {
            rows.push(NewReading {
                series: s,
                time_ns: start + t * S,
                fields: format!(
                    "temperature={},humidity={}i,door_open={}",
                    base + (t % 10) as f64,
                    40 + t % 3,
                    t % 2 == 0
                ),
                class: if t % 1000 == 0 && s == s2 {
                    Class::Event
                } else {
                    Class::Routine
                },
            });
        }
    }
    q.push(&rows, &[], &[]).unwrap();
}

/// Routine readings newer than every segment, as rows: the held readings of a Pi that
/// rebooted without its clock, released once it synced.
fn release_newer_rows(q: &mut Queue, count: i64, at: i64) {
    let series = q.series_id("m,sensor_id=a").unwrap();
    let held: Vec<HeldReading> = (0..count)
        .map(|n| HeldReading {
            series,
            boot: "b".into(),
            mono_ns: n * S,
            wall_ns: 0,
            fields: format!("temperature={n}"),
            class: Class::Routine,
        })
        .collect();
    q.push(&[], &held, &[]).unwrap();
    assert_eq!(q.release_held("b", at).unwrap(), count as usize);
}

fn count(q: &mut Queue, sql: &str) -> i64 {
    q.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_full_queue_thins_old_segments_first_without_unpacking_the_backlog_when_newer_rows_wait() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
    fill(&mut q, 20_000, 0);
    release_newer_rows(&mut q, 10, 30_000 * S);
    let before = q.stats().unwrap().bytes;
    let pages_before = count(&mut q, "PRAGMA page_count");
    let policy = Policy {
        max_bytes: before * 3 / 4,
        max_age: Duration::from_secs(1 << 40),
        window: Duration::from_secs(300),
    };
    let done = q.enforce(&policy, 0).unwrap();
    assert!(done.thinned > 0 && done.dropped_full == 0, "{done:?}");
    assert!(q.stats().unwrap().bytes <= policy.max_bytes);
    let routine_rows = count(&mut q, "SELECT count(*) FROM readings WHERE event = 0");
    assert!(
        routine_rows <= 2_500 + 10,
        "at most one segment is taken apart beyond what is thinned: {routine_rows} rows"
    );
    assert_eq!(
        count(
            &mut q,
            "SELECT count(*) FROM readings WHERE event = 0 AND time_ns >= 30000000000000"
        ),
        10,
        "the newest readings stay"
    );
    assert_eq!(
        count(
            &mut q,
            "SELECT count(*) FROM readings WHERE event = 2 AND time_ns = 0"
        ),
        2,
        "the oldest window is thinned, one aggregate per series"
    );
    // The pages the file has, free ones too: what the card holds however far it grew. A
    // segment taken apart takes a few hundred bytes of pages per reading at most.
    let pages_after = count(&mut q, "PRAGMA page_count");
    let page_size = count(&mut q, "PRAGMA page_size");
    assert!(
        (pages_after - pages_before) * page_size <= 2_500 * 128,
        "the file grew from {pages_before} to {pages_after} pages"
    );
    let c = q.counters().unwrap();
    assert_eq!(
        c["sampled"] + c["aggregates"] - c["dropped.thinned"],
        c["queued"]
    );
    assert_eq!(c["queued"], crate::queue::stored_count(q.conn()).unwrap());
}

#[test]
fn when_dropping_the_oldest_go_first_even_when_newer_rows_have_lower_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
    fill(&mut q, 20_000, 0);
    release_newer_rows(&mut q, 10, 30_000 * S);
    // Thinning everything but the newest window is not enough: the aggregates of the older
    // windows go, though their ids are higher than the newest readings'.
    let policy = Policy {
        max_bytes: 32 * 1024,
        max_age: Duration::from_secs(1 << 40),
        window: Duration::from_secs(300),
    };
    let done = q.enforce(&policy, 0).unwrap();
    assert!(done.dropped_full > 0, "{done:?}");
    assert!(q.stats().unwrap().bytes <= policy.max_bytes);
    assert_eq!(done.dropped_full, done.aggregates, "{done:?}");
    assert_eq!(
        count(
            &mut q,
            "SELECT count(*) FROM readings WHERE event = 0 AND time_ns >= 30000000000000"
        ),
        10,
        "the newest readings stay"
    );
    assert_eq!(
        count(&mut q, "SELECT count(*) FROM readings WHERE event = 1"),
        20,
        "events go last"
    );
    let c = q.counters().unwrap();
    assert_eq!(
        c["sampled"] + c["aggregates"] - c["dropped.thinned"] - c["dropped.dropped_full"],
        c["queued"]
    );
    assert_eq!(c["queued"], crate::queue::stored_count(q.conn()).unwrap());
}

#[test]
fn old_readings_expire_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
    fill(&mut q, 100, 0);
    let policy = Policy {
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(50),
        window: Duration::from_secs(10),
    };
    let done = q.enforce(&policy, 100 * S).unwrap();
    assert_eq!(done.expired, 100);
    assert_eq!(q.counters().unwrap()["dropped.expired"], 100);
    assert_eq!(q.stats().unwrap().depth, 100);
}

#[test]
fn a_full_queue_thins_the_oldest_windows_into_aggregates_and_keeps_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
    fill(&mut q, 20_000, 0);
    let before = q.stats().unwrap().bytes;
    // Stored compressed, a reading takes a few bytes; as an aggregate row it takes a
    // window's share of ~200 bytes, and the window still filling cannot be thinned. So a
    // quarter off is what thinning alone can reach here.
    let policy = Policy {
        max_bytes: before * 3 / 4,
        max_age: Duration::from_secs(1 << 40),
        window: Duration::from_secs(300),
    };
    let done = q.enforce(&policy, 0).unwrap();
    assert!(
        done.thinned > 0 && done.aggregates > 0 && done.dropped_full == 0,
        "{done:?}"
    );
    assert!(q.stats().unwrap().bytes <= policy.max_bytes);
    let events: i64 = q
        .conn()
        .query_row("SELECT count(*) FROM readings WHERE event = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(events, 20, "events are never thinned");
    let (fields, time): (String, i64) = q
        .conn()
        .query_row(
            "SELECT fields, time_ns FROM readings WHERE event = 2 ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        time % (300 * S),
        0,
        "aggregates are stamped at their window's start"
    );
    assert!(
        fields.contains("temperature_mean=")
            && fields.contains("humidity_max=")
            && fields.contains("door_open_mean="),
        "{fields}"
    );
    assert!(
        fields.contains("temperature_count=300i") || fields.contains("temperature_count=299i"),
        "{fields}"
    );
    let c = q.counters().unwrap();
    assert_eq!(
        c["sampled"] + c["aggregates"] - c["dropped.thinned"],
        c["queued"]
    );
}

#[test]
fn when_nothing_is_left_to_thin_the_oldest_are_dropped_and_events_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
    fill(&mut q, 20_000, 0);
    let policy = Policy {
        max_bytes: 64 * 1024,
        max_age: Duration::from_secs(1 << 40),
        window: Duration::from_secs(60),
    };
    let done = q.enforce(&policy, 0).unwrap();
    assert!(done.dropped_full > 0, "{done:?}");
    assert!(q.stats().unwrap().bytes <= policy.max_bytes);
    let c = q.counters().unwrap();
    assert_eq!(
        c["sampled"] + c["aggregates"] - c["dropped.thinned"] - c["dropped.dropped_full"],
        c["queued"]
    );
}
