//! The MQTT output: the same queue and guarantees as the HTTP output, delivered through a
//! broker (Mosquitto, EMQX, HiveMQ, AWS IoT Core) that a consumer such as Telegraf's
//! `mqtt_consumer` reads into InfluxDB. A reading leaves the queue only when the broker has
//! acknowledged it; MQTT 5 is the default because its acknowledgements say when the broker
//! refused a message, which MQTT 3.1.1's cannot.
//!
//! [`codec`] is the packets as bytes, [`link`] one connection and its exchanges, [`client`] a
//! synchronous publishing session, [`output`] the translation of the broker's answers into
//! the delivery policy's.

pub mod client;
pub mod codec;
pub mod link;
pub mod output;
pub mod reason;
pub mod settings;
pub mod tls;

/// Where the broker is, from `upload.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// Why `upload.url` is not a broker address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

/// Whether a URL selects the MQTT output.
pub fn is_mqtt_url(url: &str) -> bool {
    url.starts_with("mqtt://") || url.starts_with("mqtts://")
}

impl BrokerUrl {
    /// `mqtt://host[:port]` (default 1883) or `mqtts://host[:port]` (default 8883); an IPv6
    /// host is written in brackets. Nothing may follow the port: the topic is its own key.
    pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(UrlError(format!(
                "{url:?} is not an MQTT URL (mqtt://host:1883 or mqtts://host:8883)"
            )));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(UrlError(format!(
                "{url:?}: only host and port go in the URL; the topic is upload.topic and credentials are upload.username and password_env/password_file"
            )));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| UrlError(format!("{url:?}: the port is not a number")))?;
        if host.is_empty() {
            return Err(UrlError(format!("{url:?} has no host")));
        }
        Ok(BrokerUrl {
            host: host.to_string(),
            port: port.unwrap_or(if tls { 8883 } else { 1883 }),
            tls,
        })
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    match port {
        Some(p) => p.parse().ok().map(|p| (host, Some(p))),
        None => Some((host, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_give_host_port_and_tls_with_the_standard_ports_by_default() {
        let url = |s| BrokerUrl::parse(s).unwrap();
        assert_eq!(
            url("mqtt://broker.lan"),
            BrokerUrl {
                host: "broker.lan".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(
            url("mqtts://b:8884/"),
            BrokerUrl {
                host: "b".into(),
                port: 8884,
                tls: true
            }
        );
        assert_eq!(url("mqtts://[::1]").port, 8883);
        assert_eq!(url("mqtt://[::1]:1884").host, "::1");
    }

    #[test]
    fn a_url_with_a_path_credentials_or_a_bad_port_is_refused_with_a_hint() {
        assert!(BrokerUrl::parse("mqtt://b/fieldlink")
            .unwrap_err()
            .0
            .contains("upload.topic"));
        assert!(BrokerUrl::parse("mqtt://u:p@b").is_err());
        assert!(BrokerUrl::parse("mqtt://b:x")
            .unwrap_err()
            .0
            .contains("port"));
        assert!(BrokerUrl::parse("mqtt://").is_err());
        assert!(BrokerUrl::parse("http://b").is_err());
        assert!(is_mqtt_url("mqtts://b") && !is_mqtt_url("https://b"));
    }
}
