//! Human units in board files: durations like `"10s"` and sizes like `"64MiB"`, read with
//! an upper bound (so no later clock arithmetic can overflow) and written back the same way.

use std::time::Duration;

/// The longest duration anything accepts: 100 years. Added to a clock reading it still fits
/// in i64 nanoseconds (which run out after 292 years), so no timer or deadline can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);
/// The largest size anything accepts: 1 TiB, far above any SD card, and exact in an f64.
pub const MAX_SIZE: u64 = 1 << 40;

/// Parse `"10ms"`, `"5s"`, `"2m"`, `"1h"`, `"7d"` (one number, one unit), at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; expected a duration like \"10s\", \"500ms\", \"5m\", \"1h\" or \"7d\""))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration; expected a number and a unit like \"10s\"")
    })?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; expected ms, s, m, h or d"
            ))
        }
    };
    let seconds = number * seconds_per_unit;
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "`{text}` is too long; a duration is at most 100 years (\"36500d\")"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parse `"64MiB"`, `"1MB"`, `"512KiB"`, `"1048576"` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a size; expected a number and a unit like \"64MiB\"")
    })?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; expected B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    let bytes = number * multiplier as f64;
    if bytes > MAX_SIZE as f64 {
        return Err(format!(
            "`{text}` is too large; a size is at most 1024GiB (1 TiB)"
        ));
    }
    Ok(bytes as u64)
}

/// A duration as a board file writes it: the largest unit that says it exactly (`"30d"`,
/// `"10s"`, `"250ms"`), or seconds with a fraction.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos % 1_000_000 != 0 {
        return format!("{}s", duration.as_secs_f64());
    }
    let ms = nanos / 1_000_000;
    let units: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    for (size, unit) in units {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A size as a board file writes it: whole binary units where exact (`"64MiB"`), else the
/// largest unit it reaches with one decimal (`"2.1MiB"`), bytes below 1 KiB.
pub fn format_size(bytes: u64) -> String {
    let units: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in units {
        if bytes >= size {
            return if bytes % size == 0 {
                format!("{}{unit}", bytes / size)
            } else {
                format!("{:.1}{unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes}B")
}

/// Serde adapter so a board file's duration strings deserialize with an error at their line.
pub mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let text = String::deserialize(d)?;
            super::super::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom)
        }
    }
}

/// Serde adapter for sizes.
pub mod size {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_size(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
    }

    #[test]
    fn durations_past_100_years_are_refused_not_a_panic() {
        let huge = parse_duration("99999999999999999999999ms").unwrap_err();
        assert!(huge.contains("at most 100 years"), "{huge}");
        assert!(parse_duration("36501d").is_err());
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
        let sizes = parse_size("99999999999999999999999GiB").unwrap_err();
        assert!(sizes.contains("at most 1024GiB"), "{sizes}");
        assert_eq!(parse_size("1024GiB").unwrap(), MAX_SIZE);
    }

    #[test]
    fn durations_and_sizes_are_written_as_a_board_file_writes_them() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_secs(30 * 86400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(2_202_009), "2.1MiB");
        assert_eq!(format_size(512), "512B");
        for text in ["10s", "30d", "64MiB", "512KiB"] {
            let round = match parse_duration(text) {
                Ok(d) => format_duration(d),
                Err(_) => format_size(parse_size(text).unwrap()),
            };
            assert_eq!(round, text);
        }
    }

    #[test]
    fn sizes_read_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("5 bananas").is_err());
    }
}
