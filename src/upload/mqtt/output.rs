//! The MQTT output: publishes a batch of line protocol (exactly the body the HTTP output
//! would post, gzip-compressed or not) and translates the broker's answer into the delivery
//! policy's vocabulary. Everything else (what to delete, split, dead-letter, when to retry)
//! is the policy's, the same as for HTTP.

use super::client::{Client, Delivery};
use super::codec::QoS;
use super::link::LinkError;
use super::reason::ReasonCode;
use crate::upload::secret::Secret;
use crate::upload::Answer;
use std::io::Read;

/// A topic with `{measurement}` left to fill per message (`{device_id}` is filled already).
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    template: String,
}

impl Topic {
    pub fn new(template: &str, device_id: &str) -> Topic {
        Topic {
            template: template.replace("{device_id}", device_id),
        }
    }

    /// Whether each measurement gets its own messages.
    pub fn per_measurement(&self) -> bool {
        self.template.contains("{measurement}")
    }

    pub fn for_measurement(&self, measurement: &str) -> String {
        self.template.replace("{measurement}", measurement)
    }

    pub fn as_str(&self) -> &str {
        &self.template
    }
}

pub struct MqttOutput {
    client: Client,
    topic: Topic,
    qos: QoS,
    gzip: bool,
    /// Re-read before each new connection, so a rotated password needs no restart.
    password: Secret,
}

impl MqttOutput {
    pub fn new(client: Client, topic: Topic, qos: QoS, gzip: bool, password: Secret) -> MqttOutput {
        MqttOutput {
            client,
            topic,
            qos,
            gzip,
            password,
        }
    }

    /// Whether payloads are gzip-compressed.
    pub fn gzip(&self) -> bool {
        self.gzip
    }

    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Publish one body (one message, or one per measurement) and say what the broker did.
    /// With several messages the first refusal is the answer: the ones before it are sent
    /// again with the rest of the batch, which InfluxDB merges as duplicates.
    pub fn send(&mut self, body: &[u8]) -> Answer {
        if !self.client.is_connected() {
            match self.password.value() {
                Ok(password) => self
                    .client
                    .set_password(password.map(|p| p.as_bytes().to_vec())),
                Err(e) => {
                    return Answer::Misconfigured {
                        reason: e.to_string(),
                    }
                }
            }
        }
        if !self.topic.per_measurement() {
            let topic = self.topic.as_str().to_string();
            return answer(&topic, self.client.publish(&topic, body, self.qos, false));
        }
        let groups = match self.by_measurement(body) {
            Ok(groups) => groups,
            Err(e) => {
                return Answer::Rejected {
                    message: format!("cannot read the batch back to split it by measurement: {e}"),
                }
            }
        };
        for (measurement, lines) in groups {
            let topic = self.topic.for_measurement(&measurement);
            let payload = if self.gzip {
                crate::upload::gzip(&lines)
            } else {
                lines
            };
            match answer(
                &topic,
                self.client.publish(&topic, &payload, self.qos, false),
            ) {
                Answer::Accepted => {}
                other => return other,
            }
        }
        Answer::Accepted
    }

    /// The body's lines grouped by measurement (see [`group_by_measurement`]).
    fn by_measurement(&self, body: &[u8]) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        if !self.gzip {
            return Ok(group_by_measurement(body));
        }
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body).read_to_end(&mut plain)?;
        Ok(group_by_measurement(&plain))
    }
}

/// Lines grouped by measurement, in order of first appearance, each group newline-separated.
pub fn group_by_measurement(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut groups: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let name = measurement_of(line);
        let index = match groups.iter().position(|(m, _)| *m == name) {
            Some(i) => i,
            None => {
                groups.push((name, Vec::new()));
                groups.len() - 1
            }
        };
        let group = &mut groups[index].1;
        if !group.is_empty() {
            group.push(b'\n');
        }
        group.extend_from_slice(line);
    }
    groups
}

/// The measurement of a line-protocol line, unescaped: up to the first unescaped comma or
/// space. A topic level cannot hold `+`, `#` or `/` usefully, so those become `_`.
pub fn measurement_of(line: &[u8]) -> String {
    let mut name = Vec::new();
    let mut escaped = false;
    for &b in line {
        match b {
            _ if escaped => {
                name.push(b);
                escaped = false;
            }
            b'\\' => escaped = true,
            b',' | b' ' => break,
            _ => name.push(b),
        }
    }
    String::from_utf8_lossy(&name).replace(['+', '#', '/'], "_")
}

/// What a publish result means for the batch (DESIGN.md, "MQTT"; MQTT 5 section 3.4.2.1).
pub fn answer(topic: &str, result: Result<Delivery, LinkError>) -> Answer {
    match result {
        Ok(delivery) => delivery_answer(topic, delivery),
        Err(LinkError::TooLarge { .. }) => Answer::TooLarge,
        Err(LinkError::Refused { reason, message }) => refusal(reason, message, "connection"),
        Err(LinkError::Disconnected { reason, message }) => match reason {
            ReasonCode::PACKET_TOO_LARGE => Answer::TooLarge,
            _ => refusal(reason, message, "publish"),
        },
        Err(e) => Answer::Unavailable {
            reason: format!("MQTT: {e}"),
            retry_after: None,
        },
    }
}

fn delivery_answer(topic: &str, delivery: Delivery) -> Answer {
    let Delivery {
        reason,
        reason_string,
    } = delivery;
    let detail = reason_string
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    match reason {
        r if r.is_success() => Answer::Accepted,
        ReasonCode::NOT_AUTHORIZED | ReasonCode::TOPIC_NAME_INVALID => Answer::Misconfigured {
            reason: format!(
                "broker refused a publish to {topic:?}: {reason}{detail}; fix the broker's ACL or upload.topic"
            ),
        },
        ReasonCode::PACKET_TOO_LARGE => Answer::TooLarge,
        ReasonCode::PAYLOAD_FORMAT_INVALID => Answer::Rejected {
            message: format!("broker: {reason}{detail}"),
        },
        _ => Answer::Unavailable {
            reason: format!("broker refused a publish to {topic:?}: {reason}{detail}"),
            retry_after: None,
        },
    }
}

/// A CONNACK or DISCONNECT with a failure reason: credentials and permissions need an
/// operator (long backoff); a busy or unavailable broker only needs time.
fn refusal(reason: ReasonCode, message: Option<String>, what: &str) -> Answer {
    let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
    match reason {
        ReasonCode::NOT_AUTHORIZED
        | ReasonCode::BAD_USER_NAME_OR_PASSWORD
        | ReasonCode::BANNED
        | ReasonCode::BAD_AUTHENTICATION_METHOD
        | ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
        | ReasonCode::TOPIC_NAME_INVALID => Answer::Misconfigured {
            reason: format!(
                "broker refused the {what}: {reason}{detail}; check upload.username, the password and the broker's ACL"
            ),
        },
        _ => Answer::Unavailable {
            reason: format!("broker refused the {what}: {reason}{detail}"),
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(code: u8) -> Answer {
        let delivery = Delivery {
            reason: ReasonCode(code),
            reason_string: None,
        };
        answer("t", Ok(delivery))
    }

    #[test]
    fn each_puback_reason_code_maps_to_what_the_policy_does_with_it() {
        assert_eq!(acked(0x00), Answer::Accepted);
        assert_eq!(acked(0x10), Answer::Accepted, "no matching subscribers");
        assert!(
            matches!(acked(0x87), Answer::Misconfigured { reason } if reason.contains("not authorized"))
        );
        assert!(matches!(acked(0x90), Answer::Misconfigured { .. }));
        assert!(matches!(
            acked(0x97),
            Answer::Unavailable {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(acked(0x89), Answer::Unavailable { .. }));
        assert!(matches!(acked(0x80), Answer::Unavailable { .. }));
        assert_eq!(acked(0x95), Answer::TooLarge);
        assert!(
            matches!(acked(0x99), Answer::Rejected { message } if message.contains("payload format invalid"))
        );
    }

    #[test]
    fn connection_refusals_split_into_operator_problems_and_passing_ones() {
        let refused = |code| {
            answer(
                "t",
                Err(LinkError::Refused {
                    reason: ReasonCode(code),
                    message: None,
                }),
            )
        };
        assert!(matches!(refused(0x86), Answer::Misconfigured { .. }));
        assert!(matches!(refused(0x87), Answer::Misconfigured { .. }));
        assert!(matches!(refused(0x89), Answer::Unavailable { .. }));
        let too_large = LinkError::TooLarge { size: 9, max: 8 };
        assert_eq!(answer("t", Err(too_large)), Answer::TooLarge);
        let cut = LinkError::Disconnected {
            reason: ReasonCode::PACKET_TOO_LARGE,
            message: None,
        };
        assert_eq!(answer("t", Err(cut)), Answer::TooLarge);
        let io = LinkError::Io(std::io::Error::other("reset"));
        assert!(matches!(answer("t", Err(io)), Answer::Unavailable { .. }));
    }

    #[test]
    fn a_lines_measurement_is_read_up_to_the_first_unescaped_comma_or_space() {
        assert_eq!(measurement_of(b"climate,sensor_id=a t=1 5"), "climate");
        assert_eq!(measurement_of(b"cold\\ store,x=1 v=1 5"), "cold store");
        assert_eq!(measurement_of(b"a\\,b v=1"), "a,b");
        assert_eq!(measurement_of(b"a/b+c#d v=1"), "a_b_c_d");
    }

    #[test]
    fn a_batch_splits_into_one_payload_per_measurement_keeping_line_order() {
        let body = b"climate,s=a t=1 1\ndoor,s=b open=1i 2\nclimate,s=c t=2 3";
        let groups = group_by_measurement(body);
        let names: Vec<&str> = groups.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(names, ["climate", "door"]);
        assert_eq!(groups[0].1, b"climate,s=a t=1 1\nclimate,s=c t=2 3");
        assert_eq!(groups[1].1, b"door,s=b open=1i 2");
    }

    #[test]
    fn the_topic_fills_the_device_id_once_and_the_measurement_per_message() {
        let topic = Topic::new("fleet/{device_id}/{measurement}", "pi-7");
        assert!(topic.per_measurement());
        assert_eq!(topic.for_measurement("climate"), "fleet/pi-7/climate");
        assert!(!Topic::new("fieldlink/{device_id}", "x").per_measurement());
    }
}
