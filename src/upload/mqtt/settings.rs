//! From a board's `[upload]` section (with an `mqtt://` or `mqtts://` URL) to a ready output:
//! broker address, TLS, identity, credentials, topic and QoS, with the documented defaults.

use super::client::{Client, ClientOptions};
use super::codec::{Protocol, QoS};
use super::output::{MqttOutput, Topic};
use super::tls::{client_config, TlsError, TlsFiles};
use super::{BrokerUrl, UrlError};
use crate::config::{MqttProtocol, UploadConfig, DEFAULT_KEEPALIVE, DEFAULT_TOPIC};
use crate::upload::secret::{Secret, SecretError};
use std::time::Duration;

/// How long the broker keeps our session (and a message in flight) while we are away: long
/// enough for a day of Wi-Fi trouble, short enough that a retired device's session goes.
pub const SESSION_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Why the MQTT output cannot be set up from the board.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("upload.url: {0}")]
    Url(#[from] UrlError),
    #[error("upload TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Password(#[from] SecretError),
}

/// The topic `online`/`offline` presence goes to, for any board.
pub fn status_topic(device_id: &str) -> String {
    format!("fieldlink/{device_id}/status")
}

/// The output for `cfg`, not yet connected: the first send connects.
pub fn output(cfg: &UploadConfig, device_id: &str) -> Result<MqttOutput, SetupError> {
    let broker = BrokerUrl::parse(&cfg.url)?;
    let tls = match broker.tls {
        true => Some(client_config(&TlsFiles {
            ca_file: cfg.ca_file.clone(),
            client_cert: cfg.client_cert.clone(),
            client_key: cfg.client_key.clone(),
        })?),
        false => None,
    };
    let password = Secret::load(
        cfg.password_env.as_deref(),
        cfg.password_file.as_deref(),
        ("password_env", "password_file"),
    )?;
    let options = ClientOptions {
        host: broker.host,
        port: broker.port,
        tls,
        protocol: match cfg.protocol {
            Some(MqttProtocol::V311) => Protocol::V311,
            _ => Protocol::V5,
        },
        client_id: cfg
            .client_id
            .clone()
            .unwrap_or_else(|| device_id.to_string()),
        keepalive: cfg.keepalive.unwrap_or(DEFAULT_KEEPALIVE),
        session_expiry: SESSION_EXPIRY,
        username: cfg.username.clone(),
        password: None,
        status_topic: Some(status_topic(device_id)),
        timeout: cfg.timeout,
    };
    let topic = Topic::new(cfg.topic.as_deref().unwrap_or(DEFAULT_TOPIC), device_id);
    let qos = match cfg.qos {
        Some(2) => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    };
    Ok(MqttOutput::new(
        Client::new(options),
        topic,
        qos,
        cfg.gzip(),
        password,
    ))
}

/// What `check` prints about an MQTT upload; the password is only said to be set or not.
pub fn describe(cfg: &UploadConfig, device_id: &str) -> Vec<String> {
    let protocol = match cfg.protocol {
        Some(MqttProtocol::V311) => "MQTT 3.1.1 (cannot see refused publishes)",
        _ => "MQTT 5",
    };
    let topic = Topic::new(cfg.topic.as_deref().unwrap_or(DEFAULT_TOPIC), device_id);
    let auth = match (&cfg.username, &cfg.password_env, &cfg.password_file) {
        (None, ..) => "anonymous".to_string(),
        (Some(user), Some(var), _) => format!("user {user}, password from ${var} (redacted)"),
        (Some(user), None, Some(file)) => {
            format!("user {user}, password from {} (redacted)", file.display())
        }
        (Some(user), None, None) => format!("user {user}, no password"),
    };
    vec![
        format!(
            "upload: {} ({protocol}, QoS {})",
            cfg.url,
            cfg.qos.unwrap_or(1)
        ),
        format!("  topic: {}", topic.as_str()),
        format!(
            "  presence: {} (retained online / will offline)",
            status_topic(device_id)
        ),
        format!("  auth: {auth}"),
    ]
}
