//! MQTT 5 reason codes (section 2.4): one byte in CONNACK, the publish acknowledgements and
//! DISCONNECT that says what the broker did. Below 0x80 is success; 0x80 and above a failure.
//! MQTT 3.1.1 CONNACK return codes are mapped onto them, so there is one vocabulary.

use std::fmt;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCode(pub u8);

impl ReasonCode {
    pub const SUCCESS: ReasonCode = ReasonCode(0x00);
    /// DISCONNECT: publish the will even though this is a clean disconnect.
    pub const DISCONNECT_WITH_WILL: ReasonCode = ReasonCode(0x04);
    pub const NO_MATCHING_SUBSCRIBERS: ReasonCode = ReasonCode(0x10);
    pub const UNSPECIFIED_ERROR: ReasonCode = ReasonCode(0x80);
    pub const UNSUPPORTED_PROTOCOL_VERSION: ReasonCode = ReasonCode(0x84);
    pub const CLIENT_IDENTIFIER_NOT_VALID: ReasonCode = ReasonCode(0x85);
    pub const BAD_USER_NAME_OR_PASSWORD: ReasonCode = ReasonCode(0x86);
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(0x87);
    pub const SERVER_UNAVAILABLE: ReasonCode = ReasonCode(0x88);
    pub const SERVER_BUSY: ReasonCode = ReasonCode(0x89);
    pub const BANNED: ReasonCode = ReasonCode(0x8A);
    pub const BAD_AUTHENTICATION_METHOD: ReasonCode = ReasonCode(0x8C);
    pub const TOPIC_NAME_INVALID: ReasonCode = ReasonCode(0x90);
    pub const PACKET_IDENTIFIER_IN_USE: ReasonCode = ReasonCode(0x91);
    pub const PACKET_IDENTIFIER_NOT_FOUND: ReasonCode = ReasonCode(0x92);
    pub const PACKET_TOO_LARGE: ReasonCode = ReasonCode(0x95);
    pub const QUOTA_EXCEEDED: ReasonCode = ReasonCode(0x97);
    pub const PAYLOAD_FORMAT_INVALID: ReasonCode = ReasonCode(0x99);
    pub const QOS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9B);
    pub const CONNECTION_RATE_EXCEEDED: ReasonCode = ReasonCode(0x9F);

    pub fn is_success(self) -> bool {
        self.0 < 0x80
    }

    /// MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) as the MQTT 5 codes that mean the same.
    pub fn from_v3_connack(code: u8) -> ReasonCode {
        match code {
            0 => ReasonCode::SUCCESS,
            1 => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            2 => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            3 => ReasonCode::SERVER_UNAVAILABLE,
            4 => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            5 => ReasonCode::NOT_AUTHORIZED,
            _ => ReasonCode::UNSPECIFIED_ERROR,
        }
    }

    /// The specification's name for the code, for logs and `status`.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "success",
            0x04 => "disconnect with will message",
            0x10 => "no matching subscribers",
            0x80 => "unspecified error",
            0x81 => "malformed packet",
            0x82 => "protocol error",
            0x83 => "implementation specific error",
            0x84 => "unsupported protocol version",
            0x85 => "client identifier not valid",
            0x86 => "bad user name or password",
            0x87 => "not authorized",
            0x88 => "server unavailable",
            0x89 => "server busy",
            0x8A => "banned",
            0x8B => "server shutting down",
            0x8C => "bad authentication method",
            0x8D => "keep alive timeout",
            0x8E => "session taken over",
            0x90 => "topic name invalid",
            0x91 => "packet identifier in use",
            0x92 => "packet identifier not found",
            0x93 => "receive maximum exceeded",
            0x95 => "packet too large",
            0x96 => "message rate too high",
            0x97 => "quota exceeded",
            0x98 => "administrative action",
            0x99 => "payload format invalid",
            0x9A => "retain not supported",
            0x9B => "QoS not supported",
            0x9C => "use another server",
            0x9D => "server moved",
            0x9F => "connection rate exceeded",
            _ => "unknown reason",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_below_0x80_are_successes_and_print_with_their_spec_name() {
        assert!(ReasonCode::NO_MATCHING_SUBSCRIBERS.is_success());
        assert!(!ReasonCode::NOT_AUTHORIZED.is_success());
        assert_eq!(ReasonCode(0x87).to_string(), "not authorized (0x87)");
        assert_eq!(ReasonCode::from_v3_connack(5), ReasonCode::NOT_AUTHORIZED);
        assert_eq!(ReasonCode::from_v3_connack(4), ReasonCode(0x86));
    }
}
