//! Reading line protocol back: what a line says and what the server stored, in one comparable
//! shape ([`Point`]), parsed independently of the crate's own writer so it can check that
//! writer, and an assertion that names the points that went missing.

use serde_json::Value;
use std::collections::BTreeMap;

/// A field value as both sides can express it. InfluxDB 1.x answers JSON, where `21.0` and
/// `21i` both come back as `21`, so numbers compare by value (written in Rust's shortest
/// round-trip form), not by type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Num(String),
    Bool(bool),
    Str(String),
}

impl Field {
    fn num(value: f64) -> Field {
        Field::Num(format!("{value}"))
    }

    pub fn from_json(value: &Value) -> Field {
        match value {
            Value::Bool(b) => Field::Bool(*b),
            Value::String(s) => Field::Str(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Field::num(i as f64),
                None => Field::num(n.as_f64().expect("a number")),
            },
            other => panic!("unexpected field value {other}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub time_ns: i64,
    pub fields: BTreeMap<String, Field>,
}

/// Parse one line of line protocol (as fieldlink writes it: explicit timestamp). Written from
/// the InfluxDB docs, independently of the crate's own writer, so it can check that writer.
pub fn parse_line(line: &str) -> Point {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    // Read until an unescaped delimiter; `\` escapes only the listed characters (and itself in
    // string fields), otherwise it is literal.
    let read_token = |i: &mut usize, stops: &[char], escapable: &[char]| -> String {
        let mut out = String::new();
        while *i < chars.len() && !stops.contains(&chars[*i]) {
            if chars[*i] == '\\' && *i + 1 < chars.len() && escapable.contains(&chars[*i + 1]) {
                out.push(chars[*i + 1]);
                *i += 2;
            } else {
                out.push(chars[*i]);
                *i += 1;
            }
        }
        out
    };
    let measurement = read_token(&mut i, &[',', ' '], &[',', ' ', '\\']);
    let mut tags = BTreeMap::new();
    while i < chars.len() && chars[i] == ',' {
        i += 1;
        let key = read_token(&mut i, &['='], &[',', '=', ' ']);
        i += 1;
        let value = read_token(&mut i, &[',', ' '], &[',', '=', ' ']);
        tags.insert(key, value);
    }
    assert_eq!(chars.get(i), Some(&' '), "no field set in `{line}`");
    i += 1;
    let mut fields = BTreeMap::new();
    loop {
        let key = read_token(&mut i, &['='], &[',', '=', ' ']);
        i += 1;
        let value = if chars.get(i) == Some(&'"') {
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && matches!(chars.get(i + 1), Some('"') | Some('\\')) {
                    s.push(chars[i + 1]);
                    i += 2;
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            i += 1;
            Field::Str(s)
        } else {
            let raw = read_token(&mut i, &[',', ' '], &[]);
            match raw.as_str() {
                "t" | "T" | "true" | "True" | "TRUE" => Field::Bool(true),
                "f" | "F" | "false" | "False" | "FALSE" => Field::Bool(false),
                _ if raw.ends_with('i') || raw.ends_with('u') => Field::num(
                    raw[..raw.len() - 1]
                        .parse::<i128>()
                        .unwrap_or_else(|_| panic!("bad integer `{raw}` in `{line}`"))
                        as f64,
                ),
                _ => Field::num(
                    raw.parse::<f64>()
                        .unwrap_or_else(|_| panic!("bad float `{raw}` in `{line}`")),
                ),
            }
        };
        fields.insert(key, value);
        match chars.get(i) {
            Some(',') => i += 1,
            Some(' ') => break,
            other => panic!("unexpected {other:?} after a field in `{line}`"),
        }
    }
    i += 1;
    let time: String = chars[i..].iter().collect();
    Point {
        measurement,
        tags,
        fields,
        time_ns: time
            .parse()
            .unwrap_or_else(|_| panic!("bad timestamp `{time}` in `{line}`")),
    }
}

pub fn parse_lines<S: AsRef<str>>(lines: &[S]) -> Vec<Point> {
    let mut points: Vec<Point> = lines.iter().map(|l| parse_line(l.as_ref())).collect();
    points.sort();
    points
}

/// Points in `expected` that `actual` lacks, for a readable failure.
pub fn missing(expected: &[Point], actual: &[Point]) -> Vec<Point> {
    let have: std::collections::BTreeSet<&Point> = actual.iter().collect();
    expected
        .iter()
        .filter(|p| !have.contains(p))
        .cloned()
        .collect()
}

/// Assert every expected point is present, showing a few of the missing ones and, for the
/// first, the stored points of the same series near its time.
pub fn assert_all_present(expected: &[Point], actual: &[Point], what: &str) {
    let gone = missing(expected, actual);
    if gone.is_empty() {
        return;
    }
    let near: Vec<&Point> = actual
        .iter()
        .filter(|p| p.measurement == gone[0].measurement && p.tags == gone[0].tags)
        .filter(|p| (p.time_ns - gone[0].time_ns).abs() < 1_000_000_000)
        .take(3)
        .collect();
    panic!(
        "{what}: {} of {} expected points are missing from InfluxDB ({} stored).\nFirst missing: {:#?}\nStored near it in the same series: {near:#?}\nMore missing: {:#?}",
        gone.len(),
        expected.len(),
        actual.len(),
        gone[0],
        &gone[1..gone.len().min(4)],
    );
}
