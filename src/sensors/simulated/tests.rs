use super::*;

const STEPS: usize = 100_000;
/// The agent's default interval: 100k steps cover about 11½ days of script.
const INTERVAL: Duration = Duration::from_secs(10);

fn float(fields: &Fields, name: &str) -> f64 {
    match fields.iter().find(|(n, _)| *n == name) {
        Some((_, Value::Float(v))) => *v,
        other => panic!("{name}: expected a float, got {other:?}"),
    }
}

fn int(fields: &Fields, name: &str) -> i64 {
    match fields.iter().find(|(n, _)| *n == name) {
        Some((_, Value::Int(v))) => *v,
        other => panic!("{name}: expected Value::Int, got {other:?}"),
    }
}

fn boolean(fields: &Fields, name: &str) -> bool {
    match fields.iter().find(|(n, _)| *n == name) {
        Some((_, Value::Bool(v))) => *v,
        other => panic!("{name}: expected a bool, got {other:?}"),
    }
}

/// The events already due (tests move the clock ahead first), without sleeping.
fn due_events<S: EventSensor>(sensor: &mut S, count: usize) -> Vec<Event> {
    (0..count)
        .filter_map(|_| sensor.next_event(Duration::ZERO).unwrap())
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_climate_sequence() {
    let mut a = SimulatedClimate::new(7);
    let mut b = SimulatedClimate::new(7);
    let mut c = SimulatedClimate::new(8);
    let a: Vec<_> = (0..1000).map(|_| a.read().unwrap()).collect();
    let b: Vec<_> = (0..1000).map(|_| b.read().unwrap()).collect();
    let c: Vec<_> = (0..1000).map(|_| c.read().unwrap()).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn climate_values_stay_plausible_over_a_hundred_thousand_reads() {
    for seed in [0, 1, u64::MAX] {
        let mut sensor = SimulatedClimate::new(seed);
        let mut battery_changes = 0;
        let mut last_battery = None;
        for _ in 0..STEPS {
            let fields = sensor.read().unwrap();
            let t = float(&fields, "temperature");
            let h = float(&fields, "humidity");
            let battery = int(&fields, "battery_level");
            let signal = int(&fields, "signal_strength");
            assert!((10.0..=30.0).contains(&t), "temperature {t}");
            assert!((30.0..=70.0).contains(&h), "humidity {h}");
            assert!((0..=100).contains(&battery), "battery {battery}");
            assert!((-90..=-30).contains(&signal), "signal {signal}");
            if last_battery.is_some_and(|b| b != battery) {
                battery_changes += 1;
            }
            last_battery = Some(battery);
        }
        assert!(battery_changes > 0, "the battery never drained");
    }
}

#[test]
fn the_temperature_wanders_rather_than_standing_still() {
    let mut sensor = SimulatedClimate::new(3);
    let temps: Vec<f64> = (0..1000)
        .map(|_| float(&sensor.read().unwrap(), "temperature"))
        .collect();
    let low = temps.iter().cloned().fold(f64::MAX, f64::min);
    let high = temps.iter().cloned().fold(f64::MIN, f64::max);
    assert!(high - low > 0.5, "range {low}..{high}");
}

#[test]
fn the_same_seed_gives_the_same_motion_and_door_scripts() {
    let mut a = SimulatedMotion::new(11);
    let mut b = SimulatedMotion::new(11);
    a.clock.skip = Duration::from_secs(86_400);
    b.clock.skip = Duration::from_secs(86_400);
    assert_eq!(due_events(&mut a, 500), due_events(&mut b, 500));

    let mut a = SimulatedDoor::new(11);
    let mut b = SimulatedDoor::new(11);
    let times = (0..500).map(|i| INTERVAL * i);
    for now in times {
        assert_eq!(a.fields_at(now), b.fields_at(now));
    }
}

#[test]
fn motion_comes_and_goes_in_plausible_fields() {
    let mut sensor = SimulatedMotion::new(5);
    let mut seen_motion = 0;
    let mut sensitivity = None;
    for i in 0..STEPS {
        let fields = sensor.fields_at(INTERVAL * i as u32);
        if boolean(&fields, "motion_detected") {
            seen_motion += 1;
        }
        let s = int(&fields, "sensitivity");
        assert!((50..=100).contains(&s));
        assert_eq!(*sensitivity.get_or_insert(s), s);
        assert!((0..=100).contains(&int(&fields, "battery_level")));
    }
    // Motion is the exception, not the rule, but it does happen.
    assert!(
        seen_motion > 100 && seen_motion < STEPS / 4,
        "{seen_motion}"
    );
}

#[test]
fn motion_events_alternate_and_never_go_back_in_time() {
    let mut script = MotionScript::new(Rng::new(9));
    let mut previous = ScriptEdge {
        at: Duration::ZERO,
        active: false,
    };
    for _ in 0..STEPS {
        let edge = script.next_edge();
        assert_ne!(edge.active, previous.active);
        assert!(edge.at > previous.at);
        previous = edge;
    }
}

#[test]
fn the_door_open_count_never_decreases_and_doors_rarely_stand_open() {
    let mut sensor = SimulatedDoor::new(21);
    let mut last_count = 0;
    let mut open_reads = 0;
    for i in 0..STEPS {
        let fields = sensor.fields_at(INTERVAL * i as u32);
        let count = int(&fields, "open_count");
        assert!(count >= last_count, "{count} after {last_count}");
        last_count = count;
        if boolean(&fields, "door_open") {
            open_reads += 1;
        }
        assert!((0..=100).contains(&int(&fields, "battery_level")));
    }
    assert!(last_count > 100, "only {last_count} openings in 11 days");
    assert!(open_reads < STEPS / 5, "open {open_reads} of {STEPS} reads");
}

#[test]
fn door_events_count_openings_and_time_them_on_close() {
    let mut sensor = SimulatedDoor::new(4);
    sensor.clock.skip = Duration::from_secs(30 * 86_400);
    let events = due_events(&mut sensor, 1000);
    assert_eq!(events.len(), 1000);
    for (i, event) in events.iter().enumerate() {
        let fields = &event.fields;
        if i % 2 == 0 {
            assert_eq!(event.edge, EdgeName::Open);
            assert!(boolean(fields, "door_open"));
            assert_eq!(int(fields, "open_count"), i as i64 / 2 + 1);
        } else {
            assert_eq!(event.edge, EdgeName::Close);
            assert!(!boolean(fields, "door_open"));
            assert!(float(fields, "open_seconds") >= DoorScript::MIN_OPEN);
        }
    }
    // The state seen by `read` at the same moment agrees with the events.
    let fields = sensor.fields_at(sensor.events.next.at - Duration::from_nanos(1));
    assert_eq!(int(&fields, "open_count"), 500);
}

#[test]
fn next_event_waits_no_longer_than_its_timeout() {
    let mut sensor = SimulatedDoor::new(1);
    // Push the next opening far away.
    sensor.events.next.at = Duration::from_secs(3600);
    let started = Instant::now();
    assert_eq!(sensor.next_event(Duration::from_millis(20)).unwrap(), None);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(20) && waited < Duration::from_secs(1));
}

#[test]
fn next_event_sleeps_until_an_edge_that_is_due_soon() {
    let mut sensor = SimulatedMotion::new(1);
    sensor.events.next.at = sensor.clock.now() + Duration::from_millis(30);
    let started = Instant::now();
    let event = sensor.next_event(Duration::from_secs(5)).unwrap();
    let expected = Event {
        edge: EdgeName::Motion,
        fields: vec![("motion_detected", Value::Bool(true))],
    };
    assert_eq!(event, Some(expected));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(25) && waited < Duration::from_secs(2));
}
