//! A queue file with garbled pages: everything still readable in it is salvaged into the
//! fresh queue, not thrown away with the file.

use fieldlink::queue::{Class, NewReading, Queue};
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

const READINGS: i64 = 20_000;
const PAGE: u64 = 1024;

/// A closed queue of `READINGS` readings; their fields by id.
fn queue_with_readings(path: &Path) -> BTreeMap<i64, String> {
    let mut queue = Queue::open(path).unwrap();
    let series = queue.series_id("climate,sensor_id=t1").unwrap();
    for chunk in 0..READINGS / 1000 {
        let rows: Vec<NewReading> = (0..1000)
            .map(|i| {
                let n = chunk * 1000 + i;
                NewReading {
                    series,
                    time_ns: 1_700_000_000_000_000_000 + n,
                    fields: format!("temperature={n}.25,humidity=41.5"),
                    // Rows: routine readings are stored as compressed segments, which are
                    // salvaged piece by piece; this is about the row-by-row scan.
                    class: Class::Event,
                }
            })
            .collect();
        queue.push(&rows, &[], &[]).unwrap();
    }
    drop(queue); // a clean close folds the WAL into the file
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id, fields FROM readings").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// Overwrite whole pages at these fractions of the file with 0xFF.
fn garble(path: &Path, fractions: &[f64]) {
    let pages = std::fs::metadata(path).unwrap().len() / PAGE;
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for f in fractions {
        let page = (pages as f64 * f) as u64;
        file.seek(SeekFrom::Start(page * PAGE)).unwrap();
        file.write_all(&[0xFF; PAGE as usize]).unwrap();
    }
}

/// The readings a point lookup can still read in a copy of the damaged file.
fn readable(path: &Path, ids: impl Iterator<Item = i64>) -> BTreeMap<i64, String> {
    let copy = path.with_extension("probe");
    std::fs::copy(path, &copy).unwrap();
    let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT fields FROM readings WHERE id = ?1")
        .unwrap();
    ids.filter_map(|id| stmt.query_row([id], |r| r.get(0)).ok().map(|f| (id, f)))
        .collect()
}

#[test]
fn a_queue_with_a_few_garbled_pages_is_set_aside_with_every_readable_reading_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let original = queue_with_readings(&path);
    assert_eq!(original.len() as i64, READINGS);
    garble(&path, &[0.3, 0.5, 0.7]);
    let readable = readable(&path, original.keys().copied());
    assert!(
        readable.len() < original.len(),
        "the garbling destroyed some readings"
    );

    let queue = Queue::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let mut stmt = conn.prepare("SELECT id, fields FROM readings").unwrap();
    let salvaged: BTreeMap<i64, String> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let only_salvaged: Vec<_> = salvaged
        .keys()
        .filter(|k| !readable.contains_key(k))
        .collect();
    let only_readable: Vec<_> = readable
        .keys()
        .filter(|k| !salvaged.contains_key(k))
        .collect();
    assert!(
        only_salvaged.is_empty() && only_readable.is_empty(),
        "salvaged {} of {} readable; not readable yet salvaged: {only_salvaged:?}; readable, not salvaged: {only_readable:?}",
        salvaged.len(),
        readable.len()
    );
    assert!(salvaged == readable, "salvaged readings are unchanged");
    assert!(
        salvaged.len() as i64 > READINGS * 9 / 10,
        "{}",
        salvaged.len()
    );
    let counters = queue.counters().unwrap();
    assert_eq!(counters["queued"], salvaged.len() as i64);
    assert_eq!(counters["queue.salvaged"], salvaged.len() as i64);
    assert_eq!(
        counters["dropped.corrupt"],
        READINGS - salvaged.len() as i64
    );
    assert_eq!(counters["sampled"], READINGS);
    assert_eq!(counters["queue.corrupt_recovered"], 1);
    // The batch the uploader takes first is the oldest salvaged reading, as a line.
    let first = salvaged.values().next().unwrap();
    let mut queue = queue;
    let batch = queue.next_batch(1, 1 << 20).unwrap().unwrap();
    assert!(String::from_utf8_lossy(batch.body()).contains(first.as_str()));
}
