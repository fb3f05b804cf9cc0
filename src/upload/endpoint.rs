//! Where a batch goes and how it authenticates, for each InfluxDB write API. Precision is
//! always sent explicitly (nanoseconds), so no server default can shift our timestamps.

use super::secret::{Secret, SecretError};
use crate::config::{Api, UploadConfig};

/// Why the upload settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    #[error(transparent)]
    Token(#[from] SecretError),
    #[error("upload.url {0}: refusing to send a token over plain http to a host that is not loopback; use https or set upload.allow_plain_http = true")]
    PlainHttp(String),
}

pub struct Endpoint {
    pub url: String,
    api: Api,
    token: Secret,
    pub gzip: bool,
}

/// The board keys a token comes from, for errors.
const TOKEN_KEYS: (&str, &str) = ("token_env", "token_file");

impl Endpoint {
    /// The endpoint with its token read now: fails when the token cannot be had (`check`,
    /// `sync`).
    pub fn new(cfg: &UploadConfig) -> Result<Endpoint, EndpointError> {
        let token = Secret::load(
            cfg.token_env.as_deref(),
            cfg.token_file.as_deref(),
            TOKEN_KEYS,
        )?;
        Endpoint::with_token(cfg, token)
    }

    /// The endpoint even while its token is missing (the agent: it samples and queues
    /// anyway); each request reads the token again, and fails until it is there.
    pub fn waiting_for_token(cfg: &UploadConfig) -> Result<Endpoint, EndpointError> {
        let token = Secret::deferred(
            cfg.token_env.as_deref(),
            cfg.token_file.as_deref(),
            TOKEN_KEYS,
        );
        Endpoint::with_token(cfg, token)
    }

    fn with_token(cfg: &UploadConfig, token: Secret) -> Result<Endpoint, EndpointError> {
        if !token.is_none()
            && cfg.url.starts_with("http://")
            && !is_loopback(&cfg.url)
            && !cfg.allow_plain_http
        {
            return Err(EndpointError::PlainHttp(cfg.url.clone()));
        }
        Ok(Endpoint {
            url: write_url(cfg),
            api: cfg.api(),
            token,
            gzip: cfg.gzip(),
        })
    }

    /// Headers for one request; re-reads the token file if it changed.
    pub fn headers(&mut self) -> Result<Vec<(&'static str, String)>, EndpointError> {
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8".to_string())];
        if self.gzip {
            headers.push(("Content-Encoding", "gzip".to_string()));
        }
        if let Some(secret) = self.token.value()? {
            let scheme = match self.api {
                Api::V1 | Api::V2 => "Token",
                Api::V3 => "Bearer",
            };
            headers.push(("Authorization", format!("{scheme} {secret}")));
        }
        Ok(headers)
    }

    pub fn api(&self) -> Api {
        self.api
    }
}

/// The write URL with its query: database/bucket, precision and, for v3, partial writes on
/// (so a bad line costs only itself).
pub fn write_url(cfg: &UploadConfig) -> String {
    let base = cfg.url.trim_end_matches('/');
    let enc = |s: &Option<String>| percent_encode(s.as_deref().unwrap_or(""));
    match cfg.api() {
        Api::V1 => {
            let mut url = format!("{base}/write?db={}&precision=ns", enc(&cfg.database));
            if let Some(rp) = &cfg.retention_policy {
                url.push_str(&format!("&rp={}", percent_encode(rp)));
            }
            url
        }
        Api::V2 => format!(
            "{base}/api/v2/write?org={}&bucket={}&precision=ns",
            enc(&cfg.org),
            enc(&cfg.bucket)
        ),
        Api::V3 => format!(
            "{base}/api/v3/write_lp?db={}&precision=nanosecond&accept_partial=true",
            enc(&cfg.database)
        ),
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or("");
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(api: Api) -> UploadConfig {
        let text = "url = \"http://127.0.0.1:8086/\"\napi = \"v1\"\ndatabase = \"iot db\"\norg = \"my org\"\nbucket = \"b\"\n";
        let mut c: UploadConfig = toml::from_str(text).unwrap();
        c.api = Some(api);
        c
    }

    #[test]
    fn each_api_gets_its_path_and_an_explicit_precision() {
        assert_eq!(
            write_url(&cfg(Api::V1)),
            "http://127.0.0.1:8086/write?db=iot%20db&precision=ns"
        );
        assert_eq!(
            write_url(&cfg(Api::V2)),
            "http://127.0.0.1:8086/api/v2/write?org=my%20org&bucket=b&precision=ns"
        );
        assert_eq!(
            write_url(&cfg(Api::V3)),
            "http://127.0.0.1:8086/api/v3/write_lp?db=iot%20db&precision=nanosecond&accept_partial=true"
        );
    }

    #[test]
    fn a_token_over_plain_http_to_a_remote_host_is_refused() {
        std::env::set_var("FIELDLINK_TEST_TOKEN_A", "secret");
        let mut c = cfg(Api::V2);
        c.token_env = Some("FIELDLINK_TEST_TOKEN_A".into());
        assert!(Endpoint::new(&c).is_ok(), "loopback is fine");
        c.url = "http://influx.example:8086".into();
        assert!(matches!(
            Endpoint::new(&c),
            Err(EndpointError::PlainHttp(_))
        ));
        c.allow_plain_http = true;
        assert!(Endpoint::new(&c).is_ok());
    }

    #[test]
    fn v3_uses_bearer_and_v2_uses_token_auth() {
        std::env::set_var("FIELDLINK_TEST_TOKEN_B", "s3");
        let mut c = cfg(Api::V3);
        c.token_env = Some("FIELDLINK_TEST_TOKEN_B".into());
        let auth = |c: &UploadConfig| {
            Endpoint::new(c)
                .unwrap()
                .headers()
                .unwrap()
                .into_iter()
                .find(|h| h.0 == "Authorization")
                .unwrap()
                .1
        };
        assert_eq!(auth(&c), "Bearer s3");
        c.api = Some(Api::V2);
        assert_eq!(auth(&c), "Token s3");
    }

    #[test]
    fn a_token_file_others_can_read_is_refused_and_a_changed_one_is_picked_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = cfg(Api::V2);
        c.token_file = Some(path.clone());
        assert!(Endpoint::new(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut endpoint = Endpoint::new(&c).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "two").unwrap();
        let headers = endpoint.headers().unwrap();
        assert!(headers.contains(&("Authorization", "Token two".to_string())));
    }
}
