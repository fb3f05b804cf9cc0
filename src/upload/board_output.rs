//! The output a board's `[upload]` section names: InfluxDB over HTTP (`http://`, `https://`)
//! or an MQTT broker (`mqtt://`, `mqtts://`). The uploader is the same for both.

use super::endpoint::{Endpoint, EndpointError};
use super::mqtt::output::MqttOutput;
use super::transport::{HttpTransport, TlsOptions};
use super::{Answer, ConnectError, InfluxHttp, Output};
use crate::config::UploadConfig;

pub enum BoardOutput {
    Influx(InfluxHttp<HttpTransport>),
    Mqtt(Box<MqttOutput>),
}

impl BoardOutput {
    /// Build the output; nothing is sent yet. `device_id` names the device to a broker.
    pub fn for_board(cfg: &UploadConfig, device_id: &str) -> Result<BoardOutput, ConnectError> {
        BoardOutput::with_endpoint(cfg, device_id, Endpoint::new)
    }

    /// Like [`BoardOutput::for_board`], but an InfluxDB token that is not there yet only
    /// makes each send fail until it appears (the agent samples and queues meanwhile).
    pub fn waiting_for_token(
        cfg: &UploadConfig,
        device_id: &str,
    ) -> Result<BoardOutput, ConnectError> {
        BoardOutput::with_endpoint(cfg, device_id, Endpoint::waiting_for_token)
    }

    fn with_endpoint(
        cfg: &UploadConfig,
        device_id: &str,
        endpoint: fn(&UploadConfig) -> Result<Endpoint, EndpointError>,
    ) -> Result<BoardOutput, ConnectError> {
        if cfg.is_mqtt() {
            let output = super::mqtt::settings::output(cfg, device_id)?;
            return Ok(BoardOutput::Mqtt(Box::new(output)));
        }
        let endpoint = endpoint(cfg)?;
        let tls = TlsOptions {
            ca_file: cfg.ca_file.clone(),
            insecure_skip_verify: cfg.insecure_skip_verify,
        };
        let transport = HttpTransport::for_url(&cfg.url, cfg.timeout, &tls)?;
        if cfg.insecure_skip_verify {
            log::warn!("upload.insecure_skip_verify = true: TLS certificates are NOT checked; anyone on the path can read and alter uploads");
        }
        Ok(BoardOutput::Influx(InfluxHttp::new(endpoint, transport)))
    }
}

impl Output for BoardOutput {
    fn gzip(&self) -> bool {
        match self {
            BoardOutput::Influx(http) => http.gzip(),
            BoardOutput::Mqtt(mqtt) => mqtt.gzip(),
        }
    }

    fn send(&mut self, body: &[u8], wall_ns: i64) -> Answer {
        match self {
            BoardOutput::Influx(http) => http.send(body, wall_ns),
            BoardOutput::Mqtt(mqtt) => mqtt.send(body),
        }
    }
}
