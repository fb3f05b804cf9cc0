//! The network, behind a trait: the uploader's decisions are tested against canned replies,
//! and the real thing (ureq over a kept-alive connection, rustls for https) is tested against a
//! real InfluxDB and a fault-injecting server.

use std::time::Duration;

/// What came back from the server, reduced to what the uploader decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// The raw `Retry-After` header (seconds or an HTTP date).
    pub retry_after: Option<String>,
    pub body: String,
}

/// Why no reply came, or the transport could not be built. Each keeps its cause as `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request got no reply: DNS, refused or reset connection, TLS, timeout.
    #[error("no reply from the server")]
    Request(#[source] ureq::Error),
    /// The connection failed below HTTP (what other transports, and test servers, report).
    #[error("connection failed")]
    Io(#[source] std::io::Error),
    /// The private CA bundle named by `upload.ca_file` cannot be read.
    #[error("upload.ca_file {path}: cannot read it")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle holds no PEM certificate.
    #[error("upload.ca_file {path}: no PEM certificates in it")]
    NoCertificates { path: std::path::PathBuf },
}

/// One POST of a (possibly gzip-compressed) line-protocol body.
pub trait Transport: Send {
    fn post(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError>;
}

/// The real transport: one ureq agent, so the connection is kept alive between batches.
pub struct HttpTransport {
    agent: ureq::Agent,
}

/// TLS choices from the board file.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM bundle of a private CA; replaces the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure_skip_verify: bool,
}

/// The connection's read and write buffers.
const IO_BUFFER_BYTES: usize = 16 * 1024;

/// Where Debian and Raspberry Pi OS keep the system's CA bundle.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl HttpTransport {
    pub fn new(timeout: Duration, tls: &TlsOptions) -> Result<HttpTransport, TransportError> {
        Self::for_url("https://", timeout, tls)
    }

    /// Plain-http endpoints skip loading the system CA bundle, which costs about 2 MiB of RSS.
    pub fn for_url(
        url: &str,
        timeout: Duration,
        tls: &TlsOptions,
    ) -> Result<HttpTransport, TransportError> {
        let roots = match &tls.ca_file {
            Some(path) => load_roots(path)?,
            None if !url.starts_with("https://") => ureq::tls::RootCerts::WebPki,
            None if std::path::Path::new(SYSTEM_CA_BUNDLE).exists() => {
                load_roots(std::path::Path::new(SYSTEM_CA_BUNDLE))?
            }
            None => ureq::tls::RootCerts::WebPki,
        };
        let tls_config = ureq::tls::TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(tls.insecure_skip_verify)
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            // ureq's defaults are 128 KiB each way, zero-filled: a quarter of the agent's heap.
            // A reply's head fits with room to spare, and a body goes out in a few writes.
            .input_buffer_size(IO_BUFFER_BYTES)
            .output_buffer_size(IO_BUFFER_BYTES)
            .tls_config(tls_config)
            .user_agent(concat!("fieldlink/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(HttpTransport {
            agent: config.into(),
        })
    }
}

fn load_roots(path: &std::path::Path) -> Result<ureq::tls::RootCerts, TransportError> {
    let pem = std::fs::read(path).map_err(|source| TransportError::CaFile {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(TransportError::NoCertificates {
            path: path.to_path_buf(),
        });
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

impl Transport for HttpTransport {
    fn post(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, TransportError> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let mut response = request.send(body).map_err(TransportError::Request)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Error bodies are short JSON or text; cap what we keep so a hostile server can't fill RAM.
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}
