//! Packets from the broker: the fixed header, then each packet's fields and MQTT 5 properties.

use super::{Ack, AckKind, CodecError, ConnAck, Packet, Properties, Protocol, Publish, QoS};
use crate::upload::mqtt::reason::ReasonCode;
use std::io::Read;

/// Read one packet from the broker: its fixed header, then a body of at most `max_len` bytes.
pub fn read_packet(
    reader: &mut impl Read,
    protocol: Protocol,
    max_len: usize,
) -> Result<Packet, CodecError> {
    let mut first = [0u8; 1];
    reader.read_exact(&mut first)?;
    let mut len = 0usize;
    for shift in 0..4 {
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte)?;
        len |= ((byte[0] & 0x7F) as usize) << (7 * shift);
        if byte[0] & 0x80 == 0 {
            if len > max_len {
                return Err(CodecError::TooLong(len, max_len));
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body)?;
            return decode(first[0], &body, protocol);
        }
    }
    Err(CodecError::BadVarInt)
}

/// A packet from its first byte and its body (what follows the remaining length).
pub fn decode(first: u8, body: &[u8], protocol: Protocol) -> Result<Packet, CodecError> {
    let mut r = Cursor {
        bytes: body,
        name: packet_name(first),
    };
    let v5 = protocol == Protocol::V5;
    match first >> 4 {
        2 => {
            let session_present = r.u8()? & 1 == 1;
            let code = r.u8()?;
            let reason = if v5 {
                ReasonCode(code)
            } else {
                ReasonCode::from_v3_connack(code)
            };
            let properties = if v5 && !r.is_empty() {
                r.properties()?
            } else {
                Properties::default()
            };
            Ok(Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties,
            }))
        }
        3 => decode_publish(first, &mut r, v5),
        4..=7 => decode_ack(first, &mut r, v5),
        9 => {
            let packet_id = r.u16()?;
            if v5 {
                r.properties()?;
            }
            Ok(Packet::SubAck {
                packet_id,
                reasons: r.rest().to_vec(),
            })
        }
        12 => Ok(Packet::PingReq),
        13 => Ok(Packet::PingResp),
        14 => {
            let reason = if r.is_empty() {
                ReasonCode::SUCCESS
            } else {
                ReasonCode(r.u8()?)
            };
            let props = if r.is_empty() {
                Properties::default()
            } else {
                r.properties()?
            };
            Ok(Packet::Disconnect {
                reason,
                reason_string: props.reason_string,
            })
        }
        _ => Err(CodecError::UnknownType(first)),
    }
}

fn decode_publish(first: u8, r: &mut Cursor, v5: bool) -> Result<Packet, CodecError> {
    let qos = match (first >> 1) & 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let topic = r.string()?;
    let packet_id = if qos == QoS::AtMostOnce { 0 } else { r.u16()? };
    if v5 {
        r.properties()?;
    }
    Ok(Packet::Publish(Publish {
        topic,
        payload: r.rest().to_vec(),
        qos,
        retain: first & 1 == 1,
        dup: first & 0x08 != 0,
        packet_id,
    }))
}

fn decode_ack(first: u8, r: &mut Cursor, v5: bool) -> Result<Packet, CodecError> {
    let kind = match first >> 4 {
        4 => AckKind::PubAck,
        5 => AckKind::PubRec,
        6 => AckKind::PubRel,
        _ => AckKind::PubComp,
    };
    let packet_id = r.u16()?;
    // MQTT 5 3.4.2.1: no reason code means success; no property length means none.
    let reason = if v5 && !r.is_empty() {
        ReasonCode(r.u8()?)
    } else {
        ReasonCode::SUCCESS
    };
    let props = if v5 && !r.is_empty() {
        r.properties()?
    } else {
        Properties::default()
    };
    Ok(Packet::Ack(Ack {
        kind,
        packet_id,
        reason,
        reason_string: props.reason_string,
    }))
}

fn packet_name(first: u8) -> &'static str {
    match first >> 4 {
        2 => "CONNACK",
        3 => "PUBLISH",
        4 => "PUBACK",
        5 => "PUBREC",
        6 => "PUBREL",
        7 => "PUBCOMP",
        9 => "SUBACK",
        14 => "DISCONNECT",
        _ => "MQTT",
    }
}

/// Reads fields off a packet body; running out is a `Truncated` error naming the packet.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) name: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError::Truncated(self.name));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn varint(&mut self) -> Result<usize, CodecError> {
        let mut value = 0usize;
        for shift in 0..4 {
            let byte = self.u8()?;
            value |= ((byte & 0x7F) as usize) << (7 * shift);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::BadVarInt)
    }

    fn binary(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let bytes = self.binary()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::NotUtf8)
    }

    /// A property list (MQTT 5 section 2.2.2), keeping the ones in [`Properties`].
    fn properties(&mut self) -> Result<Properties, CodecError> {
        let len = self.varint()?;
        let mut r = Cursor {
            bytes: self.take(len)?,
            name: self.name,
        };
        let mut p = Properties::default();
        while !r.is_empty() {
            match r.u8()? {
                0x11 => p.session_expiry = Some(r.u32()?),
                0x21 => p.receive_maximum = Some(r.u16()?),
                0x27 => p.maximum_packet_size = Some(r.u32()?),
                0x24 => p.maximum_qos = Some(r.u8()?),
                0x25 => p.retain_available = Some(r.u8()? == 1),
                0x13 => p.server_keepalive = Some(r.u16()?),
                0x12 => p.assigned_client_id = Some(r.string()?),
                0x1F => p.reason_string = Some(r.string()?),
                other => r.skip_property(other)?,
            }
        }
        Ok(p)
    }

    fn skip_property(&mut self, id: u8) -> Result<(), CodecError> {
        let fixed = match id {
            0x01 | 0x17 | 0x19 | 0x28 | 0x29 | 0x2A => 1,
            0x22 | 0x23 => 2,
            0x02 | 0x18 => 4,
            0x0B => self.varint().map(|_| 0)?,
            0x03 | 0x08 | 0x09 | 0x15 | 0x16 | 0x1A | 0x1C => self.binary().map(|_| 0)?,
            0x26 => self.binary().and_then(|_| self.binary()).map(|_| 0)?,
            other => return Err(CodecError::UnknownProperty(other)),
        };
        self.take(fixed).map(|_| ())
    }
}
