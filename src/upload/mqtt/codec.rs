//! The MQTT packets fieldlink sends and receives, as bytes: MQTT 5 (OASIS Standard, 7 March
//! 2019) and 3.1.1. Only what a publishing client needs (plus SUBSCRIBE for tests and tools):
//! CONNECT with a will, CONNACK with the server's limits, PUBLISH at QoS 0-2 and its
//! acknowledgements with reason codes, PINGREQ/PINGRESP and DISCONNECT. Hand-written because
//! the whole of it is smaller than any crate's dependency tree, and it needs no async runtime.

use super::reason::ReasonCode;

/// Which protocol revision a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 5: acknowledgements carry reason codes, so a refused publish is seen.
    V5,
    /// MQTT 3.1.1: a broker acknowledges even a publish it discards.
    V311,
}

impl Protocol {
    fn level(self) -> u8 {
        match self {
            Protocol::V5 => 5,
            Protocol::V311 => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

/// Why bytes from the broker are not a packet we understand.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The connection failed or ended while a packet was read.
    #[error("reading from the broker: {0}")]
    Io(#[from] std::io::Error),
    /// A packet ended before a field it announced.
    #[error("malformed {0} packet: too short")]
    Truncated(&'static str),
    /// A remaining length or property length over its 4-byte limit.
    #[error("malformed variable byte integer")]
    BadVarInt,
    #[error("packet of {0} bytes is over the {1}-byte limit")]
    TooLong(usize, usize),
    #[error("unexpected packet type {0:#04x}")]
    UnknownType(u8),
    #[error("unknown property {0:#04x}")]
    UnknownProperty(u8),
    #[error("a string is not UTF-8")]
    NotUtf8,
}

/// The will: what the broker publishes for us when the connection dies without a DISCONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Connect<'a> {
    pub protocol: Protocol,
    pub client_id: &'a str,
    pub keepalive_secs: u16,
    /// Off keeps the session (and unacknowledged messages) across reconnects.
    pub clean_start: bool,
    /// MQTT 5 only: how long the broker keeps the session after a disconnect.
    pub session_expiry_secs: u32,
    pub will: Option<Will<'a>>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

/// What the broker said to CONNECT; the limits are MQTT 5 properties (absent: no limit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// The MQTT 5 properties fieldlink acts on or reports; others are read and skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub session_expiry: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<bool>,
    pub server_keepalive: Option<u16>,
    pub assigned_client_id: Option<String>,
    pub reason_string: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
    /// 0 for QoS 0, which has none.
    pub packet_id: u16,
}

/// The four acknowledgements of the QoS 1 and 2 flows share one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub kind: AckKind,
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub reason_string: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    ConnAck(ConnAck),
    Publish(Publish),
    Ack(Ack),
    SubAck {
        packet_id: u16,
        reasons: Vec<u8>,
    },
    PingReq,
    PingResp,
    Disconnect {
        reason: ReasonCode,
        reason_string: Option<String>,
    },
}

pub const PINGREQ: [u8; 2] = [0xC0, 0x00];

/// CONNECT, whole.
pub fn connect(c: &Connect) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    put_str(&mut body, "MQTT");
    body.push(c.protocol.level());
    body.push(connect_flags(c));
    body.extend_from_slice(&c.keepalive_secs.to_be_bytes());
    if c.protocol == Protocol::V5 {
        let mut props = Vec::new();
        if c.session_expiry_secs > 0 {
            props.push(0x11);
            props.extend_from_slice(&c.session_expiry_secs.to_be_bytes());
        }
        put_properties(&mut body, &props);
    }
    put_str(&mut body, c.client_id);
    if let Some(will) = &c.will {
        if c.protocol == Protocol::V5 {
            put_properties(&mut body, &[]);
        }
        put_str(&mut body, will.topic);
        put_bytes(&mut body, will.payload);
    }
    if let Some(user) = c.username {
        put_str(&mut body, user);
    }
    if let Some(password) = c.password {
        put_bytes(&mut body, password);
    }
    frame(0x10, &body)
}

fn connect_flags(c: &Connect) -> u8 {
    let mut flags = 0;
    if c.username.is_some() {
        flags |= 0x80;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if let Some(will) = &c.will {
        flags |= 0x04 | (will.qos as u8) << 3;
        if will.retain {
            flags |= 0x20;
        }
    }
    if c.clean_start {
        flags |= 0x02;
    }
    flags
}

/// Everything of a PUBLISH but its payload, so a large payload is written without a copy.
/// The packet is this header followed by `payload_len` bytes.
pub fn publish_header(
    protocol: Protocol,
    topic: &str,
    qos: QoS,
    retain: bool,
    dup: bool,
    packet_id: u16,
    payload_len: usize,
) -> Vec<u8> {
    let mut variable = Vec::with_capacity(topic.len() + 8);
    put_str(&mut variable, topic);
    if qos != QoS::AtMostOnce {
        variable.extend_from_slice(&packet_id.to_be_bytes());
    }
    if protocol == Protocol::V5 {
        put_properties(&mut variable, &[]);
    }
    let flags = (dup as u8) << 3 | (qos as u8) << 1 | retain as u8;
    let mut out = Vec::with_capacity(variable.len() + 5);
    out.push(0x30 | flags);
    put_varint(&mut out, variable.len() + payload_len);
    out.extend_from_slice(&variable);
    out
}

/// A PUBACK, PUBREC, PUBREL or PUBCOMP. A success without a reason string is the short form
/// (just the packet id), which both protocol versions read.
pub fn ack(protocol: Protocol, ack: &Ack) -> Vec<u8> {
    let mut body = ack.packet_id.to_be_bytes().to_vec();
    if protocol == Protocol::V5
        && (ack.reason != ReasonCode::SUCCESS || ack.reason_string.is_some())
    {
        body.push(ack.reason.0);
        let mut props = Vec::new();
        if let Some(text) = &ack.reason_string {
            props.push(0x1F);
            put_str(&mut props, text);
        }
        put_properties(&mut body, &props);
    }
    let flags = if ack.kind == AckKind::PubRel { 0x02 } else { 0 };
    frame((ack.kind as u8) << 4 | flags, &body)
}

/// SUBSCRIBE to one topic filter.
pub fn subscribe(protocol: Protocol, packet_id: u16, filter: &str, qos: QoS) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if protocol == Protocol::V5 {
        put_properties(&mut body, &[]);
    }
    put_str(&mut body, filter);
    body.push(qos as u8);
    frame(0x82, &body)
}

/// DISCONNECT; MQTT 5 carries a reason (0x04 asks the broker to publish the will anyway).
pub fn disconnect(protocol: Protocol, reason: ReasonCode) -> Vec<u8> {
    match protocol {
        Protocol::V5 if reason != ReasonCode::SUCCESS => frame(0xE0, &[reason.0, 0]),
        _ => vec![0xE0, 0x00],
    }
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    put_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

fn put_properties(out: &mut Vec<u8>, props: &[u8]) {
    put_varint(out, props.len());
    out.extend_from_slice(props);
}

/// A Variable Byte Integer (MQTT 5 section 1.5.5): 7 bits a byte, least significant first.
pub fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            return;
        }
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

mod decode;
pub use decode::{decode, read_packet};

#[cfg(test)]
mod tests;
