use super::*;

fn reading(series: i64, t: i64) -> NewReading {
    NewReading {
        series,
        time_ns: t,
        fields: format!("v={t}i"),
        class: Class::Routine,
    }
}

fn temp_queue() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("queue.db")).unwrap();
    (dir, queue)
}

#[test]
fn readings_come_back_in_order_as_line_protocol() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m,sensor_id=a").unwrap();
    q.push(&[reading(s, 1), reading(s, 2)], &[], &[]).unwrap();
    let batch = q.next_batch(10, 1 << 20).unwrap().unwrap();
    assert_eq!(batch.body(), b"m,sensor_id=a v=1i 1\nm,sensor_id=a v=2i 2");
    assert_eq!(batch.line(1), b"m,sensor_id=a v=2i 2");
}

#[test]
fn a_reading_stays_until_it_is_acked() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m").unwrap();
    q.push(&[reading(s, 1), reading(s, 2), reading(s, 3)], &[], &[])
        .unwrap();
    let first = q.next_batch(2, 1 << 20).unwrap().unwrap();
    assert_eq!(
        q.next_batch(2, 1 << 20).unwrap().unwrap(),
        first,
        "not acked: same batch again"
    );
    q.ack(first.ids(), "ok").unwrap();
    let rest = q.next_batch(2, 1 << 20).unwrap().unwrap();
    assert_eq!(rest.body(), b"m v=3i 3");
    let c = q.counters().unwrap();
    assert_eq!((c["sampled"], c["uploaded"], c["queued"]), (3, 2, 1));
    assert_eq!(q.meta("last_upload").unwrap().as_deref(), Some("ok"));
}

#[test]
fn batches_respect_the_byte_bound_but_always_carry_one_line() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m").unwrap();
    q.push(
        &(0..10).map(|t| reading(s, t)).collect::<Vec<_>>(),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(q.next_batch(100, 20).unwrap().unwrap().len(), 2);
    assert_eq!(q.next_batch(100, 1).unwrap().unwrap().len(), 1);
}

#[test]
fn rejected_lines_become_dead_letters_and_the_rest_is_acked() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m").unwrap();
    q.push(&[reading(s, 1), reading(s, 2)], &[], &[]).unwrap();
    let b = q.next_batch(10, 1 << 20).unwrap().unwrap();
    q.reject(
        &[(b.ids()[0], "m v=1i 1".into())],
        "type conflict",
        &b.ids()[1..],
        RecordedAt::trusted(5),
    )
    .unwrap();
    assert!(q.next_batch(10, 1 << 20).unwrap().is_none());
    let c = q.counters().unwrap();
    assert_eq!(
        (c["dropped.rejected"], c["uploaded"], c["queued"]),
        (1, 1, 0)
    );
    assert_eq!(q.stats().unwrap().dead_letters, 1);
}

#[test]
fn what_was_committed_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    {
        let mut q = Queue::open(&path).unwrap();
        let s = q.series_id("m").unwrap();
        q.push(&[reading(s, 7)], &[], &[]).unwrap();
    }
    let mut q = Queue::open(&path).unwrap();
    assert_eq!(
        q.next_batch(10, 1 << 20).unwrap().unwrap().body(),
        b"m v=7i 7"
    );
}

#[test]
fn a_corrupt_file_is_moved_aside_and_a_fresh_queue_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let q = Queue::open(&path).unwrap();
    assert_eq!(q.counters().unwrap()["queue.corrupt_recovered"], 1);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("queue.db.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
}

#[test]
fn a_missing_directory_tree_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/queue.db");
    let err = Queue::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("no/such") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn free_space_is_read_from_the_queue_directory() {
    let dir = tempfile::tempdir().unwrap();
    let free = free_bytes(&dir.path().join("queue.db")).unwrap();
    assert!(free > 0);
    assert_eq!(free_bytes(Path::new("/no/such/dir/queue.db")), None);
}

#[test]
fn a_queue_from_before_dead_letter_trust_marks_gets_the_column_and_keeps_its_letters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, line TEXT NOT NULL,
             reason TEXT NOT NULL, message TEXT NOT NULL, at_ns INTEGER NOT NULL);
         INSERT INTO dead_letters(line, reason, message, at_ns) VALUES ('m v=1 1', 'rejected', 'x', 7);",
    )
    .unwrap();
    drop(old);
    let q = Queue::open(&path).unwrap();
    let letters = q.dead_letters(10).unwrap();
    assert_eq!(
        (
            letters[0].at_ns,
            letters[0].at_trusted,
            q.stats().unwrap().dead_letters
        ),
        (7, true, 1)
    );
}

#[test]
fn an_unknown_time_dead_letter_recorded_before_sync_is_marked_as_a_lower_bound() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m").unwrap();
    let held = HeldReading {
        series: s,
        boot: "old-boot".into(),
        mono_ns: 5,
        wall_ns: 60_000_000_000, // 1970
        fields: "v=1i".into(),
        class: Class::Routine,
    };
    q.push(&[], &[held], &[]).unwrap();
    let now = RecordedAt {
        ns: 1_800_000_000_000_000_000,
        trusted: false,
    };
    let settled = q
        .settle_past_boots("new-boot", 1_700_000_000_000_000_000, now)
        .unwrap();
    assert_eq!(settled.unknown_time, 1);
    let letter = &q.dead_letters(10).unwrap()[0];
    assert_eq!(
        (letter.reason.as_str(), letter.at_ns, letter.at_trusted),
        ("unknown_time", now.ns, false)
    );
}

#[test]
fn a_damaged_segment_keeps_the_readings_before_the_damage_and_counts_the_rest_lost() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m,t=a").unwrap();
    for commit in 0..3i64 {
        let rows: Vec<NewReading> = (0..10)
            .map(|i| NewReading {
                series: s,
                time_ns: commit * 10 + i,
                fields: format!("v={i}i"),
                class: Class::Routine,
            })
            .collect();
        q.push(&rows, &[], &[]).unwrap();
    }
    // The second piece's bytes change on the card: its CRC no longer matches.
    q.conn()
        .execute("UPDATE pieces SET crc = crc + 1 WHERE id = 2", [])
        .unwrap();
    let last = q.seal().unwrap().unwrap();
    let rows = q.unpack(1, last).unwrap().unwrap();
    assert_eq!(
        rows.1 - rows.0 + 1,
        10,
        "the first piece's readings are kept"
    );
    let c = q.counters().unwrap();
    assert_eq!((c["dropped.corrupt"], c["queued"]), (20, 10));
    let letter = &q.dead_letters(10).unwrap()[0];
    assert_eq!(letter.reason, "corrupt");
    assert!(letter.line.contains("20 reading(s)"), "{}", letter.line);
}

/// Three commits in one segment, sealed, then two in a second segment.
fn two_segments(q: &mut Queue) {
    let s = q.series_id("m,t=a").unwrap();
    for commit in 0..5i64 {
        if commit == 3 {
            q.seal().unwrap();
        }
        let rows: Vec<NewReading> = (0..10).map(|i| reading(s, commit * 10 + i)).collect();
        q.push(&rows, &[], &[]).unwrap();
    }
    q.seal().unwrap();
}

#[test]
fn garbled_bytes_of_a_stored_piece_are_never_sent_the_file_is_salvaged_and_keeps_what_decodes() {
    let (dir, mut q) = temp_queue();
    two_segments(&mut q);
    // The card garbles bytes inside the second piece: SQLite cannot see it, the CRC-32 can.
    let mut data: Vec<u8> = q
        .conn()
        .query_row("SELECT data FROM pieces WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x5a;
    q.conn()
        .execute("UPDATE pieces SET data = ?1 WHERE id = 2", [&data])
        .unwrap();

    let err = q.next_segments(None, 5000, 1 << 20).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    q.recover(&err).unwrap();

    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert!(aside >= 1, "the damaged file is set aside");
    let c = q.counters().unwrap();
    assert_eq!((c["dropped.corrupt"], c["queued"]), (20, 30), "{c:?}");
    let times: Vec<i64> = q
        .waiting_lines()
        .unwrap()
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<i64> = (0..10).chain(30..50).collect();
    assert_eq!(
        times, expected,
        "the piece before the damage and the sound segment"
    );
    // What is left is sound: taking it no longer fails.
    let sound = q.next_segments(None, 5000, 1 << 20).unwrap().unwrap();
    assert_eq!(sound.lines, 20);
    let letter = &q.dead_letters(10).unwrap()[0];
    assert_eq!(letter.reason, "corrupt");
    assert!(letter.line.contains("20 reading(s)"), "{}", letter.line);
}

#[test]
fn segments_close_at_half_a_small_batch_so_a_batch_sends_whole_segments() {
    use segment::SegmentBounds;
    assert_eq!(
        SegmentBounds::for_batches(5000, 1 << 20),
        SegmentBounds::default(),
        "the default batch keeps the default segments"
    );
    let (_dir, mut q) = temp_queue();
    q.set_segment_bounds(SegmentBounds::for_batches(100, 1 << 20));
    let s = q.series_id("m").unwrap();
    for commit in 0..6 {
        let rows: Vec<NewReading> = (0..30).map(|i| reading(s, commit * 30 + i)).collect();
        q.push(&rows, &[], &[]).unwrap();
    }
    q.seal().unwrap();
    let taken = q.next_segments(None, 100, 1 << 20).unwrap().unwrap();
    assert_eq!(taken.lines, 100, "two segments of 50 lines");
}

#[test]
fn the_oldest_waiting_reading_is_found_by_time_whatever_order_the_rows_came_in() {
    let (_dir, mut q) = temp_queue();
    let s = q.series_id("m").unwrap();
    let event = |t| NewReading {
        class: Class::Event,
        ..reading(s, t)
    };
    // A door event, then readings from before it (a released held reading, say).
    q.push(&[event(100)], &[], &[]).unwrap();
    q.push(&[event(50), reading(s, 70)], &[], &[]).unwrap();
    assert_eq!(q.stats().unwrap().oldest_ns, Some(50));
}
