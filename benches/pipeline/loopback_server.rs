//! The loopback InfluxDB stand-in the drains post to.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// HTTP/1.1 with keep-alive on 127.0.0.1: reads each request's body (Content-Length or
/// chunked), counts its bytes and answers 204. It never decompresses, so it costs little next
/// to the client.
pub struct LoopbackServer {
    pub addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
pub struct Received {
    pub bytes: u64,
    pub requests: u64,
}

impl Received {
    pub fn since(&self, before: &Received) -> Received {
        Received {
            bytes: self.bytes - before.bytes,
            requests: self.requests - before.requests,
        }
    }
}

impl LoopbackServer {
    pub fn start() -> LoopbackServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let bytes = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let (b, r) = (bytes.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, r) = (b.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &b, &r);
                });
            }
        });
        LoopbackServer {
            addr,
            bytes,
            requests,
        }
    }

    pub fn snapshot(&self) -> Received {
        Received {
            bytes: self.bytes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

pub fn serve(stream: TcpStream, bytes: &AtomicU64, requests: &AtomicU64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // the client closed the connection
        }
        if line.trim().is_empty() {
            continue;
        }
        let (mut length, mut chunked, mut expect) = (0usize, false, false);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("expect") {
                expect = value.eq_ignore_ascii_case("100-continue");
            }
        }
        if expect {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = if chunked {
            discard_chunked(&mut reader, &mut line)?
        } else {
            discard(&mut reader, length)?;
            length
        };
        bytes.fetch_add(body as u64, Ordering::Relaxed);
        requests.fetch_add(1, Ordering::Relaxed);
        writer.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")?;
    }
}

/// Skip `length` body bytes straight out of the read buffer, without copying them.
pub fn discard(reader: &mut impl BufRead, mut length: usize) -> std::io::Result<()> {
    while length > 0 {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = available.len().min(length);
        reader.consume(n);
        length -= n;
    }
    Ok(())
}

pub fn discard_chunked(reader: &mut impl BufRead, line: &mut String) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        line.clear();
        reader.read_line(line)?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                line.clear();
                if reader.read_line(line)? == 0 || line.trim().is_empty() {
                    return Ok(total);
                }
            }
        }
        discard(reader, size + 2)?; // the chunk and its CRLF
        total += size;
    }
}
