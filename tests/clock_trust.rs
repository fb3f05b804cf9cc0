//! Timestamps on a Pi without a real-time clock, driven through the `Clock` trait: readings
//! sampled before the clock is trusted are held and re-stamped, readings of a boot that ended
//! before sync are estimated or dead-lettered, and NTP steps do not disturb the schedule.

use fieldlink::clock::{build_time_ns, Clock, ManualClock, TimeKeeper};
use fieldlink::config::series::SeriesPlan;
use fieldlink::config::Board;
use fieldlink::queue::Queue;
use fieldlink::reading::{Kind, Reading, Value};
use fieldlink::recorder::Recorder;
use fieldlink::sampler::{Message, Periodic, Slot};
use fieldlink::sensors::{Sensor, SensorError};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const SECOND: i64 = 1_000_000_000;
/// "Now" in these tests: well after the build, as a real deployment would be.
fn truth_start() -> i64 {
    build_time_ns() + 30 * 86_400 * SECOND
}

fn board(dir: &std::path::Path, require_sync: bool) -> Board {
    let text = format!(
        "[[sensor]]\nid = \"T1\"\nkind = \"simulated_climate\"\n[queue]\npath = \"{}\"\n[clock]\nrequire_sync = {require_sync}\n",
        dir.join("queue.db").display()
    );
    let path = dir.join("board.toml");
    std::fs::write(&path, text).unwrap();
    Board::load(&path).unwrap()
}

fn plan() -> SeriesPlan {
    SeriesPlan {
        sensor_keys: vec!["m,sensor_id=T1".into()],
        event_keys: Vec::new(),
        sensor_ids: vec!["T1".into()],
        internal_key: "fieldlink_internal".into(),
    }
}

/// A recorder on the board's queue with the given clock, as the agent builds it at start.
fn recorder(board: &Board, clock: Arc<ManualClock>) -> Recorder {
    let (queue, time) = fieldlink::agent::open_queue(board, clock).unwrap();
    Recorder::new(
        queue,
        &plan(),
        time,
        Duration::from_secs(5),
        Duration::from_secs(3600),
    )
    .unwrap()
}

fn sample(recorder: &mut Recorder, time: &TimeKeeper, n: i64) {
    let reading = Reading {
        sensor: 0,
        kind: Kind::Routine,
        fields: vec![("n", Value::Int(n))],
        stamp: time.stamp(),
    };
    recorder.accept(Message::Reading(reading));
}

/// Every line in the queue as (fields, time).
fn queued(path: &std::path::Path) -> Vec<(String, i64)> {
    let mut q = Queue::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(batch) = q.next_batch(10_000, 1 << 24).unwrap() {
        for i in 0..batch.len() {
            let line = String::from_utf8(batch.line(i).to_vec()).unwrap();
            let (_, fields, time) = fieldlink::queue::split_line(&line).unwrap();
            out.push((fields.to_string(), time));
        }
        q.ack(batch.ids(), "test").unwrap();
    }
    out
}

#[test]
fn readings_sampled_at_1970_are_restamped_within_a_second_of_the_truth_once_the_clock_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), true);
    // Boot without network: the wall clock says 1970 and nothing is synchronised.
    let clock = Arc::new(ManualClock::new(10 * SECOND, false, "boot-a"));
    let truth_at_boot = truth_start() - clock.mono_ns();
    let mut rec = recorder(&board, clock.clone());
    let time = TimeKeeper::new(clock.clone(), true, 0);
    let mut truths = Vec::new();
    for n in 0..100 {
        clock.advance(Duration::from_secs(1));
        truths.push(truth_at_boot + clock.mono_ns());
        sample(&mut rec, &time, n);
    }
    rec.commit();
    let stats = rec.queue().stats().unwrap();
    assert_eq!(
        (stats.depth, stats.held),
        (0, 100),
        "nothing with a 1970 timestamp is uploadable"
    );

    // NTP syncs: the wall clock steps to the truth.
    clock.set_wall(truth_at_boot + clock.mono_ns());
    clock.set_synced(true);
    clock.advance(Duration::from_secs(1));
    sample(&mut rec, &time, 100);
    rec.commit();
    let lines = queued(&dir.path().join("queue.db"));
    assert_eq!(lines.len(), 101);
    for (fields, time) in &lines[..] {
        let n: usize = fields
            .trim_start_matches("n=")
            .trim_end_matches('i')
            .parse()
            .unwrap();
        let truth = if n < 100 {
            truths[n]
        } else {
            truth_at_boot + clock.mono_ns()
        };
        assert!(
            (time - truth).abs() < SECOND,
            "reading {n}: {time} vs truth {truth}"
        );
    }
}

/// A boot that ends (power cut) before the clock was ever synchronised.
fn boot_that_never_synced(dir: &std::path::Path, wall_at_boot: i64) -> Board {
    let board = board(dir, true);
    // An earlier boot that did sync, so the device knows a trusted time.
    let clock = Arc::new(ManualClock::new(truth_start(), true, "boot-1"));
    let mut rec = recorder(&board, clock.clone());
    let time = TimeKeeper::new(clock.clone(), true, 0);
    sample(&mut rec, &time, 0);
    rec.commit();
    drop(rec);
    // Power cut, reboot without network.
    clock.reboot("boot-2", wall_at_boot);
    let mut rec = recorder(&board, clock.clone());
    let time = TimeKeeper::new(clock.clone(), true, truth_start());
    for n in 1..=10 {
        clock.advance(Duration::from_secs(1));
        sample(&mut rec, &time, n);
    }
    rec.commit();
    assert_eq!(rec.queue().stats().unwrap().held, 10);
    drop(rec); // power cut again, before any sync
    board
}

#[test]
fn a_past_boot_with_a_plausible_clock_is_uploaded_as_estimated() {
    let dir = tempfile::tempdir().unwrap();
    // fake-hwclock restored a time after the last trusted one: plausible.
    let board = boot_that_never_synced(dir.path(), truth_start() + 3600 * SECOND);
    let clock = Arc::new(ManualClock::new(10 * SECOND, false, "boot-3"));
    let mut rec = recorder(&board, clock);
    let stats = rec.queue().stats().unwrap();
    assert_eq!(stats.held, 0);
    let lines = queued(&dir.path().join("queue.db"));
    let estimated: Vec<_> = lines
        .iter()
        .filter(|(f, _)| f.ends_with(",time_estimated=true"))
        .collect();
    assert_eq!(estimated.len(), 10, "{lines:?}");
    assert!(estimated
        .iter()
        .all(|(_, t)| *t > truth_start() + 3600 * SECOND));
}

#[test]
fn a_past_boot_that_said_1970_is_dead_lettered_as_unknown_time() {
    let dir = tempfile::tempdir().unwrap();
    let board = boot_that_never_synced(dir.path(), 20 * SECOND);
    let clock = Arc::new(ManualClock::new(10 * SECOND, false, "boot-3"));
    let mut rec = recorder(&board, clock);
    let q = rec.queue();
    assert_eq!(q.stats().unwrap().held, 0);
    let letters = q.dead_letters(100).unwrap();
    assert_eq!(letters.len(), 10);
    assert!(letters.iter().all(|d| d.reason == "unknown_time"));
    assert_eq!(q.counters().unwrap()["dropped.unknown_time"], 10);
    let lines = queued(&dir.path().join("queue.db"));
    assert_eq!(
        lines.len(),
        1,
        "only the reading of the synced boot is uploadable: {lines:?}"
    );
}

struct Counter(i64);

impl Sensor for Counter {
    fn read(&mut self) -> Result<fieldlink::reading::Fields, SensorError> {
        self.0 += 1;
        Ok(vec![("n", Value::Int(self.0))])
    }
}

#[test]
fn ntp_steps_forward_and_backward_neither_skip_nor_double_a_sample() {
    let clock = Arc::new(ManualClock::new(truth_start(), true, "boot"));
    let time = Arc::new(TimeKeeper::new(clock.clone(), true, 0));
    let (tx, rx) = mpsc::channel();
    let slot: Slot<dyn Sensor> = Slot::new(
        0,
        "S".into(),
        Duration::from_millis(20),
        Box::new(|| Ok(Box::new(Counter(0)) as Box<dyn Sensor>)),
    );
    let mut sampler = Periodic::new(vec![slot], time, tx);
    let start = clock.mono_ns();
    let ms = 1_000_000;
    sampler.run_until(&clock, start + 200 * ms);
    clock.set_wall(clock.wall_ns() + 3600 * SECOND); // step forward an hour
    sampler.run_until(&clock, start + 400 * ms);
    clock.set_wall(clock.wall_ns() - 5400 * SECOND); // and back, to half an hour behind
    sampler.run_until(&clock, start + 600 * ms);
    let stamps: Vec<_> = rx
        .try_iter()
        .filter_map(|m| match m {
            Message::Reading(r) => Some(r.stamp),
            _ => None,
        })
        .collect();
    // 600 ms at 20 ms: exactly 30 samples, 20 ms apart on the monotonic clock.
    assert_eq!(stamps.len(), 30);
    for (n, stamp) in stamps.iter().enumerate() {
        assert_eq!(stamp.mono_ns - start, n as i64 * 20 * ms, "sample {n}");
    }
    let jumps = stamps
        .windows(2)
        .filter(|p| (p[1].wall_ns - p[0].wall_ns).abs() > 60 * SECOND)
        .count();
    assert_eq!(
        jumps, 2,
        "the wall clock stepped twice; the schedule did not"
    );
}
