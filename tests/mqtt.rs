//! The MQTT output against a real Mosquitto: what the broker acknowledges, refuses and limits,
//! over TCP and mutual TLS, with presence (retained `online`, will `offline`).

#[path = "mqtt/agent.rs"]
mod agent;
#[path = "mqtt/broker.rs"]
mod broker;
mod common;
#[path = "mqtt/subscriber.rs"]
mod subscriber;

use broker::Broker;
use fieldlink::upload::mqtt::client::{Client, ClientOptions};
use fieldlink::upload::mqtt::codec::{Protocol, QoS};
use fieldlink::upload::mqtt::link::LinkError;
use fieldlink::upload::mqtt::output;
use fieldlink::upload::mqtt::reason::ReasonCode;
use fieldlink::upload::mqtt::tls::{client_config, TlsFiles};
use fieldlink::upload::Answer;
use std::time::Duration;
use subscriber::Subscriber;

fn options(port: u16, client_id: &str) -> ClientOptions {
    ClientOptions {
        host: "127.0.0.1".into(),
        port,
        tls: None,
        protocol: Protocol::V5,
        client_id: client_id.into(),
        keepalive: Duration::from_secs(30),
        session_expiry: Duration::from_secs(3600),
        username: None,
        password: None,
        status_topic: Some(format!("fieldlink/{client_id}/status")),
        timeout: Duration::from_secs(5),
    }
}

#[test]
fn a_publish_the_acl_denies_is_not_authorized_and_goes_through_once_the_acl_allows_it() {
    let deny = "topic read fieldlink/#\ntopic readwrite fieldlink/+/status\n";
    let broker = Broker::start_with(&[("acl", deny)], "acl_file {dir}/acl");
    let sub = Subscriber::start(broker.port, "fieldlink/#");
    let mut client = Client::new(options(broker.port, "acl-dev"));
    let denied = client.publish("fieldlink/acl-dev", b"m v=1i 1", QoS::AtLeastOnce, false);
    assert_eq!(denied.as_ref().unwrap().reason, ReasonCode::NOT_AUTHORIZED);
    let answer = output::answer("fieldlink/acl-dev", denied);
    assert!(
        matches!(&answer, Answer::Misconfigured { reason } if reason.contains("not authorized")),
        "{answer:?}"
    );

    broker.write("acl", "topic readwrite fieldlink/#\n");
    broker.reload();
    common::wait_until(Duration::from_secs(10), "the new ACL", || {
        let sent = client.publish("fieldlink/acl-dev", b"m v=2i 2", QoS::AtLeastOnce, false);
        (sent.ok()?.reason == ReasonCode::SUCCESS).then_some(())
    });
    common::wait_until(Duration::from_secs(5), "the message", || {
        sub.lines().contains(&"m v=2i 2".to_string()).then_some(())
    });
    assert!(
        !sub.lines().contains(&"m v=1i 1".to_string()),
        "the denied message arrived"
    );
}

#[test]
fn the_brokers_maximum_packet_size_is_read_and_a_larger_message_is_not_sent() {
    let broker = Broker::start("max_packet_size 2000");
    let mut client = Client::new(options(broker.port, "small"));
    let ok = client.publish("fieldlink/small", &[b'x'; 100], QoS::AtLeastOnce, false);
    assert!(ok.unwrap().reason.is_success());
    assert_eq!(client.limits().maximum_packet_size, Some(2000));
    let big = client.publish("fieldlink/small", &[b'x'; 5000], QoS::AtLeastOnce, false);
    assert!(
        matches!(big, Err(LinkError::TooLarge { max: 2000, .. })),
        "{big:?}"
    );
    assert_eq!(output::answer("t", big), Answer::TooLarge);
    assert!(
        client.is_connected(),
        "refusing to send must not cost the connection"
    );
}

#[test]
fn qos_2_completes_the_four_way_exchange_and_the_message_arrives_once() {
    let broker = Broker::start("");
    let sub = Subscriber::start(broker.port, "fieldlink/q2");
    let mut client = Client::new(options(broker.port, "q2"));
    for i in 0..3 {
        let body = format!("m v={i}i {i}");
        let delivery = client.publish("fieldlink/q2", body.as_bytes(), QoS::ExactlyOnce, false);
        assert!(delivery.unwrap().reason.is_success());
    }
    common::wait_until(Duration::from_secs(5), "three messages", || {
        (sub.lines().len() == 3).then_some(())
    });
}

#[test]
fn a_broker_restart_is_an_error_for_one_publish_and_the_next_reconnects() {
    let mut broker = Broker::start("");
    let mut client = Client::new(options(broker.port, "restart"));
    assert!(client
        .publish("fieldlink/r", b"a", QoS::AtLeastOnce, false)
        .is_ok());
    broker.kill9();
    let failed = client.publish("fieldlink/r", b"b", QoS::AtLeastOnce, false);
    assert!(matches!(
        output::answer("t", failed),
        Answer::Unavailable { .. }
    ));
    broker.up();
    let sub = Subscriber::start(broker.port, "fieldlink/r");
    let again = client.publish("fieldlink/r", b"b", QoS::AtLeastOnce, false);
    assert!(again.unwrap().reason.is_success());
    common::wait_until(Duration::from_secs(5), "the re-sent message", || {
        sub.lines().contains(&"b".to_string()).then_some(())
    });
}

#[test]
fn presence_is_a_retained_online_and_a_clean_goodbye_leaves_a_retained_offline() {
    let broker = Broker::start("");
    let mut client = Client::new(options(broker.port, "pres"));
    assert!(client
        .publish("fieldlink/pres", b"x", QoS::AtLeastOnce, false)
        .is_ok());
    let status = Subscriber::start(broker.port, "fieldlink/pres/status");
    common::wait_until(Duration::from_secs(5), "online", || {
        let last = status.messages().pop()?;
        (last.retain && last.payload == b"online").then_some(())
    });
    drop(client);
    drop(status);
    let later = Subscriber::start(broker.port, "fieldlink/pres/status");
    common::wait_until(Duration::from_secs(5), "a retained offline", || {
        let last = later.messages().pop()?;
        (last.payload == b"offline").then_some(())
    });
}

#[test]
fn mutual_tls_with_a_private_ca_delivers_and_a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let broker = Broker::start(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    ));
    let with_cert = TlsFiles {
        ca_file: Some(pki.ca.clone()),
        client_cert: Some(pki.client_cert.clone()),
        client_key: Some(pki.client_key.clone()),
    };
    let mut opts = options(broker.port, "tls-dev");
    opts.host = "localhost".into();
    opts.tls = Some(client_config(&with_cert).unwrap());
    let mut client = Client::new(opts.clone());
    let delivery = client.publish("fieldlink/tls-dev", b"m v=1i 1", QoS::AtLeastOnce, false);
    assert!(delivery.unwrap().reason.is_success());

    let ca_only = TlsFiles {
        ca_file: Some(pki.ca.clone()),
        ..TlsFiles::default()
    };
    opts.tls = Some(client_config(&ca_only).unwrap());
    let refused = Client::new(opts).publish("fieldlink/tls-dev", b"x", QoS::AtLeastOnce, false);
    assert!(refused.is_err(), "{refused:?}");
}

/// A private CA, a server certificate for localhost and a client certificate, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_cert: std::path::PathBuf,
    client_key: std::path::PathBuf,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // OpenSSL (the broker's side) takes a leaf whose issuer equals its subject for
        // self-signed, so every certificate gets its own name.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fieldlink test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = leaf(vec!["localhost".into()]);
        let (client_pem, client_key_pem) = leaf(vec!["tls-dev".into()]);
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server.key", &server_key_pem),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client.key", &client_key_pem),
            _dir: dir,
        }
    }
}

#[test]
fn an_idle_client_keeps_its_session_alive_with_pings_and_no_will_fires() {
    let broker = Broker::start("");
    let mut opts = options(broker.port, "idle");
    opts.keepalive = Duration::from_secs(1);
    let mut client = Client::new(opts);
    assert!(client
        .publish("fieldlink/idle", b"x", QoS::AtLeastOnce, false)
        .is_ok());
    let status = Subscriber::start(broker.port, "fieldlink/idle/status");
    // Mosquitto drops a client after 1.5 keep-alive intervals of silence and fires its will.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(client.is_connected());
    let payloads: Vec<Vec<u8>> = status.messages().into_iter().map(|m| m.payload).collect();
    assert_eq!(
        payloads,
        [b"online".to_vec()],
        "the will fired while the client idled"
    );
}

#[test]
fn a_message_in_flight_when_the_connection_broke_is_resent_with_dup_and_its_packet_id() {
    let fake = FakeBroker::start();
    let mut opts = options(fake.port, "inflight");
    opts.status_topic = None;
    let mut client = Client::new(opts);
    let first = client.publish("fieldlink/x", b"m v=1i 1", QoS::AtLeastOnce, false);
    assert!(first.is_err(), "the broker hung up before its PUBACK");
    let again = client.publish("fieldlink/x", b"m v=1i 1", QoS::AtLeastOnce, false);
    assert_eq!(again.unwrap().reason, ReasonCode::SUCCESS);
    let seen = fake.publishes.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[0].dup && seen[1].dup, "{seen:?}");
    assert_eq!(seen[0].packet_id, seen[1].packet_id);
    assert_eq!(seen[1].payload, b"m v=1i 1");
}

/// A broker that takes the first PUBLISH and hangs up without acknowledging it, then on the
/// next connection says the session is present and acknowledges whatever comes.
struct FakeBroker {
    port: u16,
    publishes: std::sync::Arc<std::sync::Mutex<Vec<fieldlink::upload::mqtt::codec::Publish>>>,
}

impl FakeBroker {
    fn start() -> FakeBroker {
        use fieldlink::upload::mqtt::codec::{self, Packet};
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let publishes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = publishes.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let mut stream = stream.unwrap();
                let mut read = || codec::read_packet(&mut stream, Protocol::V5, 1 << 20);
                // CONNECT is not a packet a client reads; skip its bytes by hand.
                let _ = read();
                let session_present = u8::from(n > 0);
                stream.write_all(&[0x20, 3, session_present, 0, 0]).unwrap();
                let Ok(Packet::Publish(p)) = codec::read_packet(&mut stream, Protocol::V5, 1 << 20)
                else {
                    continue;
                };
                let id = p.packet_id;
                seen.lock().unwrap().push(p);
                if n > 0 {
                    let ack = fieldlink::upload::mqtt::link::success(codec::AckKind::PubAck, id);
                    stream.write_all(&codec::ack(Protocol::V5, &ack)).unwrap();
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
        FakeBroker { port, publishes }
    }
}

#[test]
fn over_mqtt_3_1_1_a_publish_the_acl_denies_is_acknowledged_like_any_other() {
    // The documented blind spot: 3.1.1's PUBACK has no reason code, and mosquitto discards
    // the denied message silently.
    let deny = "topic read fieldlink/#\ntopic readwrite fieldlink/+/status\n";
    let broker = Broker::start_with(&[("acl", deny)], "acl_file {dir}/acl");
    let sub = Subscriber::start(broker.port, "fieldlink/old");
    let mut opts = options(broker.port, "old");
    opts.protocol = Protocol::V311;
    let mut client = Client::new(opts);
    let delivery = client.publish("fieldlink/old", b"m v=1i 1", QoS::AtLeastOnce, false);
    assert_eq!(delivery.unwrap().reason, ReasonCode::SUCCESS);
    std::thread::sleep(Duration::from_millis(300));
    assert!(sub.lines().is_empty(), "the denied message arrived");
}

#[test]
fn a_payload_the_broker_calls_invalid_is_bisected_and_only_its_bad_line_dead_lettered() {
    use fieldlink::clock::{Clock, SystemClock, TimeKeeper};
    use fieldlink::queue::{Class, NewReading, Queue};
    use fieldlink::upload::{self, Step};
    let broker = RefusingBroker::start(b"v=13i");
    let dir = tempfile::tempdir().unwrap();
    let mut queue = Queue::open(&dir.path().join("q.db")).unwrap();
    let series = queue.series_id("m,sensor_id=T").unwrap();
    let rows: Vec<NewReading> = (0..40)
        .map(|i| NewReading {
            series,
            time_ns: 1_700_000_000_000_000_000 + i as i64,
            fields: format!("v={i}i"),
            class: Class::Routine,
        })
        .collect();
    queue.push(&rows, &[], &[]).unwrap();
    let text = format!(
        "url = \"mqtt://127.0.0.1:{}\"\nbatch_lines = 40\nmax_points_per_second = 0\n\
         start_delay_max = \"0s\"\ntimeout = \"5s\"\n",
        broker.port
    );
    let cfg: fieldlink::config::UploadConfig = toml::from_str(&text).unwrap();
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(SystemClock::default());
    let time = std::sync::Arc::new(TimeKeeper::new(clock, false, 0));
    let mut uploader = upload::connect(queue, &cfg, "dev", "dev", time).unwrap();
    assert_eq!(uploader.step().unwrap(), Step::Sent(40));
    assert_eq!(uploader.step().unwrap(), Step::Idle);
    uploader.flush().unwrap();
    let letters = uploader.queue().dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].line.contains("v=13i"), "{letters:?}");
    assert!(
        letters[0].message.contains("payload format invalid"),
        "{letters:?}"
    );
    let accepted = broker.accepted.lock().unwrap().clone();
    assert!(accepted
        .iter()
        .any(|p| p.contains("v=12i") && !p.contains("v=13i")));
}

/// A broker that answers PUBACK 0x99 (payload format invalid, with a reason string) to any
/// message containing `bad`, and success to the rest, which it keeps.
struct RefusingBroker {
    port: u16,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RefusingBroker {
    fn start(bad: &'static [u8]) -> RefusingBroker {
        use fieldlink::upload::mqtt::codec::{self, Ack, AckKind, Packet};
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let _connect = codec::read_packet(&mut stream, Protocol::V5, 1 << 20);
                stream.write_all(&[0x20, 3, 0, 0, 0]).unwrap();
                while let Ok(packet) = codec::read_packet(&mut stream, Protocol::V5, 1 << 20) {
                    let Packet::Publish(p) = packet else { continue };
                    let refused = p.payload.windows(bad.len()).any(|w| w == bad);
                    let reason = match refused {
                        true => ReasonCode::PAYLOAD_FORMAT_INVALID,
                        false => ReasonCode::SUCCESS,
                    };
                    if !refused && !p.retain {
                        keep.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&p.payload).into());
                    }
                    let ack = Ack {
                        kind: AckKind::PubAck,
                        packet_id: p.packet_id,
                        reason,
                        reason_string: refused.then(|| "not line protocol".to_string()),
                    };
                    stream.write_all(&codec::ack(Protocol::V5, &ack)).unwrap();
                }
            }
        });
        RefusingBroker { port, accepted }
    }
}
