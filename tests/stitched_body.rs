//! A batch of stored segments is sent as one gzip member stitched from the stored pieces,
//! never recompressed. Two readers that behave differently must both see every line: the real
//! InfluxDB 1.x (Go's reader, which would also read several members) and strict single-member
//! readers (flate2's `GzDecoder` and Python's `zlib` with `wbits=31`), which stop after the
//! first member, so anything after it must be nothing at all.

mod common;

use fieldlink::queue::{Class, NewReading, Queue};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Readings of two series over several commits, enough for more than two segments.
fn queue_of_several_segments(dir: &std::path::Path) -> (Queue, Vec<String>) {
    let mut queue = Queue::open(&dir.join("queue.db")).unwrap();
    let keys = [
        "stitch,sensor_id=T1,zone=a\\ b",
        "stitch,sensor_id=H2,zone=c",
    ];
    let series: Vec<i64> = keys.iter().map(|k| queue.series_id(k).unwrap()).collect();
    let mut lines = Vec::new();
    for commit in 0..30i64 {
        let readings: Vec<NewReading> = (0..200i64)
            .map(|i| {
                let n = commit * 200 + i;
                NewReading {
                    series: series[(n % 2) as usize],
                    time_ns: 1_700_000_000_000_000_000 + n * 1_000_000,
                    fields: format!("v={}.{},note=\"r{n}\",ok=true", n % 40, n % 7),
                    class: Class::Routine,
                }
            })
            .collect();
        for r in &readings {
            lines.push(format!(
                "{} {} {}",
                keys[(r.series == series[1]) as usize],
                r.fields,
                r.time_ns
            ));
        }
        queue.push(&readings, &[], &[]).unwrap();
    }
    (queue, lines)
}

fn strict_flate2(body: &[u8]) -> String {
    let mut decoder = flate2::bufread::GzDecoder::new(body);
    let mut text = String::new();
    decoder.read_to_string(&mut text).expect("one valid member");
    assert!(
        decoder.into_inner().is_empty(),
        "bytes after the first member"
    );
    text
}

fn strict_python(body: &[u8]) -> String {
    let script = "import sys, zlib\n\
        d = zlib.decompressobj(wbits=31)\n\
        text = d.decompress(sys.stdin.buffer.read()) + d.flush()\n\
        assert d.eof, 'the member did not end'\n\
        assert d.unused_data == b'', 'bytes after the first member'\n\
        sys.stdout.buffer.write(text)\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python's strict reader refused the body"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_stitched_batch_is_one_gzip_member_that_strict_readers_and_influxdb_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut queue, lines) = queue_of_several_segments(dir.path());
    let batch = queue
        .next_segments(None, 1_000_000, 64 << 20)
        .unwrap()
        .expect("segments wait");
    assert_eq!(batch.lines, lines.len());
    let expected = lines.join("\n") + "\n";
    assert_eq!(batch.raw_len, expected.len());
    assert_eq!(strict_flate2(&batch.gzip), expected);
    assert_eq!(strict_python(&batch.gzip), expected);
    assert_eq!(batch.text().unwrap(), expected.trim_end().as_bytes());

    let influx = common::influx();
    let db = influx.create_database("stitched");
    let mut answer = ureq::Agent::new_with_defaults()
        .post(format!("{}/write?db={db}&precision=ns", influx.url))
        .header("Content-Encoding", "gzip")
        .send(&batch.gzip[..])
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        204,
        "{}",
        answer.body_mut().read_to_string().unwrap_or_default()
    );
    let stored = influx.query(&db, "SELECT count(v) FROM stitch");
    assert_eq!(stored[0].values[0][1].as_i64(), Some(lines.len() as i64));
}
