//! A QoS 1 subscriber built on fieldlink's own codec: a persistent session that reconnects
//! whenever its connection ends (broker restarts included) and keeps every message it got.

use fieldlink::upload::mqtt::codec::{self, AckKind, Packet, Protocol, Publish, QoS};
use fieldlink::upload::mqtt::link::{success, Dial, Link};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Each subscriber its own client id, so each has its own session.
static SUBSCRIBERS: AtomicUsize = AtomicUsize::new(0);

pub struct Subscriber {
    received: Arc<Mutex<Vec<Publish>>>,
    subscribed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Subscriber {
    /// Subscribe to `filter` on the broker at `port`; returns once the first SUBACK came.
    pub fn start(port: u16, filter: &str) -> Subscriber {
        let received = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, ready, halt) = (received.clone(), subscribed.clone(), stop.clone());
        let filter = filter.to_string();
        let n = SUBSCRIBERS.fetch_add(1, Ordering::SeqCst);
        let handle = std::thread::spawn(move || {
            let id = format!("test-subscriber-{port}-{n}");
            while !halt.load(Ordering::SeqCst) {
                if let Ok((mut link, session_present)) = connect(port, &id) {
                    // A resumed session keeps its subscription; subscribing again would
                    // bring the retained messages again.
                    if session_present {
                        ready.store(true, Ordering::SeqCst);
                    }
                    let subscribe = codec::subscribe(Protocol::V5, 1, &filter, QoS::AtLeastOnce);
                    if session_present || link.send(&subscribe).is_ok() {
                        let _ = receive(&mut link, &sink, &ready, &halt);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let subscriber = Subscriber {
            received,
            subscribed,
            stop,
            handle: Some(handle),
        };
        super::common::wait_until(Duration::from_secs(10), "the subscription", || {
            subscriber.subscribed.load(Ordering::SeqCst).then_some(())
        });
        subscriber
    }

    pub fn messages(&self) -> Vec<Publish> {
        self.received.lock().unwrap().clone()
    }

    /// Every line of every message received so far (gzip payloads decompressed).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for message in self.messages() {
            let text = payload_text(&message.payload);
            lines.extend(
                text.split('\n')
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        lines
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

pub fn payload_text(payload: &[u8]) -> String {
    if payload.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(payload)
            .read_to_string(&mut text)
            .expect("a gzip payload");
        text
    } else {
        String::from_utf8(payload.to_vec()).expect("a UTF-8 payload")
    }
}

fn connect(port: u16, client_id: &str) -> Result<(Link, bool), Box<dyn std::error::Error>> {
    let dial = Dial {
        host: "127.0.0.1",
        port,
        tls: None,
        timeout: Duration::from_millis(300),
    };
    let connect = codec::Connect {
        protocol: Protocol::V5,
        client_id,
        keepalive_secs: 0,
        clean_start: false,
        session_expiry_secs: 3600,
        will: None,
        username: None,
        password: None,
    };
    let (link, ack) = Link::open(&dial, &connect)?;
    Ok((link, ack.session_present))
}

/// Read until the connection ends (a read timeout included: the session brings back whatever
/// was not acknowledged) or the test stops us.
fn receive(
    link: &mut Link,
    sink: &Mutex<Vec<Publish>>,
    ready: &AtomicBool,
    halt: &AtomicBool,
) -> Result<(), Box<dyn std::error::Error>> {
    while !halt.load(Ordering::SeqCst) {
        match link.read()? {
            Packet::SubAck { .. } => ready.store(true, Ordering::SeqCst),
            Packet::Publish(message) => {
                let id = message.packet_id;
                let qos = message.qos;
                sink.lock().unwrap().push(message);
                if qos != QoS::AtMostOnce {
                    link.send(&codec::ack(Protocol::V5, &success(AckKind::PubAck, id)))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
