//! Times and ages as `status` prints them: RFC 3339 in UTC (`2026-12-01T15:04:05Z`), which
//! sorts, greps and pastes into any tool, and an age in the two largest units (`3m 12s`).

const NS_PER_S: i64 = 1_000_000_000;

/// A wall-clock time in nanoseconds since the Unix epoch, as RFC 3339 UTC to the second.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_S);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// A time with its age: `2026-12-01T15:04:05Z (3m 12s ago)`.
pub fn time_and_age(at_ns: i64, now_ns: i64) -> String {
    format!("{} ({} ago)", rfc3339(at_ns), age(now_ns - at_ns))
}

/// An age in its two largest units: `42s`, `3m 12s`, `2h 5m`, `2d 7h`. A negative age
/// (a clock that went back) reads as `0s`.
pub fn age(ns: i64) -> String {
    let s = ns.max(0) / NS_PER_S;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796137445`
        assert_eq!(rfc3339(1_796_137_445 * NS_PER_S), "2026-12-01T15:04:05Z");
        assert_eq!(rfc3339(951_782_400 * NS_PER_S), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(1_796_137_445 * NS_PER_S + 999_999_999),
            "2026-12-01T15:04:05Z"
        );
    }

    #[test]
    fn ages_read_in_their_two_largest_units() {
        let s = NS_PER_S;
        assert_eq!(age(59 * s), "59s");
        assert_eq!(age((3 * 60 + 12) * s), "3m 12s");
        assert_eq!(age((3 * 3600 + 5 * 60) * s), "3h 5m");
        assert_eq!(age((2 * 86_400 + 7 * 3600) * s), "2d 7h");
        assert_eq!(age(-5 * s), "0s");
        let now = 1_796_137_445 * s;
        assert_eq!(
            time_and_age(now - 192 * s, now),
            "2026-12-01T15:00:53Z (3m 12s ago)"
        );
    }
}
