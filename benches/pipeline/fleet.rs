//! The simulated device whose readings every figure uses: seeded, so runs compare byte for
//! byte.

use crate::{SECOND_NS, SENSORS};
use fieldlink::clock::{ManualClock, TimeKeeper};
use fieldlink::config::series::{SeriesPlan, INTERNAL_MEASUREMENT};
use fieldlink::line_protocol::{field_set, push_line, series_key};
use fieldlink::queue::{Class, NewReading, Queue};
use fieldlink::reading::{Fields, Kind, Reading};
use fieldlink::recorder::Recorder;
use fieldlink::sampler::Message;
use fieldlink::sensors::simulated::SimulatedClimate;
use fieldlink::sensors::Sensor;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// One device with `SENSORS` simulated climate sensors, each read once a second. Seeded, so two
/// fleets with the same start time produce the same readings byte for byte.
pub struct Fleet {
    pub keys: Vec<String>,
    pub ids: Vec<String>,
    pub climates: Vec<SimulatedClimate>,
    start_ns: i64,
    next: u64,
}

impl Fleet {
    pub fn new(start_ns: i64) -> Fleet {
        let ids: Vec<String> = (1..=SENSORS).map(|i| format!("climate-{i:02}")).collect();
        let keys = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let tags: BTreeMap<String, String> = [
                    ("device_id", "pi-cold-store-017".to_string()),
                    ("sensor_id", id.clone()),
                    ("location", "warehouse-north".to_string()),
                    ("floor", format!("{}", 1 + i / 4)),
                    (
                        "zone",
                        format!("cold-store-{}", (b'a' + (i % 4) as u8) as char),
                    ),
                    ("device_type", "simulated_climate".to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                series_key("iot_metrics", &tags)
            })
            .collect();
        let climates = (0..SENSORS)
            .map(|i| SimulatedClimate::new(0x5EED_0000 + i as u64))
            .collect();
        Fleet {
            keys,
            ids,
            climates,
            start_ns,
            next: 0,
        }
    }

    /// The next reading as the queue stores it: sensor index, time, field set.
    pub fn next_stored(&mut self) -> (usize, i64, String) {
        let n = self.next;
        self.next += 1;
        let sensor = (n % SENSORS as u64) as usize;
        let second = (n / SENSORS as u64) as i64;
        // Sensors share a 1 Hz schedule but are not read in the same nanosecond.
        let time_ns = self.start_ns + second * SECOND_NS + sensor as i64 * 1_250_003;
        let fields: Fields = self.climates[sensor].read().expect("simulated read");
        let set = field_set(&fields).0.expect("climate fields are finite");
        (sensor, time_ns, set)
    }

    pub fn series_ids(&self, queue: &mut Queue) -> Vec<i64> {
        self.keys
            .iter()
            .map(|k| queue.series_id(k).expect("series id"))
            .collect()
    }

    pub fn chunk(&mut self, series: &[i64], n: usize) -> Vec<NewReading> {
        (0..n)
            .map(|_| {
                let (sensor, time_ns, fields) = self.next_stored();
                NewReading {
                    series: series[sensor],
                    time_ns,
                    fields,
                    class: Class::Routine,
                }
            })
            .collect()
    }

    pub fn plan(&self) -> SeriesPlan {
        let internal_tags: BTreeMap<String, String> =
            [("device_id".to_string(), "pi-cold-store-017".to_string())].into();
        SeriesPlan {
            sensor_keys: self.keys.clone(),
            event_keys: Vec::new(),
            sensor_ids: self.ids.clone(),
            internal_key: series_key(INTERNAL_MEASUREMENT, &internal_tags),
        }
    }
}

/// Fill a fresh queue file with `rows` readings, `chunk` per push. Returns the time it took.
pub fn fill_queue(path: &Path, fleet: &mut Fleet, rows: usize, chunk: usize) -> Duration {
    let started = Instant::now();
    let mut queue = Queue::open(path).expect("open queue");
    let series = fleet.series_ids(&mut queue);
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        queue
            .push(&fleet.chunk(&series, n), &[], &[])
            .expect("push");
        done += n;
    }
    started.elapsed()
}

/// What recording through the recorder took.
pub struct Recorded {
    pub readings: usize,
    /// Bytes of line protocol of those readings, one newline per line.
    pub lp_bytes: usize,
}

/// Feed `seconds` of the fleet (every sensor once a second) to `recorder`, advancing `clock`
/// and committing every `commit_every` simulated seconds, then once more at the end.
pub fn record_seconds(
    fleet: &mut Fleet,
    recorder: &mut Recorder,
    clock: &ManualClock,
    keeper: &TimeKeeper,
    seconds: usize,
    commit_every: usize,
) -> Recorded {
    let (mut lp_bytes, mut readings, mut line) = (0, 0, Vec::with_capacity(512));
    for second in 1..=seconds {
        for sensor in 0..SENSORS {
            let stamp = keeper.stamp();
            let fields = fleet.climates[sensor].read().expect("simulated read");
            if let (Some(set), _) = field_set(&fields) {
                line.clear();
                push_line(&mut line, &fleet.keys[sensor], &set, stamp.wall_ns);
                lp_bytes += line.len() + 1;
            }
            recorder.accept(Message::Reading(Reading {
                sensor,
                kind: Kind::Routine,
                fields,
                stamp,
            }));
            readings += 1;
        }
        clock.advance(Duration::from_secs(1));
        if second % commit_every == 0 {
            recorder.commit();
        }
    }
    recorder.commit();
    Recorded { readings, lp_bytes }
}
