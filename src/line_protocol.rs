//! InfluxDB line protocol, written exactly: `measurement,tag=v field=1i 1700000000000000000`.
//!
//! A reading is split in two halves that are stored apart: the series key (measurement plus
//! sorted tags, the same for every reading of a sensor, stored once in the queue) and the field
//! set (stored per reading). A line is the two joined with the timestamp.

use crate::reading::{Fields, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The series key of one sensor: escaped measurement and tags, tag keys sorted byte-wise as
/// InfluxDB recommends (sorted keys make the server's work cheaper).
pub fn series_key(measurement: &str, tags: &BTreeMap<String, String>) -> String {
    let mut key = String::with_capacity(64);
    escape_into(&mut key, measurement, &[',', ' ']);
    for (name, value) in tags {
        if name.is_empty() || value.is_empty() {
            continue; // InfluxDB cannot store empty tags; config validation refuses them.
        }
        key.push(',');
        escape_into(&mut key, name, &[',', '=', ' ']);
        key.push('=');
        escape_into(&mut key, value, &[',', '=', ' ']);
    }
    key
}

/// The field set of a reading. Fields that line protocol cannot carry (NaN, infinities, line
/// breaks in strings) are left out; the second value says how many were, so they are counted.
/// Returns `None` when no field is left: a line without fields is invalid.
pub fn field_set(fields: &Fields) -> (Option<String>, usize) {
    let mut out = String::with_capacity(16 * fields.len());
    let dropped = fields
        .iter()
        .filter(|(name, value)| !push_field(&mut out, name, value))
        .count();
    ((!out.is_empty()).then_some(out), dropped)
}

/// Append `name=value` to a field set (with a comma when it is not the first). Returns false,
/// writing nothing, for a value line protocol cannot carry (NaN, infinity, a line break).
pub fn push_field(out: &mut String, name: &str, value: &Value) -> bool {
    let start = out.len();
    if !out.is_empty() {
        out.push(',');
    }
    escape_into(out, name, &[',', '=', ' ']);
    out.push('=');
    let written = match value {
        Value::Float(v) if v.is_finite() => write!(out, "{v}").is_ok(),
        Value::Float(_) => false,
        Value::Int(v) => write!(out, "{v}i").is_ok(),
        Value::UInt(v) => write!(out, "{v}u").is_ok(),
        Value::Bool(v) => {
            out.push_str(if *v { "true" } else { "false" });
            true
        }
        Value::Str(s) if s.contains(['\n', '\r']) => false,
        Value::Str(s) => {
            out.push('"');
            escape_into(out, s, &['"', '\\']);
            out.push('"');
            true
        }
    };
    if !written {
        out.truncate(start);
    }
    written
}

/// Append one complete line (without the trailing newline).
pub fn push_line(out: &mut Vec<u8>, series_key: &str, field_set: &str, time_ns: i64) {
    out.extend_from_slice(series_key.as_bytes());
    out.push(b' ');
    out.extend_from_slice(field_set.as_bytes());
    out.push(b' ');
    let _ = write!(ByteWriter(out), "{time_ns}");
}

/// The length `push_line` will write, so batches can be bounded before they are built.
pub fn line_len(series_key: &str, field_set: &str, time_ns: i64) -> usize {
    let digits = time_ns
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1);
    series_key.len() + 1 + field_set.len() + 1 + digits + usize::from(time_ns < 0)
}

/// Lets `write!` format integers straight into a byte buffer, with no temporary String.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn escape_into(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        // Line breaks cannot be escaped in names or tags; config validation keeps them out of
        // tags, and here they become spaces rather than split a line in two.
        if c == '\n' || c == '\r' {
            out.push_str(if special.contains(&' ') { "\\ " } else { " " });
            continue;
        }
        out.push(c);
    }
}

/// Parse a field set this module wrote back into (name, value) pairs, for downsampling.
pub fn parse_field_set(text: &str) -> Vec<(String, Value)> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut name = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => name.extend(chars.next()),
                '=' => break,
                _ => name.push(c),
            }
        }
        if name.is_empty() {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => s.extend(chars.next()),
                    '"' => break,
                    _ => s.push(c),
                }
            }
            chars.next(); // the comma after the closing quote, if any
            Value::Str(s)
        } else {
            let raw: String = chars.by_ref().take_while(|&c| c != ',').collect();
            parse_scalar(&raw)
        };
        fields.push((name, value));
    }
    fields
}

fn parse_scalar(raw: &str) -> Value {
    if let Some(int) = raw.strip_suffix('i') {
        return int
            .parse()
            .map(Value::Int)
            .unwrap_or(Value::Str(raw.into()));
    }
    if let Some(uint) = raw.strip_suffix('u') {
        return uint
            .parse()
            .map(Value::UInt)
            .unwrap_or(Value::Str(raw.into()));
    }
    match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => raw
            .parse()
            .map(Value::Float)
            .unwrap_or(Value::Str(raw.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags_are_sorted_and_escaped() {
        let key = series_key(
            "iot metrics,x",
            &tags(&[("zone", "cold store"), ("a=b", "c,d")]),
        );
        assert_eq!(key, r"iot\ metrics\,x,a\=b=c\,d,zone=cold\ store");
    }

    #[test]
    fn equals_in_a_measurement_is_not_escaped() {
        assert_eq!(series_key("a=b", &BTreeMap::new()), "a=b");
    }

    #[test]
    fn backslashes_in_tags_are_written_raw() {
        assert_eq!(
            series_key("m", &tags(&[("path", r"C:\temp")])),
            r"m,path=C:\temp"
        );
    }

    #[test]
    fn field_types_get_their_suffixes() {
        let fields: Fields = vec![
            ("temperature", Value::Float(21.5)),
            ("battery_level", Value::Int(87)),
            ("count", Value::UInt(3)),
            ("door_open", Value::Bool(true)),
            ("note", Value::Str(r#"say "hi" \ bye"#.into())),
        ];
        let (set, dropped) = field_set(&fields);
        assert_eq!(
            set.unwrap(),
            r#"temperature=21.5,battery_level=87i,count=3u,door_open=true,note="say \"hi\" \\ bye""#
        );
        assert_eq!(dropped, 0);
    }

    #[test]
    fn nan_and_infinity_are_dropped_and_counted() {
        let fields: Fields = vec![
            ("a", Value::Float(f64::NAN)),
            ("b", Value::Float(1.0)),
            ("c", Value::Float(f64::INFINITY)),
        ];
        assert_eq!(field_set(&fields), (Some("b=1".to_string()), 2));
        assert_eq!(field_set(&vec![("a", Value::Float(f64::NAN))]), (None, 1));
    }

    #[test]
    fn whole_floats_stay_floats_without_exponents() {
        let (set, _) = field_set(&vec![
            ("a", Value::Float(20.0)),
            ("b", Value::Float(1e21)),
            ("c", Value::Float(-0.000001)),
        ]);
        assert_eq!(set.unwrap(), "a=20,b=1000000000000000000000,c=-0.000001");
    }

    #[test]
    fn a_line_joins_key_fields_and_time() {
        let mut out = Vec::new();
        push_line(&mut out, "m,t=1", "f=1i", 1_700_000_000_000_000_000);
        assert_eq!(out, b"m,t=1 f=1i 1700000000000000000");
        assert_eq!(
            line_len("m,t=1", "f=1i", 1_700_000_000_000_000_000),
            out.len()
        );
        assert_eq!(line_len("m", "f=1i", 0), 8);
        assert_eq!(line_len("m", "f=1i", -10), 10);
    }

    #[test]
    fn a_timestamp_after_2038_is_written_in_full() {
        // 2040-02-29T12:34:56.123456789Z: past the 32-bit time_t limit, on every target.
        let time_ns = 2_214_131_696_123_456_789;
        let mut out = Vec::new();
        push_line(&mut out, "m", "f=1i", time_ns);
        assert_eq!(out, b"m f=1i 2214131696123456789");
        assert_eq!(line_len("m", "f=1i", time_ns), out.len());
    }

    #[test]
    fn field_sets_parse_back_to_what_was_written() {
        let fields: Fields = vec![
            ("t,x", Value::Float(-3.25)),
            ("n", Value::Int(-7)),
            ("b", Value::Bool(false)),
            ("s", Value::Str(r#"a,"b"=\c"#.into())),
            ("u", Value::UInt(9)),
        ];
        let (set, _) = field_set(&fields);
        let parsed = parse_field_set(&set.unwrap());
        let expected: Vec<(String, Value)> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(parsed, expected);
    }
}

#[cfg(test)]
mod round_trip_tests;
