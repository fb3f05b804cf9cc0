//! A property test of the encoder against an independent parser (IOx's
//! `influxdb-line-protocol`): any measurement, tags and field the board check accepts come back
//! byte-exact; everything else is refused by the board check or dropped (and counted) by the
//! encoder. A seeded generator, so a failure names its case and replays.

use super::{push_field, push_line, series_key};
use crate::config::{check_board_tag, check_measurement};
use crate::reading::Value;
use crate::rng::Rng;
use influxdb_line_protocol::{parse_lines, FieldValue};
use std::collections::BTreeMap;

/// Plain characters first (the generator favours them, so most cases pass the board check),
/// then the characters line protocol treats specially, and a few it does not.
const PLAIN: usize = 8;
const ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', '9', '_', '-', '.', ' ', ',', '=', '\\', '"', '#', '\n', '\r', '\t', 'é',
    '✓', '\'',
];

fn text(rng: &mut Rng, max_len: u64) -> String {
    let len = rng.next_u64() % (max_len + 1);
    (0..len)
        .map(|_| {
            let from = if rng.chance(0.8) {
                PLAIN
            } else {
                ALPHABET.len()
            };
            ALPHABET[(rng.next_u64() % from as u64) as usize]
        })
        .collect()
}

fn value(rng: &mut Rng) -> Value {
    match rng.next_u64() % 5 {
        0 => Value::Float(f64::from_bits(rng.next_u64())),
        1 => Value::Float(rng.range(-1e6, 1e6)),
        2 => Value::Int(rng.next_u64() as i64),
        3 => Value::Bool(rng.chance(0.5)),
        _ => Value::Str(text(rng, 12)),
    }
}

/// One generated line: accepted by the board check and encoded, or `None` when refused/dropped.
struct Case {
    measurement: String,
    tags: BTreeMap<String, String>,
    field: (String, Value),
    time_ns: i64,
}

fn generate(rng: &mut Rng) -> Case {
    let tags = (0..rng.next_u64() % 4)
        .map(|_| (text(rng, 6), text(rng, 8)))
        .collect();
    // Field names are chosen by the drivers, never by a board: plain names plus some escapes.
    let name = ["temperature", "door open", "a,b", "x=y", "é"][(rng.next_u64() % 5) as usize];
    Case {
        measurement: text(rng, 8),
        tags,
        field: (name.to_string(), value(rng)),
        time_ns: rng.next_u64() as i64,
    }
}

fn accepted_by_board_check(case: &Case) -> bool {
    check_measurement(&case.measurement).is_ok()
        && case.tags.iter().all(|(k, v)| check_board_tag(k, v).is_ok())
}

/// Encode, parse back with the independent parser, and compare every part exactly.
fn assert_round_trips(seed: u64, case: &Case, field_set: &str) {
    let mut line = Vec::new();
    push_line(
        &mut line,
        &series_key(&case.measurement, &case.tags),
        field_set,
        case.time_ns,
    );
    let line = String::from_utf8(line).unwrap();
    let parsed = parse_lines(&line)
        .next()
        .unwrap_or_else(|| panic!("case {seed}: no line in {line:?}"))
        .unwrap_or_else(|e| panic!("case {seed}: {line:?} does not parse: {e}"));
    assert_eq!(
        parsed.series.measurement.as_str(),
        case.measurement,
        "case {seed}: {line:?}"
    );
    let tags: BTreeMap<String, String> = parsed
        .series
        .tag_set
        .iter()
        .flatten()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(tags, case.tags, "case {seed}: {line:?}");
    assert_eq!(parsed.field_set.len(), 1, "case {seed}: {line:?}");
    let (name, parsed_value) = &parsed.field_set[0];
    assert_eq!(name.as_str(), case.field.0, "case {seed}: {line:?}");
    let same = match (&case.field.1, parsed_value) {
        (Value::Float(a), FieldValue::F64(b)) => a.to_bits() == b.to_bits(),
        (Value::Int(a), FieldValue::I64(b)) => a == b,
        (Value::Bool(a), FieldValue::Boolean(b)) => a == b,
        (Value::Str(a), FieldValue::String(b)) => a == b.as_str(),
        _ => false,
    };
    assert!(
        same,
        "case {seed}: {:?} came back as {parsed_value:?} from {line:?}",
        case.field.1
    );
    assert_eq!(
        parsed.timestamp,
        Some(case.time_ns),
        "case {seed}: {line:?}"
    );
}

#[test]
fn what_the_board_check_accepts_round_trips_byte_exact_through_an_independent_parser() {
    let (mut round_tripped, mut refused, mut dropped) = (0, 0, 0);
    for seed in 0..5000u64 {
        let mut rng = Rng::new(seed);
        let case = generate(&mut rng);
        if !accepted_by_board_check(&case) {
            refused += 1;
            continue;
        }
        let mut field_set = String::new();
        if !push_field(&mut field_set, &case.field.0, &case.field.1) {
            // Only values line protocol cannot carry are dropped (and counted by the caller).
            assert!(
                matches!(&case.field.1, Value::Float(v) if !v.is_finite())
                    || matches!(&case.field.1, Value::Str(s) if s.contains(['\n', '\r'])),
                "case {seed}: {:?} was dropped",
                case.field.1
            );
            dropped += 1;
            continue;
        }
        assert_round_trips(seed, &case, &field_set);
        round_tripped += 1;
    }
    // The generator must exercise both sides, or the test proves nothing.
    assert!(
        round_tripped > 1000 && refused > 1000,
        "{round_tripped} {refused} {dropped}"
    );
}
