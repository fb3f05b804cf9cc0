//! A synchronous MQTT client that publishes one message at a time and waits for the broker's
//! word on it. It connects lazily (the agent starts without a broker), keeps a persistent
//! session (clean start off, a session expiry), re-sends the unacknowledged message after a
//! reconnect with its original packet identifier, announces the device as `online` (retained)
//! with a will of `offline`, and keeps the connection alive from a small thread while the
//! uploader has nothing to send.

use super::codec::{self, AckKind, Protocol, QoS};
use super::link::{success, Dial, Link, LinkError};
use super::reason::ReasonCode;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Everything a connection needs, from the board file.
#[derive(Clone)]
pub struct ClientOptions {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub protocol: Protocol,
    pub client_id: String,
    pub keepalive: Duration,
    pub session_expiry: Duration,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// Presence: `online` is published here (retained) on connect, `offline` is the will.
    pub status_topic: Option<String>,
    /// For connecting and for each read and write.
    pub timeout: Duration,
}

impl std::fmt::Debug for ClientOptions {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("protocol", &self.protocol)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The broker's word on one message: PUBACK's reason (QoS 1) or PUBREC's (QoS 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub reason: ReasonCode,
    pub reason_string: Option<String>,
}

/// What the broker announced in its CONNACK that limits what we send.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub maximum_packet_size: Option<u32>,
    pub maximum_qos: Option<u8>,
    pub retain_available: bool,
}

/// A QoS 1 or 2 message sent but not yet acknowledged; survives a lost connection.
#[derive(Debug)]
struct InFlight {
    packet_id: u16,
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
    sent: bool,
    /// QoS 2 after PUBREC: the broker has the message; PUBREL is what is left to send.
    received: Option<Delivery>,
}

pub struct Client {
    options: ClientOptions,
    link: Arc<Mutex<Option<Link>>>,
    pinger: Option<Pinger>,
    in_flight: Option<InFlight>,
    next_id: u16,
    limits: Limits,
}

impl Client {
    pub fn new(options: ClientOptions) -> Client {
        Client {
            options,
            link: Arc::new(Mutex::new(None)),
            pinger: None,
            in_flight: None,
            next_id: 0,
            limits: Limits::default(),
        }
    }

    /// The limits of the current (or last) connection.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Change the password used by the next connection (a re-read password file).
    pub fn set_password(&mut self, password: Option<Vec<u8>>) {
        self.options.password = password;
    }

    pub fn is_connected(&self) -> bool {
        lock(&self.link).is_some()
    }

    /// Publish and wait for the broker's acknowledgement. If the connection broke while the
    /// previous message was unacknowledged, that message is re-sent first (with its packet
    /// identifier); when it is this same message, its acknowledgement is this call's answer.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Delivery, LinkError> {
        self.connect_if_needed()?;
        if let Some(pending) = &self.in_flight {
            let same = pending.topic == topic && pending.payload == payload;
            let delivery = self.complete_in_flight()?;
            if same {
                return Ok(delivery);
            }
            log::debug!("re-sent message acknowledged: {}", delivery.reason);
        }
        let qos = self.allowed_qos(qos)?;
        if let Some(max) = self.limits.maximum_packet_size {
            let size = self.packet_size(topic, payload.len(), qos);
            if size > max as usize {
                return Err(LinkError::TooLarge { size, max });
            }
        }
        let packet_id = self.next_packet_id();
        self.in_flight = Some(InFlight {
            packet_id,
            topic: topic.to_string(),
            payload: payload.to_vec(),
            qos,
            retain,
            sent: false,
            received: None,
        });
        self.complete_in_flight()
    }

    /// Size of the PUBLISH packet for this topic and payload, as the broker counts it.
    pub fn packet_size(&self, topic: &str, payload_len: usize, qos: QoS) -> usize {
        let header = codec::publish_header(
            self.options.protocol,
            topic,
            qos,
            false,
            false,
            1,
            payload_len,
        );
        header.len() + payload_len
    }

    fn allowed_qos(&self, wanted: QoS) -> Result<QoS, LinkError> {
        match (self.limits.maximum_qos, wanted) {
            (Some(0), _) => Err(LinkError::Protocol(
                "the broker accepts only QoS 0, which cannot confirm delivery".into(),
            )),
            (Some(1), QoS::ExactlyOnce) => Ok(QoS::AtLeastOnce),
            _ => Ok(wanted),
        }
    }

    fn next_packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.next_id
    }

    /// Drive the in-flight message to its acknowledgement. On any failure the connection is
    /// dropped and the message stays in flight for the next attempt.
    fn complete_in_flight(&mut self) -> Result<Delivery, LinkError> {
        let Some(msg) = self.in_flight.as_mut() else {
            return Err(LinkError::Protocol("no message in flight".into()));
        };
        let mut guard = lock(&self.link);
        let Some(link) = guard.as_mut() else {
            return Err(LinkError::Protocol("not connected".into()));
        };
        let result = exchange(link, msg);
        match result {
            Ok(delivery) => {
                self.in_flight = None;
                Ok(delivery)
            }
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    fn connect_if_needed(&mut self) -> Result<(), LinkError> {
        if self.is_connected() {
            return Ok(());
        }
        let (link, ack) = self.open()?;
        if ack.session_present {
            log::debug!("MQTT session resumed");
        }
        self.limits = Limits {
            maximum_packet_size: ack.properties.maximum_packet_size,
            maximum_qos: ack.properties.maximum_qos,
            retain_available: ack.properties.retain_available.unwrap_or(true),
        };
        *lock(&self.link) = Some(link);
        // MQTT 5 section 3.2.2.3.14: the broker may set the keep-alive for us.
        let keepalive = match ack.properties.server_keepalive {
            Some(secs) => Duration::from_secs(secs.into()),
            None => self.options.keepalive,
        };
        if self.pinger.is_none() && !keepalive.is_zero() {
            self.pinger = Some(Pinger::spawn(Arc::clone(&self.link), keepalive / 2));
        }
        self.announce_online()
    }

    fn open(&self) -> Result<(Link, codec::ConnAck), LinkError> {
        let o = &self.options;
        let dial = Dial {
            host: &o.host,
            port: o.port,
            tls: o.tls.as_ref(),
            timeout: o.timeout,
        };
        let will = o.status_topic.as_deref().map(|topic| codec::Will {
            topic,
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
        });
        let connect = codec::Connect {
            protocol: o.protocol,
            client_id: &o.client_id,
            keepalive_secs: o.keepalive.as_secs().min(u16::MAX as u64) as u16,
            clean_start: false,
            session_expiry_secs: o.session_expiry.as_secs().min(u32::MAX as u64) as u32,
            will,
            username: o.username.as_deref(),
            password: o.password.as_deref(),
        };
        Link::open(&dial, &connect)
    }

    /// The retained `online` that a fleet dashboard reads; a refusal is logged, not fatal.
    fn announce_online(&mut self) -> Result<(), LinkError> {
        let Some(topic) = self.options.status_topic.clone() else {
            return Ok(());
        };
        if !self.limits.retain_available {
            log::warn!("the broker does not keep retained messages: no presence on {topic}");
            return Ok(());
        }
        let packet_id = self.next_packet_id();
        let mut msg = InFlight {
            packet_id,
            topic,
            payload: b"online".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
            sent: false,
            received: None,
        };
        let mut guard = lock(&self.link);
        let Some(link) = guard.as_mut() else {
            return Ok(());
        };
        match exchange(link, &mut msg) {
            Ok(d) if !d.reason.is_success() => {
                log::warn!(
                    "broker refused the presence message on {}: {}",
                    msg.topic,
                    d.reason
                );
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }
}

/// Send (or re-send) one message and wait for its acknowledgement; for QoS 2 also release it.
fn exchange(link: &mut Link, msg: &mut InFlight) -> Result<Delivery, LinkError> {
    let protocol = link.protocol();
    if msg.received.is_none() {
        let header = codec::publish_header(
            protocol,
            &msg.topic,
            msg.qos,
            msg.retain,
            msg.sent,
            msg.packet_id,
            msg.payload.len(),
        );
        msg.sent = true;
        link.send_parts(&[&header, &msg.payload])?;
        let kind = match msg.qos {
            QoS::ExactlyOnce => AckKind::PubRec,
            _ => AckKind::PubAck,
        };
        let ack = link.await_ack(kind, msg.packet_id)?;
        let delivery = Delivery {
            reason: ack.reason,
            reason_string: ack.reason_string,
        };
        // A refused QoS 2 message ends at PUBREC (MQTT 5 section 4.3.3).
        if kind == AckKind::PubAck || !delivery.reason.is_success() {
            return Ok(delivery);
        }
        msg.received = Some(delivery);
    }
    link.send(&codec::ack(
        protocol,
        &success(AckKind::PubRel, msg.packet_id),
    ))?;
    link.await_ack(AckKind::PubComp, msg.packet_id)?;
    msg.received
        .take()
        .ok_or_else(|| LinkError::Protocol("PUBCOMP without PUBREC".into()))
}

impl Drop for Client {
    /// A clean goodbye still tells the fleet the device is gone: MQTT 5 asks the broker to
    /// publish the will; 3.1.1 publishes `offline` itself before disconnecting.
    fn drop(&mut self) {
        if let Some(pinger) = self.pinger.take() {
            pinger.stop();
        }
        let mut guard = lock(&self.link);
        let Some(link) = guard.as_mut() else {
            return;
        };
        let protocol = link.protocol();
        if let (Protocol::V311, Some(topic)) = (protocol, &self.options.status_topic) {
            let header = codec::publish_header(protocol, topic, QoS::AtMostOnce, true, false, 0, 7);
            let _ = link.send_parts(&[&header, b"offline"]);
        }
        let _ = link.send(&codec::disconnect(
            protocol,
            ReasonCode::DISCONNECT_WITH_WILL,
        ));
        *guard = None;
    }
}

fn lock(link: &Mutex<Option<Link>>) -> MutexGuard<'_, Option<Link>> {
    // A panic elsewhere while holding the lock leaves at worst a broken connection, which the
    // next exchange detects.
    link.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends PINGREQ when nothing else was sent for half the keep-alive interval.
struct Pinger {
    stop: mpsc::Sender<()>,
    handle: Option<JoinHandle<()>>,
}

impl Pinger {
    fn spawn(link: Arc<Mutex<Option<Link>>>, every: Duration) -> Pinger {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("mqtt-keepalive".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let mut guard = lock(&link);
                    let Some(l) = guard.as_mut() else { continue };
                    if l.last_sent.elapsed() >= every {
                        if let Err(e) = l.ping() {
                            log::debug!("keep-alive failed: {e}");
                            *guard = None;
                        }
                    }
                }
            });
        if let Err(e) = &handle {
            log::warn!("no keep-alive thread ({e}); the broker may drop an idle connection");
        }
        Pinger {
            stop,
            handle: handle.ok(),
        }
    }

    fn stop(self) {
        drop(self.stop);
        if let Some(handle) = self.handle {
            let _ = handle.join();
        }
    }
}
