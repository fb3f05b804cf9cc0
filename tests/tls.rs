//! The uploader over real TLS: a rustls server on loopback with a certificate from a private CA,
//! and the board's `ca_file` and `insecure_skip_verify` choices. Nothing leaves the queue
//! unless the server was verified (or verification was explicitly turned off).

use fieldlink::clock::{Clock, SystemClock, TimeKeeper};
use fieldlink::config::UploadConfig;
use fieldlink::queue::{Class, NewReading, Queue};
use fieldlink::upload::{self, Step};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::PrivateKeyDer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const READINGS: usize = 1200;

#[test]
fn a_server_signed_by_the_boards_ca_file_gets_every_reading() {
    let server = TlsServer::start();
    let (_dir, queue) = queue_with(READINGS);
    let ca_file = format!("ca_file = {:?}", server.ca_pem.display().to_string());
    let mut uploader =
        upload::connect(queue, &config(server.addr, &ca_file), "tls", "tls", time()).unwrap();
    let mut sent = 0;
    loop {
        match uploader.step().unwrap() {
            Step::Sent(n) => sent += n,
            Step::Idle => break,
            Step::Paused(pause) => panic!("paused: {}", pause.reason),
        }
    }
    assert_eq!(sent, READINGS);
    let lines = server.lines();
    assert_eq!(lines.len(), READINGS);
    assert!(lines[0].starts_with("m,sensor_id=T v=0i "), "{}", lines[0]);
}

#[test]
fn a_server_the_system_roots_do_not_know_is_refused_and_everything_is_kept() {
    let server = TlsServer::start();
    let (_dir, queue) = queue_with(10);
    let mut uploader =
        upload::connect(queue, &config(server.addr, ""), "tls", "tls", time()).unwrap();
    match uploader.step().unwrap() {
        Step::Paused(pause) => assert!(
            pause.reason.to_lowercase().contains("certificate")
                || pause.reason.to_lowercase().contains("issuer"),
            "{}",
            pause.reason
        ),
        other => panic!("expected a pause, got {other:?}"),
    }
    assert!(server.lines().is_empty());
    let queued = uploader.queue().counters().unwrap()["queued"];
    assert_eq!(queued, 10);
}

#[test]
fn insecure_skip_verify_connects_to_an_unknown_server() {
    let server = TlsServer::start();
    let (_dir, queue) = queue_with(10);
    let cfg = config(server.addr, "insecure_skip_verify = true");
    let mut uploader = upload::connect(queue, &cfg, "tls", "tls", time()).unwrap();
    assert_eq!(uploader.step().unwrap(), Step::Sent(10));
    assert_eq!(server.lines().len(), 10);
}

/// The system's clock, as `run` and `sync` give it to the uploader.
fn time() -> Arc<TimeKeeper> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    Arc::new(TimeKeeper::new(clock, false, 0))
}

fn config(addr: SocketAddr, tls: &str) -> UploadConfig {
    let text = format!(
        "url = \"https://{addr}\"\napi = \"v1\"\ndatabase = \"d\"\nbatch_lines = 500\n\
         max_points_per_second = 0\nstart_delay_max = \"0s\"\ntimeout = \"10s\"\n{tls}\n"
    );
    toml::from_str(&text).unwrap()
}

fn queue_with(readings: usize) -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let mut queue = Queue::open(&dir.path().join("q.db")).unwrap();
    let series = queue.series_id("m,sensor_id=T").unwrap();
    let rows: Vec<NewReading> = (0..readings)
        .map(|i| NewReading {
            series,
            time_ns: 1_700_000_000_000_000_000 + i as i64,
            fields: format!("v={i}i"),
            class: Class::Routine,
        })
        .collect();
    queue.push(&rows, &[], &[]).unwrap();
    (dir, queue)
}

/// An HTTPS endpoint that answers every POST with 204 and keeps the decompressed lines.
struct TlsServer {
    addr: SocketAddr,
    /// PEM of the private CA that signed the server's certificate.
    ca_pem: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let server_cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::from(server_key),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, sink) = (config.clone(), sink.clone());
                std::thread::spawn(move || serve(stream, config, &sink));
            }
        });
        TlsServer {
            addr,
            ca_pem,
            lines,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Requests on one kept-alive connection until the client hangs up (or refuses the handshake).
fn serve(stream: TcpStream, config: Arc<rustls::ServerConfig>, sink: &Mutex<Vec<String>>) {
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut tls = BufReader::new(rustls::StreamOwned::new(connection, stream));
    loop {
        let mut length = 0;
        let mut gzip = false;
        loop {
            let mut line = String::new();
            match tls.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            gzip |= line == "content-encoding: gzip";
        }
        let mut body = vec![0; length];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let mut text = String::new();
        if gzip {
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut text)
                .unwrap();
        } else {
            text = String::from_utf8(body).unwrap();
        }
        sink.lock()
            .unwrap()
            .extend(text.lines().map(str::to_string));
        let reply = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
        if tls.get_mut().write_all(reply).is_err() || tls.get_mut().flush().is_err() {
            return;
        }
    }
}
