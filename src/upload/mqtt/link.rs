//! One connection to the broker: TCP, optionally TLS, with timeouts on every read and write,
//! and the packet exchanges that happen on it one at a time (CONNECT/CONNACK, a publish and
//! its acknowledgement, PINGREQ/PINGRESP).

use super::codec::{self, Ack, AckKind, ConnAck, Packet, Protocol};
use super::reason::ReasonCode;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest packet accepted from the broker: it only sends acknowledgements and small control
/// packets to a client that subscribes to nothing.
const MAX_INCOMING: usize = 64 * 1024;

/// Why an exchange with the broker failed. The connection is closed after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The broker could not be reached: DNS, refused, unreachable, timeout.
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// The connection broke or timed out, including TLS handshake failures.
    #[error("connection to the broker lost: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// CONNACK with a failure reason.
    #[error("broker refused the connection: {reason}{}", detail(.message))]
    Refused {
        reason: ReasonCode,
        message: Option<String>,
    },
    /// The broker sent DISCONNECT (MQTT 5 says why).
    #[error("broker disconnected: {reason}{}", detail(.message))]
    Disconnected {
        reason: ReasonCode,
        message: Option<String>,
    },
    /// The message would be over the broker's Maximum Packet Size (from its CONNACK).
    #[error("a message of {size} bytes is over the broker's maximum packet size of {max}")]
    TooLarge { size: usize, max: u32 },
    /// A packet that makes no sense at this point of the exchange.
    #[error("protocol error: {0}")]
    Protocol(String),
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Where and how to open the connection.
pub struct Dial<'a> {
    pub host: &'a str,
    pub port: u16,
    pub tls: Option<&'a Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

pub struct Link {
    stream: Stream,
    protocol: Protocol,
    /// When we last sent a packet: the keep-alive clock (MQTT 5 section 3.1.2.10).
    pub last_sent: Instant,
}

impl Link {
    /// Open TCP (and TLS), send CONNECT and read the CONNACK.
    pub fn open(dial: &Dial, connect: &codec::Connect) -> Result<(Link, ConnAck), LinkError> {
        let tcp = tcp(dial)?;
        let stream = match dial.tls {
            Some(config) => {
                let name = super::tls::server_name(dial.host)
                    .map_err(|e| LinkError::Protocol(e.to_string()))?;
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| LinkError::Io(io::Error::other(e)))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
            None => Stream::Plain(tcp),
        };
        let mut link = Link {
            stream,
            protocol: connect.protocol,
            last_sent: Instant::now(),
        };
        link.send(&codec::connect(connect))?;
        match link.read()? {
            Packet::ConnAck(ack) if ack.reason.is_success() => Ok((link, ack)),
            Packet::ConnAck(ack) => Err(LinkError::Refused {
                reason: ack.reason,
                message: ack.properties.reason_string,
            }),
            other => Err(LinkError::Protocol(format!(
                "expected CONNACK, got {other:?}"
            ))),
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Write whole packets (given in pieces, so a payload needs no copy) and flush.
    pub fn send_parts(&mut self, parts: &[&[u8]]) -> Result<(), LinkError> {
        for part in parts {
            self.stream.write_all(part)?;
        }
        self.stream.flush()?;
        self.last_sent = Instant::now();
        Ok(())
    }

    pub fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        self.send_parts(&[packet])
    }

    /// The next packet; a DISCONNECT from the broker becomes an error.
    pub fn read(&mut self) -> Result<Packet, LinkError> {
        match codec::read_packet(&mut self.stream, self.protocol, MAX_INCOMING)? {
            Packet::Disconnect {
                reason,
                reason_string,
            } => Err(LinkError::Disconnected {
                reason,
                message: reason_string,
            }),
            packet => Ok(packet),
        }
    }

    /// Read until the acknowledgement of `kind` for `packet_id`, answering what the broker may
    /// send meanwhile (a PUBLISH for a session subscription, a stray ping response).
    pub fn await_ack(&mut self, kind: AckKind, packet_id: u16) -> Result<Ack, LinkError> {
        loop {
            match self.read()? {
                Packet::Ack(ack) if ack.kind == kind && ack.packet_id == packet_id => {
                    return Ok(ack)
                }
                Packet::Publish(p) if p.qos != codec::QoS::AtMostOnce => {
                    // Not ours to process (fieldlink subscribes to nothing), but it must be
                    // acknowledged or the broker re-sends it forever.
                    let kind = match p.qos {
                        codec::QoS::ExactlyOnce => AckKind::PubRec,
                        _ => AckKind::PubAck,
                    };
                    self.send(&codec::ack(self.protocol, &success(kind, p.packet_id)))?;
                }
                Packet::Ack(ack) if ack.kind == AckKind::PubRel => {
                    self.send(&codec::ack(
                        self.protocol,
                        &success(AckKind::PubComp, ack.packet_id),
                    ))?;
                }
                Packet::PingResp | Packet::Publish(_) | Packet::Ack(_) => {}
                other => {
                    return Err(LinkError::Protocol(format!(
                        "unexpected {other:?} while waiting for {kind:?} {packet_id}"
                    )))
                }
            }
        }
    }

    /// PINGREQ and wait for PINGRESP, so the broker (and any NAT on the way) keeps the session.
    pub fn ping(&mut self) -> Result<(), LinkError> {
        self.send(&codec::PINGREQ)?;
        loop {
            match self.read()? {
                Packet::PingResp => return Ok(()),
                Packet::Ack(_) | Packet::Publish(_) => {}
                other => {
                    return Err(LinkError::Protocol(format!(
                        "unexpected {other:?} while waiting for PINGRESP"
                    )))
                }
            }
        }
    }
}

pub fn success(kind: AckKind, packet_id: u16) -> Ack {
    Ack {
        kind,
        packet_id,
        reason: ReasonCode::SUCCESS,
        reason_string: None,
    }
}

/// A TCP connection to the first address of the host that answers within the timeout.
fn tcp(dial: &Dial) -> Result<TcpStream, LinkError> {
    let addr = format!("{}:{}", dial.host, dial.port);
    let fail = |source| LinkError::Connect {
        addr: addr.clone(),
        source,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the host");
    for candidate in (dial.host, dial.port).to_socket_addrs().map_err(fail)? {
        match TcpStream::connect_timeout(&candidate, dial.timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(dial.timeout)).map_err(fail)?;
                stream.set_write_timeout(Some(dial.timeout)).map_err(fail)?;
                stream.set_nodelay(true).map_err(fail)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(fail(last))
}
