//! Checks of the `[upload]` section that serde cannot express: the keys an API version needs,
//! a URL the agent can append its write path to, and files (token, CA bundle) that would only
//! fail once the agent runs. Credentials never sit in the URL, and a URL is never printed with
//! them.

use super::{Api, UploadConfig};
use std::path::Path;
use std::time::Duration;

/// Shortest upload timeout: a zero timeout fails every request before it is sent.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

impl UploadConfig {
    /// Keys an API version (or the MQTT output) needs, and values serde cannot check. Returns
    /// the key and message.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.is_mqtt() {
            self.validate_mqtt()?;
        } else {
            self.refuse_mqtt_keys()?;
            self.validate_http()?;
        }
        if let Some(path) = &self.ca_file {
            check_ca_file(path).map_err(|m| ("ca_file", m))?;
        }
        if self.timeout < MIN_TIMEOUT {
            return Err((
                "timeout",
                format!("expected at least \"1s\", got {:?}", self.timeout),
            ));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), (&'static str, String)> {
        let need = |key: &'static str, value: &Option<String>, api: &str| match value {
            Some(v) if !v.is_empty() => Ok(()),
            _ => Err((key, format!("api = \"{api}\" needs `{key}`"))),
        };
        match self.api {
            None => {
                let missing = "an http(s) URL needs `api` = \"v1\", \"v2\" or \"v3\"";
                return Err(("api", missing.into()));
            }
            Some(Api::V1) => need("database", &self.database, "v1")?,
            Some(Api::V2) => {
                need("org", &self.org, "v2")?;
                need("bucket", &self.bucket, "v2")?;
            }
            Some(Api::V3) => need("database", &self.database, "v3")?,
        }
        check_url(&self.url).map_err(|m| ("url", m))?;
        if self.token_env.is_some() && self.token_file.is_some() {
            return Err((
                "token_file",
                "set either `token_env` or `token_file`, not both".into(),
            ));
        }
        if let Some(path) = &self.token_file {
            check_token_file(path).map_err(|m| ("token_file", m))?;
        }
        if self.batch_lines == 0 || self.batch_bytes < 1024 {
            return Err((
                "batch_lines",
                "expected batch_lines ≥ 1 and batch_bytes ≥ 1KiB".into(),
            ));
        }
        Ok(())
    }
}

/// An http(s) URL with a host, a valid port, no credentials and no query or fragment (the
/// agent appends the write path and its own query).
fn check_url(url: &str) -> Result<(), String> {
    let shown = redact_url(url);
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(format!(
            "expected an http:// or https:// URL, got `{shown}`"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!(
            "`{shown}` carries credentials; they would be logged and sent as Basic auth. \
             Put the token in `token_env` or `token_file` instead"
        ));
    }
    if url.contains(['?', '#']) {
        return Err(format!(
            "`{shown}` has a query or fragment; give only scheme, host, port and path: \
             fieldlink adds the write path and its query"
        ));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| {
        format!("`{shown}` is not a valid URL (an IPv6 address needs its closing `]`)")
    })?;
    if host.is_empty() {
        return Err(format!("`{shown}` has no host"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(format!(
                    "`{shown}`: port `{port}` is not between 1 and 65535"
                ))
            }
        }
    }
    if url.parse::<ureq::http::Uri>().is_err() {
        return Err(format!("`{shown}` is not a valid URL"));
    }
    Ok(())
}

/// Host and port of an authority without userinfo; `None` for an unclosed IPv6 bracket.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return Some((host, after.strip_prefix(':')));
    }
    Some(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// The URL with any `user:password@` replaced by `***@`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// A token file that exists must hold one line: a token with a line break inside cannot be
/// sent as a header. (A missing file is the uploader's concern: it waits for it.)
fn check_token_file(path: &Path) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    if text.trim().contains(['\n', '\r']) {
        return Err(format!(
            "{} holds more than one line; the token must be a single line",
            path.display()
        ));
    }
    Ok(())
}

/// The private CA bundle must be readable and hold at least one PEM certificate.
fn check_ca_file(path: &Path) -> Result<(), String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certificates = ureq::tls::parse_pem(&pem)
        .filter(|item| matches!(item, Ok(ureq::tls::PemItem::Certificate(_))))
        .count();
    if certificates == 0 {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
}
