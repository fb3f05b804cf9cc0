//! The fault-injecting server the end-to-end tests lean on, checked on its own: if it lied, the
//! uploader tests built on it would prove nothing.

#[path = "common/fault_server.rs"]
#[allow(dead_code)]
mod fault_server;

use fault_server::{FaultServer, Script};
use flate2::{write::GzEncoder, Compression};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// POST a gzip body; (status, Retry-After, body).
fn post(
    agent: &ureq::Agent,
    url: &str,
    text: &str,
) -> Result<(u16, Option<String>, String), ureq::Error> {
    let mut response = agent
        .post(url)
        .header("Content-Encoding", "gzip")
        .send(&gzip(text)[..])?;
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    Ok((status, retry, body))
}

const LINES: &str = "m,s=a v=1 1\nm,s=b v=2 2\nm,s=a v=3 3\nm,s=c v=4 4";

#[test]
fn a_gzip_body_is_recorded_line_by_line_and_accepted() {
    let server = FaultServer::start(Script::ok());
    let (status, _, _) = post(
        &agent(),
        &format!("{}/write?db=x&precision=ns", server.url()),
        LINES,
    )
    .unwrap();
    assert_eq!(status, 204);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].target, "/write?db=x&precision=ns");
    assert_eq!(requests[0].header("Content-Encoding"), Some("gzip"));
    assert_eq!(requests[0].lines.len(), 4);
    assert_eq!(server.accepted(), LINES.lines().collect::<Vec<_>>());
}

#[test]
fn scripts_are_used_in_order_then_the_default() {
    let server = FaultServer::start(Script::ok());
    server.push([
        Script::status(503).header("Retry-After", "7"),
        Script::status(401).body("{\"error\":\"authorization failed\"}"),
    ]);
    let agent = agent();
    let url = format!("{}/write?db=x", server.url());
    assert_eq!(post(&agent, &url, LINES).unwrap().0, 503);
    assert_eq!(post(&agent, &url, LINES).unwrap().1, None);
    assert_eq!(post(&agent, &url, LINES).unwrap().0, 204);
    let answered: Vec<_> = server.requests().iter().map(|r| r.answered).collect();
    assert_eq!(answered, [Some(503), Some(401), Some(204)]);
    assert_eq!(server.accepted().len(), 4, "only the 2xx request's lines");
}

#[test]
fn retry_after_is_sent_as_scripted() {
    let server = FaultServer::start(Script::status(429).header("Retry-After", "3"));
    let (status, retry, _) = post(&agent(), &server.url(), LINES).unwrap();
    assert_eq!((status, retry.as_deref()), (429, Some("3")));
}

#[test]
fn a_reset_mid_body_gives_the_client_no_answer() {
    let server = FaultServer::start(Script::ok());
    server.push([Script::reset_mid_body()]);
    let agent = agent();
    let big: String = (0..20_000).map(|i| format!("m v={i} {i}\n")).collect();
    assert!(post(&agent, &server.url(), big.trim_end()).is_err());
    assert_eq!(server.requests()[0].answered, None);
    assert_eq!(post(&agent, &server.url(), LINES).unwrap().0, 204);
}

#[test]
fn a_body_over_the_limit_after_gunzip_gets_413() {
    let server = FaultServer::start(Script::too_large_over(30));
    let agent = agent();
    let (status, _, body) = post(&agent, &server.url(), LINES).unwrap();
    assert_eq!(status, 413);
    assert!(
        body.contains("max request size (30 bytes) exceeded"),
        "{body}"
    );
    assert_eq!(post(&agent, &server.url(), "m v=1 1").unwrap().0, 204);
    assert_eq!(server.accepted(), ["m v=1 1"]);
}

#[test]
fn a_v1_partial_write_rejects_matching_lines_and_keeps_the_rest() {
    let server = FaultServer::start(Script::partial_v1(|l| l.contains("s=a")));
    let (status, _, body) = post(&agent(), &server.url(), LINES).unwrap();
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let error = json["error"].as_str().unwrap();
    assert!(
        error.starts_with("partial write: field type conflict:"),
        "{error}"
    );
    assert!(error.ends_with("dropped=2"), "{error}");
    assert_eq!(server.accepted(), ["m,s=b v=2 2", "m,s=c v=4 4"]);
}

#[test]
fn a_v3_partial_write_names_rejected_lines_by_number() {
    let server = FaultServer::start(Script::partial_v3(|l| l.contains("s=a")));
    let (status, _, body) = post(&agent(), &server.url(), LINES).unwrap();
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "partial write of line protocol occurred");
    let numbers: Vec<_> = json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["line_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);
    assert_eq!(json["data"][0]["original_line"], "m,s=a v=1 1");
    assert_eq!(server.accepted(), ["m,s=b v=2 2", "m,s=c v=4 4"]);
}

#[test]
fn a_partial_write_with_nothing_to_reject_is_a_plain_204() {
    let server = FaultServer::start(Script::partial_v1(|l| l.contains("nope")));
    assert_eq!(post(&agent(), &server.url(), LINES).unwrap().0, 204);
    assert_eq!(server.accepted().len(), 4);
}

#[test]
fn a_connection_is_kept_alive_across_requests() {
    let server = FaultServer::start(Script::ok());
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for body in ["m v=1 1", "m v=2 2"] {
        write!(
            stream,
            "POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = [0u8; 128];
        let n = stream.read(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    }
    assert_eq!(server.accepted(), ["m v=1 1", "m v=2 2"]);
}

#[test]
fn a_chunked_body_is_read_too() {
    let server = FaultServer::start(Script::ok());
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST /write HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nm v=\r\n3\r\n1 1\r\n0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert_eq!(server.accepted(), ["m v=1 1"]);
}

#[test]
fn a_delayed_answer_arrives_late() {
    let server = FaultServer::start(Script::ok().delay(Duration::from_millis(300)));
    let start = Instant::now();
    assert_eq!(post(&agent(), &server.url(), LINES).unwrap().0, 204);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn wait_for_returns_once_the_condition_holds() {
    let server = FaultServer::start(Script::ok());
    let url = server.url();
    let client = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        post(&agent(), &url, LINES).unwrap();
    });
    let requests = server.wait_for(Duration::from_secs(5), |r| !r.is_empty());
    assert_eq!(requests.len(), 1);
    client.join().unwrap();
}

#[test]
fn a_counting_server_answers_204_and_records_sizes_but_no_lines() {
    let server = FaultServer::counting();
    let body = gzip(LINES);
    assert_eq!(post(&agent(), &server.url(), LINES).unwrap().0, 204);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].wire_len, body.len());
    assert!(requests[0].lines.is_empty());
    assert!(server.accepted().is_empty());
}

#[test]
fn an_expect_100_continue_gets_its_interim_answer_before_the_body() {
    let server = FaultServer::start(Script::ok());
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"m v=1 1").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert_eq!(server.accepted(), ["m v=1 1"]);
}
