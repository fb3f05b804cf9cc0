//! The `[upload]` keys of the MQTT output (`url = "mqtt://…"` or `"mqtts://…"`), and which
//! keys belong to which output: a board that mixes them is refused by `check`, so a key that
//! would be silently ignored never looks like it works.

use super::UploadConfig;
use serde::Deserialize;
use std::time::Duration;

/// `protocol = "5"` (the default) or `"3.1.1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MqttProtocol {
    #[serde(rename = "5")]
    V5,
    #[serde(rename = "3.1.1")]
    V311,
}

/// The topic when the board names none.
pub const DEFAULT_TOPIC: &str = "fieldlink/{device_id}";
/// The keep-alive when the board names none.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

impl UploadConfig {
    /// Whether the URL selects the MQTT output.
    pub fn is_mqtt(&self) -> bool {
        crate::upload::mqtt::is_mqtt_url(&self.url)
    }

    /// InfluxDB's write API. `validate` refuses an http(s) board without one, so the
    /// fallback is never used for a board that passed `check`.
    pub fn api(&self) -> super::Api {
        self.api.unwrap_or(super::Api::V2)
    }

    /// Bodies are gzip-compressed over HTTP unless `gzip = false`; MQTT payloads only with
    /// `gzip = true`, because Telegraf's influx parser reads plain payloads.
    pub fn gzip(&self) -> bool {
        self.gzip.unwrap_or(!self.is_mqtt())
    }

    /// The MQTT keys' values and combinations serde cannot check.
    pub(super) fn validate_mqtt(&self) -> Result<(), (&'static str, String)> {
        // The broker URL's error quotes the URL: never with credentials in it.
        crate::upload::mqtt::BrokerUrl::parse(&self.url).map_err(|e| {
            let shown = super::redact_url(&self.url);
            ("url", e.to_string().replace(&self.url, &shown))
        })?;
        let http_only = [
            ("api", self.api.is_some()),
            ("database", self.database.is_some()),
            ("retention_policy", self.retention_policy.is_some()),
            ("org", self.org.is_some()),
            ("bucket", self.bucket.is_some()),
            ("token_env", self.token_env.is_some()),
            ("token_file", self.token_file.is_some()),
            ("insecure_skip_verify", self.insecure_skip_verify),
            ("allow_plain_http", self.allow_plain_http),
        ];
        if let Some((key, _)) = http_only.iter().find(|(_, set)| *set) {
            return Err((
                key,
                format!("`{key}` is for InfluxDB over HTTP; an MQTT URL does not use it"),
            ));
        }
        if let Some(topic) = &self.topic {
            check_topic(topic).map_err(|m| ("topic", m))?;
        }
        if !matches!(self.qos, None | Some(1) | Some(2)) {
            return Err((
                "qos",
                "expected 1 or 2 (QoS 0 cannot confirm delivery)".into(),
            ));
        }
        self.check_mqtt_credentials()?;
        if self
            .keepalive
            .is_some_and(|k| k.as_secs() > u16::MAX as u64)
        {
            return Err(("keepalive", "expected at most 65535 s (18 h 12 min)".into()));
        }
        if self.batch_lines == 0 || self.batch_bytes < 1024 {
            let small = "expected batch_lines ≥ 1 and batch_bytes ≥ 1KiB";
            return Err(("batch_lines", small.into()));
        }
        if self.client_id.as_deref() == Some("") {
            return Err(("client_id", "expected a non-empty client id".into()));
        }
        Ok(())
    }

    /// Password and TLS keys that only make sense together.
    fn check_mqtt_credentials(&self) -> Result<(), (&'static str, String)> {
        if self.password_env.is_some() && self.password_file.is_some() {
            let both = "set either `password_env` or `password_file`, not both";
            return Err(("password_file", both.into()));
        }
        if self.username.is_none() && (self.password_env.is_some() || self.password_file.is_some())
        {
            return Err(("username", "a password needs a `username`".into()));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            let half = "`client_cert` and `client_key` go together (mutual TLS)";
            return Err(("client_key", half.into()));
        }
        let tls_files = self.ca_file.is_some() || self.client_cert.is_some();
        if tls_files && !self.url.starts_with("mqtts://") {
            let plain = "TLS files need an mqtts:// URL";
            return Err(("url", plain.into()));
        }
        Ok(())
    }

    /// MQTT keys on an HTTP board would be ignored: refuse them.
    pub(super) fn refuse_mqtt_keys(&self) -> Result<(), (&'static str, String)> {
        let mqtt_only = [
            ("topic", self.topic.is_some()),
            ("qos", self.qos.is_some()),
            ("client_id", self.client_id.is_some()),
            ("username", self.username.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_file", self.password_file.is_some()),
            ("client_cert", self.client_cert.is_some()),
            ("client_key", self.client_key.is_some()),
            ("keepalive", self.keepalive.is_some()),
            ("protocol", self.protocol.is_some()),
        ];
        match mqtt_only.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err((
                key,
                format!("`{key}` is for an MQTT broker (url = \"mqtt://…\" or \"mqtts://…\")"),
            )),
            None => Ok(()),
        }
    }
}

/// A topic to publish to: not empty, no wildcards, only the placeholders we fill in.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("expected a non-empty topic".into());
    }
    if topic.contains(['+', '#', '\0']) {
        return Err(format!(
            "`{topic}`: `+` and `#` are for subscribing; a topic to publish to cannot hold them"
        ));
    }
    let filled = topic
        .replace("{device_id}", "")
        .replace("{measurement}", "");
    if filled.contains(['{', '}']) {
        return Err(format!(
            "`{topic}`: the placeholders are {{device_id}} and {{measurement}}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(text: &str) -> UploadConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_mqtt_upload_needs_no_api_and_gzip_is_off_unless_asked_for() {
        let u = upload("url = \"mqtt://broker:1883\"\n");
        assert!(u.is_mqtt() && !u.gzip());
        assert_eq!(u.validate_mqtt(), Ok(()));
        assert!(upload("url = \"mqtt://b\"\ngzip = true\n").gzip());
        assert!(upload("url = \"http://b\"\napi = \"v1\"\n").gzip());
    }

    #[test]
    fn mqtt_keys_are_checked_one_by_one_with_the_key_named() {
        let key = |text: &str| upload(text).validate_mqtt().unwrap_err().0;
        assert_eq!(key("url = \"mqtt://b\"\napi = \"v2\"\n"), "api");
        assert_eq!(key("url = \"mqtt://b\"\ntoken_env = \"T\"\n"), "token_env");
        assert_eq!(key("url = \"mqtt://b\"\nqos = 0\n"), "qos");
        assert_eq!(key("url = \"mqtt://b\"\ntopic = \"a/#\"\n"), "topic");
        assert_eq!(key("url = \"mqtt://b\"\ntopic = \"a/{site}\"\n"), "topic");
        assert_eq!(
            key("url = \"mqtt://b\"\npassword_env = \"P\"\n"),
            "username"
        );
        let both =
            "url = \"mqtt://b\"\nusername = \"u\"\npassword_env = \"P\"\npassword_file = \"/p\"\n";
        assert_eq!(key(both), "password_file");
        assert_eq!(
            key("url = \"mqtts://b\"\nclient_cert = \"/c\"\n"),
            "client_key"
        );
        assert_eq!(key("url = \"mqtt://b\"\nca_file = \"/ca\"\n"), "url");
        assert_eq!(
            key("url = \"mqtt://b\"\nkeepalive = \"20h\"\n"),
            "keepalive"
        );
        assert_eq!(key("url = \"mqtt://b/topic\"\n"), "url");
        let fine = "url = \"mqtts://b\"\ntopic = \"f/{device_id}/{measurement}\"\nqos = 2\n\
                    username = \"u\"\npassword_file = \"/p\"\nclient_cert = \"/c\"\nclient_key = \"/k\"\n\
                    ca_file = \"/ca\"\nkeepalive = \"30s\"\nprotocol = \"3.1.1\"\n";
        assert_eq!(upload(fine).validate_mqtt(), Ok(()));
        assert_eq!(upload(fine).protocol, Some(MqttProtocol::V311));
    }

    #[test]
    fn an_http_board_with_an_mqtt_key_is_refused() {
        let u = upload("url = \"http://b\"\napi = \"v1\"\ntopic = \"t\"\n");
        assert_eq!(u.refuse_mqtt_keys().unwrap_err().0, "topic");
        let plain = upload("url = \"http://b\"\napi = \"v1\"\n");
        assert_eq!(plain.refuse_mqtt_keys(), Ok(()));
    }
}
