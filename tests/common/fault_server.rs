//! A fault-injecting HTTP/1.1 server on loopback, standing in for InfluxDB when a test needs an
//! answer the real server will not give on demand: a 503 with `Retry-After`, a reset in the
//! middle of a request, a 413 above a size, a partial write that rejects chosen lines, a slow
//! answer. Each request takes the next [`Script`] from a queue (or the default one when the
//! queue is empty), and everything is recorded: the request line, the headers, the lines of the
//! (gunzipped) body, and which lines the server accepted.
//!
//! std::net only, one thread per connection, keep-alive, `Content-Length` and chunked bodies,
//! `Expect: 100-continue`. The benchmark uses it too ([`FaultServer::counting`]), as the
//! loopback InfluxDB its drains post to, so there is one HTTP test server to keep right.

use flate2::read::GzDecoder;
use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Which lines a partial-write script rejects.
pub type LinePredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What to do with one request.
#[derive(Clone)]
pub enum Action {
    /// Answer with the script's status, headers and body; accept every line on a 2xx.
    Reply,
    /// Read the request head and part of the body, then close the socket with a TCP reset
    /// without answering.
    ResetMidBody,
    /// Answer 413 (plain text, as InfluxDB 1.x and 3.x do) when the decompressed body is over
    /// this many bytes; otherwise accept everything with 204.
    TooLargeOver(usize),
    /// InfluxDB 1.x partial write: 400 `{"error":"partial write: field type conflict: … dropped=N"}`
    /// when a line matches; the other lines are accepted (204 when none matches).
    PartialV1(LinePredicate),
    /// InfluxDB 3.x partial write: 400 with a `data` array naming each rejected line by its
    /// 1-based `line_number`; the other lines are accepted (204 when none matches).
    PartialV3(LinePredicate),
    /// Relay the (decompressed) body to `upstream` + the same path and query, and answer what
    /// it answered. Lines count as accepted on a 2xx.
    Forward(String),
}

/// One scripted answer.
#[derive(Clone)]
pub struct Script {
    pub action: Action,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long after reading the request before answering (or resetting).
    pub delay: Duration,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match &self.action {
            Action::Reply => "reply".to_string(),
            Action::ResetMidBody => "reset mid-body".to_string(),
            Action::TooLargeOver(n) => format!("413 over {n} bytes"),
            Action::PartialV1(_) => "v1 partial write".to_string(),
            Action::PartialV3(_) => "v3 partial write".to_string(),
            Action::Forward(url) => format!("forward to {url}"),
        };
        f.debug_struct("Script")
            .field("action", &action)
            .field("status", &self.status)
            .field("delay", &self.delay)
            .finish()
    }
}

impl Script {
    /// 204 No Content: every line accepted.
    pub fn ok() -> Script {
        Script::status(204)
    }

    /// Answer with this status and an empty body.
    pub fn status(status: u16) -> Script {
        Script {
            action: Action::Reply,
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn reset_mid_body() -> Script {
        Script {
            action: Action::ResetMidBody,
            ..Script::ok()
        }
    }

    pub fn too_large_over(bytes: usize) -> Script {
        Script {
            action: Action::TooLargeOver(bytes),
            ..Script::ok()
        }
    }

    pub fn partial_v1(reject: impl Fn(&str) -> bool + Send + Sync + 'static) -> Script {
        Script {
            action: Action::PartialV1(Arc::new(reject)),
            ..Script::ok()
        }
    }

    pub fn partial_v3(reject: impl Fn(&str) -> bool + Send + Sync + 'static) -> Script {
        Script {
            action: Action::PartialV3(Arc::new(reject)),
            ..Script::ok()
        }
    }

    pub fn forward(upstream: &str) -> Script {
        Script {
            action: Action::Forward(upstream.trim_end_matches('/').to_string()),
            ..Script::ok()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Script {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Script {
        self.body = body.to_string();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Script {
        self.delay = delay;
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/write?db=x&precision=ns`).
    pub target: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// Bytes on the wire (before gunzip).
    pub wire_len: usize,
    /// The decompressed body split on `\n`, less a final newline (empty when the body was cut
    /// off).
    pub lines: Vec<String>,
    /// The status answered; `None` when the connection was reset instead, or while the
    /// answer is still being delayed.
    pub answered: Option<u16>,
    /// The server is done with it (answered or reset). Requests are recorded on arrival, so a
    /// test can see a request the server is still sitting on.
    pub done: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    scripts: VecDeque<Script>,
    default: Option<Script>,
    requests: Vec<Request>,
    accepted: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    /// Gunzip and record each body's lines; off for a benchmark, where that would cost more
    /// than the client being measured.
    keep_bodies: bool,
}

/// The server; it stops accepting when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultServer {
    /// Start on a free loopback port; requests beyond the scripted ones get `default`.
    pub fn start(default: Script) -> FaultServer {
        FaultServer::start_with(default, true)
    }

    /// A server that answers 204 to everything and records only each request's line, headers
    /// and size on the wire ([`Request::wire_len`]), never its lines: cheap enough to stand in
    /// for InfluxDB while a benchmark measures the client.
    pub fn counting() -> FaultServer {
        FaultServer::start_with(Script::ok(), false)
    }

    fn start_with(default: Script, keep_bodies: bool) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                default: Some(default),
                ..State::default()
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            keep_bodies,
        });
        let accept_shared = shared.clone();
        thread::Builder::new()
            .name(format!("fault-server-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let conn_shared = accept_shared.clone();
                    let _ = thread::Builder::new()
                        .name("fault-server-conn".into())
                        .spawn(move || serve(stream, &conn_shared));
                }
            })
            .expect("spawn the accept thread");
        FaultServer { addr, shared }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue scripts for the next requests, in order.
    pub fn push(&self, scripts: impl IntoIterator<Item = Script>) {
        self.lock().scripts.extend(scripts);
    }

    /// What requests get once the queue is empty.
    pub fn set_default(&self, script: Script) {
        self.lock().default = Some(script);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Lines the server accepted, in arrival order (duplicates kept).
    pub fn accepted(&self) -> Vec<String> {
        self.lock().accepted.clone()
    }

    /// Scripts not used yet.
    pub fn pending(&self) -> usize {
        self.lock().scripts.len()
    }

    /// Wait until `done(requests)` holds, or panic with what was seen after `timeout`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state.requests) {
                return state.requests.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<_> = state
                    .requests
                    .iter()
                    .map(|r| (r.target.clone(), r.lines.len(), r.answered))
                    .collect();
                panic!(
                    "fault server: condition not met within {timeout:?}; requests seen: {seen:?}"
                );
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(head) = read_head(&mut reader) else {
            return;
        };
        let script = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.scripts.pop_front() {
                Some(s) => s,
                None => state.default.clone().unwrap_or_else(Script::ok),
            }
        };
        let mut request = Request {
            method: head.method.clone(),
            target: head.target.clone(),
            headers: head.headers.clone(),
            wire_len: 0,
            lines: Vec::new(),
            answered: None,
            done: false,
        };

        if let Action::ResetMidBody = script.action {
            // Take a few bytes of the body (if any), then reset without a word.
            let mut some = [0u8; 16];
            let _ = reader.read(&mut some);
            let index = arrive(shared, request);
            thread::sleep(script.delay);
            reset(reader.get_ref());
            finish(shared, index, None, &[]);
            return;
        }

        if head
            .get("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let Some(wire) = read_body(&mut reader, &head) else {
            return;
        };
        request.wire_len = wire.len();
        let body = match head.get("content-encoding") {
            Some(enc) if shared.keep_bodies && enc.eq_ignore_ascii_case("gzip") => {
                let mut out = Vec::new();
                match GzDecoder::new(&wire[..]).read_to_end(&mut out) {
                    Ok(_) => out,
                    Err(_) => {
                        let index = arrive(shared, request);
                        finish(shared, index, Some(400), &[]);
                        let _ = respond(&mut writer, 400, &[], "{\"error\":\"bad gzip\"}");
                        continue;
                    }
                }
            }
            _ => wire,
        };
        let lines: Vec<String> = if body.is_empty() || !shared.keep_bodies {
            Vec::new()
        } else {
            let text = String::from_utf8_lossy(&body);
            // Line protocol may end in a newline (a body of stored segments does).
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.split('\n').map(str::to_string).collect()
        };
        request.lines = lines.clone();
        let index = arrive(shared, request);
        thread::sleep(script.delay);

        let (status, headers, answer, accepted) = decide(&script, &head, &body, &lines);
        finish(shared, index, Some(status), &accepted);
        let keep_alive = !head
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        if respond(&mut writer, status, &headers, &answer).is_err() || !keep_alive {
            return;
        }
    }
}

type Decision = (u16, Vec<(String, String)>, String, Vec<String>);

fn decide(script: &Script, head: &Head, body: &[u8], lines: &[String]) -> Decision {
    let all = || lines.to_vec();
    match &script.action {
        Action::Reply => {
            let accepted = if (200..300).contains(&script.status) {
                all()
            } else {
                Vec::new()
            };
            (
                script.status,
                script.headers.clone(),
                script.body.clone(),
                accepted,
            )
        }
        Action::ResetMidBody => unreachable!("handled before the body is read"),
        Action::TooLargeOver(limit) if body.len() > *limit => (
            413,
            Vec::new(),
            format!("max request size ({limit} bytes) exceeded"),
            Vec::new(),
        ),
        Action::TooLargeOver(_) => (204, script.headers.clone(), String::new(), all()),
        Action::PartialV1(reject) | Action::PartialV3(reject) => {
            let rejected: Vec<(usize, &String)> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| reject(l))
                .collect();
            let accepted: Vec<String> = lines.iter().filter(|l| !reject(l)).cloned().collect();
            if rejected.is_empty() {
                return (204, script.headers.clone(), String::new(), accepted);
            }
            let answer = if let Action::PartialV1(_) = script.action {
                let first = rejected[0].1;
                serde_json::json!({
                    "error": format!(
                        "partial write: field type conflict: input field \"value\" on measurement \"{}\" is type float, already exists as type string dropped={}",
                        first.split([',', ' ']).next().unwrap_or(""),
                        rejected.len()
                    )
                })
                .to_string()
            } else {
                let data: Vec<_> = rejected
                    .iter()
                    .map(|(i, line)| {
                        serde_json::json!({
                            "error_message": "invalid column type for column 'value', expected Float, got String",
                            "line_number": i + 1,
                            // InfluxDB 3 cuts the echoed line to 20 bytes.
                            "original_line": line.chars().take(20).collect::<String>(),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "error": "partial write of line protocol occurred",
                    "data": data,
                })
                .to_string()
            };
            (400, script.headers.clone(), answer, accepted)
        }
        Action::Forward(upstream) => forward(upstream, head, body, lines),
    }
}

fn forward(upstream: &str, head: &Head, body: &[u8], lines: &[String]) -> Decision {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("{upstream}{}", head.target);
    let result = match head.method.as_str() {
        "GET" => agent.get(&url).call(),
        _ => agent
            .post(&url)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(body),
    };
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let accepted = if (200..300).contains(&status) {
                lines.to_vec()
            } else {
                Vec::new()
            };
            (status, Vec::new(), text, accepted)
        }
        Err(e) => (
            502,
            Vec::new(),
            format!("{{\"error\":\"fault server could not reach {upstream}: {e}\"}}"),
            Vec::new(),
        ),
    }
}

/// Record a request as it arrives; its index for [`finish`].
fn arrive(shared: &Shared, request: Request) -> usize {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.requests.push(request);
    shared.changed.notify_all();
    state.requests.len() - 1
}

fn finish(shared: &Shared, index: usize, answered: Option<u16>, accepted: &[String]) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.requests[index].answered = answered;
    state.requests[index].done = true;
    state.accepted.extend_from_slice(accepted);
    shared.changed.notify_all();
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut line = String::new();
    // Skip stray empty lines between requests (RFC 9112 §2.2).
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(Head {
        method,
        target,
        headers,
    })
}

fn read_body(reader: &mut BufReader<TcpStream>, head: &Head) -> Option<Vec<u8>> {
    if head
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size_text = size_line.trim().split(';').next()?.to_string();
            let size = usize::from_str_radix(&size_text, 16).ok()?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                return Some(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).ok()?;
        }
    }
    let len: usize = head
        .get("content-length")
        .map(|v| v.parse().ok())
        .unwrap_or(Some(0))?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn respond(
    writer: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if status != 204 && status != 304 {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    if status != 204 && status != 304 {
        out.push_str(body);
    }
    writer.write_all(out.as_bytes())?;
    writer.flush()
}

/// Arrange for the coming close to send RST rather than FIN (SO_LINGER 0), the way a crashing
/// proxy or a dropped NAT mapping looks to the client. The caller then drops every handle.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
