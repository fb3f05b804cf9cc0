//! The InfluxDB HTTP output: a batch goes to the write endpoint of the configured API (v1, v2
//! or v3, see `endpoint`) over the `transport`, and each reply becomes an `Answer`. InfluxDB
//! 1.x, 2.x and 3.x say the same things in different words (see DESIGN.md, "Partial writes and
//! rejections"); this is the one place that knows their words.

use super::answer::Answer;
use super::endpoint::Endpoint;
use super::output::Output;
use super::transport::{Reply, Transport};
use std::time::Duration;

/// InfluxDB over HTTP: where to write and how to authenticate, and the connection.
pub struct InfluxHttp<T: Transport> {
    endpoint: Endpoint,
    transport: T,
}

impl<T: Transport> InfluxHttp<T> {
    pub fn new(endpoint: Endpoint, transport: T) -> InfluxHttp<T> {
        InfluxHttp {
            endpoint,
            transport,
        }
    }
}

impl<T: Transport> Output for InfluxHttp<T> {
    fn gzip(&self) -> bool {
        self.endpoint.gzip
    }

    fn send(&mut self, body: &[u8], wall_ns: i64) -> Answer {
        let headers = match self.endpoint.headers() {
            Ok(headers) => headers,
            Err(e) => {
                return Answer::Misconfigured {
                    reason: format!("waiting for token: {}", super::error_chain(&e)),
                }
            }
        };
        match self.transport.post(&self.endpoint.url, &headers, body) {
            Ok(reply) => answer(&reply, wall_ns),
            Err(e) => Answer::Unavailable {
                reason: super::error_chain(&e),
                retry_after: None,
            },
        }
    }
}

/// What an InfluxDB reply means. `now_ns`: the wall clock, for a `Retry-After` date.
pub fn answer(reply: &Reply, now_ns: i64) -> Answer {
    let message = error_message(&reply.body);
    match reply.status {
        200..=299 => Answer::Accepted,
        413 => Answer::TooLarge,
        401 | 403 => Answer::Unauthorized { message },
        404 => Answer::NotFound { message },
        400 | 422 => {
            if let Some(rejected) = v3_rejected_lines(&reply.body) {
                return Answer::Lines { rejected, message };
            }
            if message.contains("partial write")
                && (reply.status == 422 || message.contains("dropped="))
            {
                return Answer::Partial {
                    dropped: dropped_count(&message),
                    message,
                };
            }
            Answer::Rejected { message }
        }
        429 | 503 => Answer::Unavailable {
            reason: format!("HTTP {}: {message}", reply.status),
            retry_after: reply
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, now_ns)),
        },
        status => Answer::Unavailable {
            reason: format!("HTTP {status}: {message}"),
            retry_after: None,
        },
    }
}

/// The human part of an error body: `error` (1.x, 3.x) or `message` (2.x), else the raw text.
/// Bodies carry no Content-Type even when they are JSON, so try JSON first regardless.
fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| v.get("error").or_else(|| v.get("message")))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().to_string());
    text.chars().take(500).collect()
}

/// InfluxDB 3 partial write: `"data": [{"error_message": …, "line_number": N, …}]` (1-based).
fn v3_rejected_lines(body: &str) -> Option<Vec<(usize, String)>> {
    let parsed: serde_json::Value = serde_json::from_str(body).ok()?;
    let items = parsed.get("data")?.as_array()?;
    let lines: Vec<(usize, String)> = items
        .iter()
        .filter_map(|item| {
            let number = item.get("line_number")?.as_u64()?;
            let message = item
                .get("error_message")
                .and_then(|m| m.as_str())
                .unwrap_or("rejected");
            Some((number.checked_sub(1)? as usize, message.to_string()))
        })
        .collect();
    (!lines.is_empty()).then_some(lines)
}

fn dropped_count(message: &str) -> Option<usize> {
    let rest = &message[message.rfind("dropped=")? + "dropped=".len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3), measured from
/// `now_ns` on the wall clock.
pub fn parse_retry_after(value: &str, now_ns: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when_ns = parse_http_date(value)?.checked_mul(1_000_000_000)?;
    Some(Duration::from_nanos(
        u64::try_from(when_ns.saturating_sub(now_ns)).unwrap_or(0),
    ))
}

/// IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers must send; seconds
/// since the Unix epoch.
fn parse_http_date(value: &str) -> Option<i64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Answer {
        answer(
            &Reply {
                status,
                retry_after: None,
                body: body.into(),
            },
            0,
        )
    }

    #[test]
    fn a_v1_type_conflict_is_a_partial_write_with_its_dropped_count() {
        let body = r#"{"error":"partial write: field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type integer dropped=3"}"#;
        assert!(matches!(
            reply(400, body),
            Answer::Partial {
                dropped: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn a_v3_partial_write_names_the_rejected_lines() {
        let body = r#"{"error":"partial write of line protocol occurred","data":[{"error_message":"bad","line_number":2,"original_line":"m v=\"x\" 1"},{"error_message":"worse","line_number":5,"original_line":"m"}]}"#;
        assert_eq!(
            reply(400, body),
            Answer::Lines {
                rejected: vec![(1, "bad".into()), (4, "worse".into())],
                message: "partial write of line protocol occurred".into()
            }
        );
    }

    #[test]
    fn a_whole_request_rejection_asks_for_bisection() {
        let body =
            r#"{"code":"invalid","message":"write buffer error: line protocol parse failed: x"}"#;
        assert_eq!(
            reply(400, body),
            Answer::Rejected {
                message: "write buffer error: line protocol parse failed: x".into()
            }
        );
        let v3_strict = r#"{"error":"line protocol parsing error","data":{"error_message":"x","line_number":1}}"#;
        assert!(matches!(reply(400, v3_strict), Answer::Rejected { .. }));
    }

    #[test]
    fn a_2x_422_is_a_partial_write() {
        let body = r#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=1"}"#;
        assert!(matches!(
            reply(422, body),
            Answer::Partial {
                dropped: Some(1),
                ..
            }
        ));
    }

    #[test]
    fn statuses_map_to_their_answers() {
        assert_eq!(reply(204, ""), Answer::Accepted);
        assert_eq!(
            reply(413, "max request size (10 bytes) exceeded"),
            Answer::TooLarge
        );
        assert!(
            matches!(reply(401, r#"{"error":"authorization failed"}"#), Answer::Unauthorized { message } if message == "authorization failed")
        );
        assert!(matches!(
            reply(404, r#"{"error":"database not found: \"iot\""}"#),
            Answer::NotFound { .. }
        ));
        assert!(matches!(
            reply(500, "boom"),
            Answer::Unavailable {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = 784_111_777 * 1_000_000_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let after_2038 = 2_214_131_696 * 1_000_000_000; // Wed, 29 Feb 2040 12:34:56 GMT
        assert_eq!(
            parse_retry_after("Wed, 29 Feb 2040 12:36:56 GMT", after_2038),
            Some(Duration::from_secs(120))
        );
        let r = Reply {
            status: 503,
            retry_after: Some("7".into()),
            body: String::new(),
        };
        assert!(
            matches!(answer(&r, now), Answer::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
    }
}
