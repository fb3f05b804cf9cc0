//! The codec against the byte examples of the MQTT 5 specification (OASIS Standard, 7 March
//! 2019; sections cited per test) and against packets as mosquitto sends them.

use super::decode::Cursor;
use super::*;

fn varint(value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, value);
    out
}

#[test]
fn variable_byte_integers_match_the_spec_table_at_every_size_boundary() {
    // Section 1.5.5, Table 1-1: the smallest and largest value of each length.
    let table: [(usize, &[u8]); 8] = [
        (0, &[0x00]),
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
    ];
    for (value, bytes) in table {
        assert_eq!(varint(value), bytes, "{value}");
        let mut r = Cursor {
            bytes,
            name: "test",
        };
        assert_eq!(r.varint().unwrap(), value);
    }
    let mut five = Cursor {
        bytes: &[0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        name: "test",
    };
    assert!(matches!(five.varint(), Err(CodecError::BadVarInt)));
}

#[test]
fn strings_are_length_prefixed_utf8_as_in_the_spec_example() {
    // Section 1.5.4, Figure 1-1: "A𪛔" is 0x00 0x05 0x41 0xF0 0xAA 0x9B 0x94.
    let mut out = Vec::new();
    put_str(&mut out, "A\u{2A6D4}");
    assert_eq!(out, [0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94]);
}

#[test]
fn connect_variable_header_matches_the_spec_example() {
    // Section 3.1.2.11, Figure 3-6: user name and password, will QoS 1, clean start,
    // keep alive 10 s, session expiry 10 s: flags 0xCE, properties 0x05 0x11 0 0 0 10.
    let packet = connect(&Connect {
        protocol: Protocol::V5,
        client_id: "",
        keepalive_secs: 10,
        clean_start: true,
        session_expiry_secs: 10,
        will: Some(Will {
            topic: "t",
            payload: b"x",
            qos: QoS::AtLeastOnce,
            retain: false,
        }),
        username: Some("u"),
        password: Some(b"p"),
    });
    let header: &[u8] = &[
        0, 4, b'M', b'Q', b'T', b'T', 5, 0xCE, 0, 10, 5, 0x11, 0, 0, 0, 10,
    ];
    assert_eq!(packet[0], 0x10);
    assert_eq!(packet[1] as usize, packet.len() - 2, "remaining length");
    assert_eq!(&packet[2..2 + header.len()], header);
    // Payload (3.1.3): client id, will properties (none), will topic, will payload, user, password.
    let payload: &[u8] = &[0, 0, 0, 0, 1, b't', 0, 1, b'x', 0, 1, b'u', 0, 1, b'p'];
    assert_eq!(&packet[2 + header.len()..], payload);
}

#[test]
fn a_persistent_v5_connect_has_a_retained_will_and_no_clean_start() {
    let packet = connect(&Connect {
        protocol: Protocol::V5,
        client_id: "pi-7",
        keepalive_secs: 60,
        clean_start: false,
        session_expiry_secs: 86_400,
        will: Some(Will {
            topic: "s",
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: None,
        password: None,
    });
    // Will flag, will QoS 1, will retain; no clean start, no credentials.
    assert_eq!(packet[9], 0b0010_1100);
    assert_eq!(
        &packet[12..18],
        &[5, 0x11, 0x00, 0x01, 0x51, 0x80],
        "86400 s"
    );
}

#[test]
fn a_v311_connect_has_level_4_and_no_properties() {
    let packet = connect(&Connect {
        protocol: Protocol::V311,
        client_id: "c",
        keepalive_secs: 30,
        clean_start: false,
        session_expiry_secs: 3600,
        will: None,
        username: None,
        password: None,
    });
    assert_eq!(
        packet,
        [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 30, 0, 1, b'c']
    );
}

#[test]
fn publish_variable_header_matches_the_spec_example() {
    // Section 3.3.2.3, Figure 3-9: topic "a/b", packet identifier 10, no properties.
    let header = publish_header(Protocol::V5, "a/b", QoS::AtLeastOnce, false, false, 10, 4);
    assert_eq!(header, [0x32, 12, 0, 3, b'a', b'/', b'b', 0, 10, 0]);
    let retained_dup = publish_header(Protocol::V311, "a/b", QoS::ExactlyOnce, true, true, 1, 0);
    assert_eq!(retained_dup, [0x3D, 7, 0, 3, b'a', b'/', b'b', 0, 1]);
    let qos0 = publish_header(Protocol::V5, "a", QoS::AtMostOnce, true, false, 0, 2);
    assert_eq!(qos0, [0x31, 6, 0, 1, b'a', 0]);
}

#[test]
fn a_large_payload_gets_a_multi_byte_remaining_length() {
    let header = publish_header(
        Protocol::V5,
        "t",
        QoS::AtLeastOnce,
        false,
        false,
        1,
        200_000,
    );
    assert_eq!(&header[1..4], &varint(6 + 200_000)[..]);
    assert_eq!(header.len(), 1 + 3 + 6);
}

#[test]
fn a_connack_with_limits_is_read_with_its_properties() {
    // As mosquitto 2.0 sends it with max_packet_size set: session present, success,
    // Receive Maximum 20, Maximum Packet Size 4096, Topic Alias Maximum 10 (skipped).
    let body = [1, 0, 11, 0x21, 0, 20, 0x27, 0, 0, 0x10, 0, 0x22, 0, 10];
    let Packet::ConnAck(ack) = decode(0x20, &body, Protocol::V5).unwrap() else {
        panic!("not a CONNACK")
    };
    assert!(ack.session_present);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.receive_maximum, Some(20));
    assert_eq!(ack.properties.maximum_packet_size, Some(4096));
}

#[test]
fn a_v311_connack_refusal_reads_as_the_matching_v5_reason() {
    let packet = decode(0x20, &[0, 5], Protocol::V311).unwrap();
    let Packet::ConnAck(ack) = packet else {
        panic!("not a CONNACK")
    };
    assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn a_puback_without_a_reason_code_is_a_success_and_one_with_a_code_keeps_it() {
    // Section 3.4.2.1: remaining length 2 means success with no properties.
    let short = decode(0x40, &[0x12, 0x34], Protocol::V5).unwrap();
    let expected = Ack {
        kind: AckKind::PubAck,
        packet_id: 0x1234,
        reason: ReasonCode::SUCCESS,
        reason_string: None,
    };
    assert_eq!(short, Packet::Ack(expected.clone()));
    let refused = decode(0x40, &[0, 7, 0x87], Protocol::V5).unwrap();
    let Packet::Ack(ack) = refused else {
        panic!("not an ack")
    };
    assert_eq!((ack.packet_id, ack.reason), (7, ReasonCode::NOT_AUTHORIZED));
    let with_text = [0, 7, 0x99, 7, 0x1F, 0, 4, b'b', b'a', b'd', b'!'];
    let Packet::Ack(ack) = decode(0x40, &with_text, Protocol::V5).unwrap() else {
        panic!("not an ack")
    };
    assert_eq!(ack.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
    assert_eq!(ack.reason_string.as_deref(), Some("bad!"));
}

#[test]
fn acknowledgements_encode_in_their_short_form_and_pubrel_has_its_fixed_flags() {
    let mut ack = Ack {
        kind: AckKind::PubRel,
        packet_id: 9,
        reason: ReasonCode::SUCCESS,
        reason_string: None,
    };
    // Section 3.6.1: PUBREL's fixed header flags are 0010.
    assert_eq!(super::ack(Protocol::V5, &ack), [0x62, 2, 0, 9]);
    ack.kind = AckKind::PubAck;
    ack.reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    assert_eq!(super::ack(Protocol::V5, &ack), [0x40, 4, 0, 9, 0x10, 0]);
    assert_eq!(super::ack(Protocol::V311, &ack), [0x40, 2, 0, 9]);
    let Packet::Ack(back) = decode(0x62, &[0, 9], Protocol::V5).unwrap() else {
        panic!("not an ack")
    };
    assert_eq!(back.kind, AckKind::PubRel);
}

#[test]
fn an_incoming_publish_is_read_with_its_flags_topic_and_payload() {
    let mut packet = publish_header(Protocol::V5, "f/d1", QoS::AtLeastOnce, true, false, 3, 5);
    packet.extend_from_slice(b"m v=1");
    let mut reader = &packet[..];
    let Packet::Publish(p) = read_packet(&mut reader, Protocol::V5, 1024).unwrap() else {
        panic!("not a PUBLISH")
    };
    assert_eq!(
        (p.topic.as_str(), p.packet_id, p.qos),
        ("f/d1", 3, QoS::AtLeastOnce)
    );
    assert!(p.retain && !p.dup);
    assert_eq!(p.payload, b"m v=1");
}

#[test]
fn a_packet_over_the_read_limit_or_cut_short_is_an_error_not_a_panic() {
    let mut long = &[0x30u8, 0x80, 0x01][..];
    assert!(matches!(
        read_packet(&mut long, Protocol::V5, 100),
        Err(CodecError::TooLong(128, 100))
    ));
    assert!(matches!(
        decode(0x40, &[0], Protocol::V5),
        Err(CodecError::Truncated("PUBACK"))
    ));
    assert!(matches!(
        decode(0x20, &[0, 0, 5, 0x27, 0], Protocol::V5),
        Err(CodecError::Truncated("CONNACK"))
    ));
    let mut cut = &[0x40u8, 0x02, 0x00][..];
    assert!(matches!(
        read_packet(&mut cut, Protocol::V5, 100),
        Err(CodecError::Io(_))
    ));
}

#[test]
fn a_broker_disconnect_carries_its_reason_and_ours_can_ask_for_the_will() {
    let packet = decode(0xE0, &[0x97, 0], Protocol::V5).unwrap();
    assert_eq!(
        packet,
        Packet::Disconnect {
            reason: ReasonCode::QUOTA_EXCEEDED,
            reason_string: None
        }
    );
    assert_eq!(
        disconnect(Protocol::V5, ReasonCode::DISCONNECT_WITH_WILL),
        [0xE0, 2, 0x04, 0]
    );
    assert_eq!(
        disconnect(Protocol::V311, ReasonCode::DISCONNECT_WITH_WILL),
        [0xE0, 0]
    );
    assert_eq!(PINGREQ, [0xC0, 0]);
    assert_eq!(decode(0xD0, &[], Protocol::V5).unwrap(), Packet::PingResp);
}

#[test]
fn subscribe_has_fixed_flags_0010_and_a_suback_lists_granted_qos() {
    assert_eq!(
        subscribe(Protocol::V5, 1, "a/#", QoS::AtLeastOnce),
        [0x82, 9, 0, 1, 0, 0, 3, b'a', b'/', b'#', 1]
    );
    let packet = decode(0x90, &[0, 1, 0, 1], Protocol::V5).unwrap();
    assert_eq!(
        packet,
        Packet::SubAck {
            packet_id: 1,
            reasons: vec![1]
        }
    );
}
