//! Human units in board files: durations like `"10s"` and sizes like `"64MiB"`.

use std::time::Duration;

/// Parse `"10ms"`, `"5s"`, `"2m"`, `"1h"`, `"7d"` (one number, one unit).
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
    Ok(Duration::from_secs_f64(number * seconds_per_unit))
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
    Ok((number * multiplier as f64) as u64)
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
    fn sizes_read_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("5 bananas").is_err());
    }
}
